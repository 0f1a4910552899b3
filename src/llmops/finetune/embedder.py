"""Embedding fine-tune: (question, gold chunk) pairs -> sentence-transformers with
MultipleNegativesRankingLoss (in-batch negatives), evaluated base vs tuned on held-out questions, and
registered only when it wins.

Pairs come from questions with a gold document (the gold chunk is the chunk of that document that best
covers the reference answer) and from positive feedback (rating 1: the query and the top retrieved
document's best chunk).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmops.config import EmbedTuneParams
from llmops.errors import DataContractError, EmptyDatasetError
from llmops.evaluation.retrieval import retrieval_metrics
from llmops.index.embed import DEFAULT_EMBEDDER, LocalEmbedder, packaged_minilm_path
from llmops.records import Chunk, EvalQuestion, FeedbackEvent


def _words(text: str) -> set[str]:
    return {w for w in text.casefold().split() if len(w) > 2}


def gold_chunk(chunks: Sequence[Chunk], answer: str | None) -> Chunk:
    """The chunk that best covers ``answer`` (the first chunk when there is no answer)."""
    if not answer:
        return chunks[0]
    want = _words(answer)
    return max(chunks, key=lambda c: (len(want & _words(c.text)), -c.position))


def training_pairs(
    questions: Sequence[EvalQuestion], chunks: Sequence[Chunk], feedback: Sequence[FeedbackEvent] = ()
) -> list[tuple[str, str]]:
    """``(query, positive chunk text)`` pairs; questions whose gold document is not in ``chunks`` are skipped."""
    by_doc: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    pairs = []
    for q in questions:
        docs = [d for d in q.gold_doc_ids if d in by_doc]
        if docs:
            pairs.append((q.query, gold_chunk(by_doc[docs[0]], q.answer).text))
    for ev in feedback:
        if ev.rating == 1 and ev.retrieved_doc_ids and ev.retrieved_doc_ids[0] in by_doc:
            pairs.append((ev.query, gold_chunk(by_doc[ev.retrieved_doc_ids[0]], ev.answer).text))
    return pairs


def train_embedder(
    pairs: Sequence[tuple[str, str]], base: str, out_dir: Path, cfg: EmbedTuneParams, seed: int = 42, *, progress: bool = False
) -> Path:
    """Fine-tune ``base`` on ``pairs`` with MultipleNegativesRankingLoss; saves the model to ``out_dir``."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.losses import MultipleNegativesRankingLoss  # type: ignore[no-redef]  # its pre-6 home

    if len(pairs) < 2:
        raise EmptyDatasetError(f"{len(pairs)} training pair(s): in-batch negatives need at least 2")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    pairs = list(pairs)
    rng.shuffle(pairs)
    pairs = pairs[: cfg.max_pairs]
    path = packaged_minilm_path() if base == DEFAULT_EMBEDDER else Path(base)
    model = SentenceTransformer(str(path), device="cuda" if torch.cuda.is_available() else "cpu")
    model.max_seq_length = cfg.max_seq_len
    loss = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate)
    steps = cfg.epochs * math.ceil(len(pairs) / cfg.batch_size)
    warmup = max(1, int(steps * cfg.warmup_share))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    from tqdm import tqdm

    model.train()
    bar = tqdm(total=steps, desc="embedder tune", unit="step", disable=not progress)
    for _ in range(cfg.epochs):
        rng.shuffle(pairs)
        for i in range(0, len(pairs), cfg.batch_size):
            batch = pairs[i : i + cfg.batch_size]
            bar.update(1)
            if len(batch) < 2:
                continue
            encode = getattr(model, "preprocess", None) or model.tokenize  # tokenize is deprecated in v6
            features = [encode([q for q, _ in batch]), encode([d for _, d in batch])]
            value = loss(features, None)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            bar.set_postfix(loss=round(float(value.detach()), 4))
    bar.close()
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save(str(out_dir))
    return out_dir


