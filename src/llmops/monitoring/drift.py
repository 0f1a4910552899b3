"""Data drift of a current conversation batch against a reference window, with Evidently 0.7.

Signals per conversation: channel, intent, category, a script/stopword language guess, number of turns
and, on the customer's text, offline descriptors (length, word count, non-letter share, PII
placeholders). Evidently picks the statistical test per column type and size; a column drifts when its
test fails, and the batch drifts when the share of drifted columns reaches ``drift_share``. Two more
signals stand on their own: the share of current words never seen in the reference window
(``new_vocabulary``) and, when an embedder is given, query embedding drift (``llmops.monitoring.embeddings``).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from llmops.config import MonitorParams
from llmops.errors import EmptyDatasetError
from llmops.index.embed import Embedder
from llmops.records import Conversation
from llmops.reports.drift import ColumnDrift, DriftReport

PLACEHOLDER = r"<[A-Z_]+_\d+>"
CATEGORICAL = ["channel", "intent", "category", "language"]
_WORD = re.compile(r"[^\W\d_]{2,}")
# Frequent English function words: enough to tell English from other Latin-script text offline.
_EN = frozenset(
    "the a an and or to of in on for is are was be it i you my me we our your this that with can how what not do "
    "have has please help want need would could will there from at by about why when where".split()
)
NUMERICAL = ["n_turns"]


def guess_language(text: str) -> str:
    """'en', 'other_latin' (Latin script, no English function words) or 'non_latin' (mostly other scripts)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return "none"
    if sum(1 for ch in letters if ch.isascii() or "\u00c0" <= ch <= "\u024f") / len(letters) < 0.5:
        return "non_latin"
    words = {w.casefold() for w in _WORD.findall(text)}
    if words & _EN or (all(ch.isascii() for ch in letters) and len(words) <= 3):
        return "en"  # short ASCII snippets ("cancel order") carry no function word but are English here
    return "other_latin"


def vocabulary(texts: Sequence[str]) -> set[str]:
    return {w.casefold() for t in texts for w in _WORD.findall(t)}


def new_vocab_share(reference: Sequence[str], current: Sequence[str]) -> float:
    """Share of the current window's word occurrences that never occur in the reference window."""
    vocab = vocabulary(reference)
    words = [w.casefold() for t in current for w in _WORD.findall(t)]
    return round(sum(1 for w in words if w not in vocab) / len(words), 4) if words else 0.0


def customer_text(c: Conversation) -> str:
    return "\n".join(t.text for t in c.turns if t.role == "customer") or " "


def conversation_frame(conversations: Sequence[Conversation]) -> Any:
    """One row per conversation: the customer's words and the categorical/numeric signals."""
    import pandas as pd

    rows = []
    for c in conversations:
        text = customer_text(c)
        rows.append(
            {
                "text": text,
                "channel": c.channel,
                "intent": str(c.metadata.get("intent", "unknown")),
                "category": str(c.metadata.get("category", "unknown")),
                "language": guess_language(text),
                "n_turns": len(c.turns),
            }
        )
    return pd.DataFrame(rows, columns=["text", *CATEGORICAL, *NUMERICAL])


def _dataset(df: Any) -> Any:
    from evidently import DataDefinition, Dataset
    from evidently.descriptors import NonLetterCharacterPercentage, RegExp, TextLength, WordCount

    return Dataset.from_pandas(
        df,
        data_definition=DataDefinition(text_columns=["text"], categorical_columns=CATEGORICAL, numerical_columns=NUMERICAL),
        descriptors=[
            TextLength("text", alias="text_length"),
            WordCount("text", alias="word_count"),
            NonLetterCharacterPercentage("text", alias="non_letter_share"),
            RegExp("text", reg_exp=PLACEHOLDER, alias="has_pii_placeholder"),
        ],
    )


def evidently_columns(snapshot: Any) -> tuple[float, dict[str, ColumnDrift]]:
    """The drifted share and the column flags of the ValueDrift tests (FAIL = drift)."""
    d = snapshot.dict()
    status = {t["metric_config"]["metric_id"]: t["status"] for t in d["tests"]}
    share, columns = 0.0, {}
    for m in d["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith(":DriftedColumnsCount"):
            share = round(float(m["value"]["share"]), 4)
        elif cfg["type"].endswith(":ValueDrift"):
            columns[cfg["column"]] = ColumnDrift(
                score=round(float(m["value"]), 6),
                method=cfg.get("method"),
                threshold=cfg.get("threshold"),
                detected=status.get(m["id"]) == "FAIL",
            )
    return share, columns


@contextmanager
def _quiet_stattests() -> Iterator[None]:
    """Without the numeric warnings numpy and scipy raise inside Evidently's drift tests: a category of the
    current window that the reference lacks (chi-square divides by its zero expected count: the column drifts)
    and a constant column (zero variance). The result says both; the warnings only filled the stage log with
    tracebacks of library lines, one per column."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "divide by zero encountered", RuntimeWarning, r"scipy\.|numpy\.")
        warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning, r"scipy\.|numpy\.")
        yield


def drift_report(
    reference: Sequence[Conversation],
    current: Sequence[Conversation],
    cfg: MonitorParams,
    out_dir: Path,
    *,
    embedder: Embedder | None = None,
    write_json: bool = True,
) -> DriftReport:
    """Write ``report.html`` (Evidently) and, with ``write_json``, ``drift.json`` (our summary) to ``out_dir``.

    The batch drifts when the Evidently share rule fires, when the new-vocabulary share crosses
    ``new_vocab_threshold``, or when query embeddings drift (only with an ``embedder``).
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    for name, window in (("reference", reference), ("current", current)):
        if not window:
            raise EmptyDatasetError(f"the {name} window has no conversations: point it at a JSONL file with at least one")
    ref_df, cur_df = conversation_frame(reference), conversation_frame(current)
    columns = [*CATEGORICAL, *NUMERICAL, "text_length", "word_count", "non_letter_share", "has_pii_placeholder"]
    if cfg.text_content_drift:
        columns.append("text")
    # abs_text_content_drift: a domain classifier on the raw text; the default for small windows
    # (percentile version) bootstraps and costs ~15 s on a few hundred rows.
    preset = DataDriftPreset(columns=columns, drift_share=cfg.drift_share, text_method="abs_text_content_drift")
    with _quiet_stattests():
        snapshot = Report([preset], include_tests=True).run(_dataset(cur_df), _dataset(ref_df))  # current first
    share, column_flags = evidently_columns(snapshot)
    drifted = [name for name, col in column_flags.items() if col.detected]
    vocab_share = new_vocab_share(ref_df["text"].tolist(), cur_df["text"].tolist())
    result = DriftReport(
        drift_detected=share >= cfg.drift_share,
        drift_share=share,
        drift_share_threshold=cfg.drift_share,
        drifted_columns=drifted,
        columns=column_flags,
        reference_rows=len(ref_df),
        current_rows=len(cur_df),
        new_vocab_share=vocab_share,
        new_vocab_threshold=cfg.new_vocab_threshold,
        embeddings={},
        drifted_signals=list(drifted),
    )
    if vocab_share >= cfg.new_vocab_threshold:
        result.flag("new_vocabulary")
    if embedder is not None and cfg.embedding_drift:
        from llmops.monitoring.embeddings import embedding_drift

        emb = embedding_drift(ref_df["text"].tolist(), cur_df["text"].tolist(), embedder, cfg)
        result.embeddings = {**result.embeddings, "queries": emb}
        if emb.detected:
            result.flag("query_embeddings")
    out_dir.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(out_dir / "report.html"))
    if write_json:
        result.write(out_dir)
    return result