def dense_metrics(
    embedder: LocalEmbedder, chunks: Sequence[Chunk], questions: Sequence[EvalQuestion], depth: int = 50
) -> dict[str, float]:
    """Document-level retrieval metrics of exact dense search over ``chunks`` (no index needed)."""
    import numpy as np

    c = np.asarray(embedder.embed([x.text for x in chunks]))
    q = np.asarray(embedder.embed([x.query for x in questions]))
    order = np.argsort(-(q @ c.T), axis=1)[:, :depth]
    ranked = [[chunks[i].doc_id for i in row] for row in order]
    metrics = retrieval_metrics(ranked, [x.gold_doc_ids for x in questions])
    scored = {k: v for k, v in metrics.items() if v is not None}
    if len(scored) < len(metrics):
        raise EmptyDatasetError(f"{len(questions)} question(s): no retrieval metric to compare embedders on")
    return scored


@dataclass
class TuneResult:
    base: str
    tuned_path: str
    pairs: int
    base_metrics: dict[str, float]
    tuned_metrics: dict[str, float]
    promoted: bool
    reason: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tune_embedder(
    chunks: Sequence[Chunk],
    train: Sequence[EvalQuestion],
    held_out: Sequence[EvalQuestion],
    base: str,
    registry_dir: Path,
    cfg: EmbedTuneParams,
    *,
    feedback: Sequence[FeedbackEvent] = (),
    seed: int = 42,
    progress: bool = False,
) -> TuneResult:
    """Train on pairs from ``train`` questions and positive ``feedback``, compare base and tuned on
    ``held_out`` (recall@5, then MRR), and register the tuned model under ``registry_dir`` as the current
    embedder only if it wins by more than ``cfg.min_gain``. Held-out questions must not be trained on."""
    start = time.perf_counter()
    if not held_out:
        raise EmptyDatasetError("no held-out questions: base and tuned embedders cannot be compared")
    leaked = {q.id for q in held_out} & {q.id for q in train}
    if leaked:
        raise DataContractError(
            f"{len(leaked)} held-out question(s) are also in the training set (e.g. {sorted(leaked)[0]!r}): "
            "split by dialogue so the evaluated questions are never trained on"
        )
    # The same wording in another dialogue would still teach the evaluated query: never train on it.
    held_queries = {q.query.casefold().strip() for q in held_out}
    train = [q for q in train if q.query.casefold().strip() not in held_queries]
    feedback = [f for f in feedback if f.query.casefold().strip() not in held_queries]
    pairs = training_pairs(train, chunks, feedback)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = train_embedder(pairs, base, registry_dir / f"minilm-tuned-{stamp}", cfg, seed, progress=progress)
    base_m = dense_metrics(LocalEmbedder(base), chunks, held_out)
    tuned_m = dense_metrics(LocalEmbedder(str(out)), chunks, held_out)
    gain = (tuned_m["recall@5"] - base_m["recall@5"], tuned_m["mrr"] - base_m["mrr"])
    promoted = gain[0] > cfg.min_gain or (gain[0] == 0 and gain[1] > cfg.min_gain)
    reason = f"recall@5 {base_m['recall@5']} -> {tuned_m['recall@5']}, mrr {base_m['mrr']} -> {tuned_m['mrr']}"
    result = TuneResult(base, str(out), len(pairs), base_m, tuned_m, promoted, reason, round(time.perf_counter() - start, 1))
    registry_dir.mkdir(parents=True, exist_ok=True)
    record = registry_dir / "embedders.jsonl"
    with record.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(result.as_dict()) + "\n")
    if promoted:
        (registry_dir / "current.json").write_text(json.dumps({"embedder": str(out), "reason": reason}) + "\n")
    return result


def current_embedder(registry_dir: Path) -> str | None:
    """The registered tuned embedder (a model directory), if one won."""
    path = registry_dir / "current.json"
    return json.loads(path.read_text(encoding="utf-8"))["embedder"] if path.exists() else None
