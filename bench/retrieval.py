"""Retrieval on doc2dial-rag (first-turn questions, 200-word chunks, doc-level metrics): dense base
embedder, BM25, naive RRF, hybrid; with BENCH_TUNE=1 also the tuned embedder and tuned hybrid.

Reference figures from the issue (measured before this work): dense 0.808, BM25 0.741, naive RRF 0.834
recall@5. The index lives in ``.llmops/bench`` (BENCH_HOME) under the alias ``llmops eval retrieval``
uses, refreshed incrementally, so only the first run pays for embedding the corpus.

Tuning split: dialogues are split in two by a hash of their id; the embedder trains on every turn of
one half and is evaluated on the first turns of the other, so no evaluated question is trained on.
Base figures are reported both on all 475 first turns and on that held-out half.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "doc2dial-rag"
REFERENCE = {"dense": 0.808, "bm25": 0.741, "rrf": 0.834, "hybrid": 0.834}  # hybrid vs the naive RRF reference


def _half(dial_id: str) -> int:
    return int(hashlib.sha256(dial_id.encode()).hexdigest()[:8], 16) % 2


def _table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title}")
    print(f"{'retriever':<16}{'recall@1':>9}{'recall@5':>9}{'recall@10':>10}{'mrr':>8}{'ndcg@10':>9}{'r@5 vs ref':>12}")
    for name, m in rows.items():
        ref = REFERENCE.get(name.split()[0])
        vs = f"{m['recall@5'] / ref:.3f}x" if ref else ""
        print(f"{name:<16}{m['recall@1']:>9}{m['recall@5']:>9}{m['recall@10']:>10}{m['mrr']:>8}{m['ndcg@10']:>9}{vs:>12}")


def run() -> dict:
    from llmops.config import IndexParams, Settings
    from llmops.data.sources import doc2dial_documents, doc2dial_questions
    from llmops.evaluation.retrievers import evaluate_corpus
    from llmops.finetune.embedder import tune_embedder
    from llmops.index.chunk import chunk_documents
    from llmops.index.embed import LocalEmbedder
    from llmops.index.store import chroma_client
    from llmops.runtime import OFFLINE_ENV

    os.environ.update(OFFLINE_ENV)
    home = Path(os.environ.get("BENCH_HOME", ROOT / ".llmops" / "bench"))
    docs = list(doc2dial_documents(DATA / "corpus.jsonl"))
    every = list(doc2dial_questions(DATA / "questions.jsonl", first_turn_only=False))
    first = list(doc2dial_questions(DATA / "questions.jsonl", first_turn_only=True))
    held_out = [q for q in first if _half(q.id.rsplit("_", 1)[0]) == 1]
    train = [q for q in every if _half(q.id.rsplit("_", 1)[0]) == 0]
    cfg = IndexParams()
    client = chroma_client(Settings(home=home))
    base = LocalEmbedder(batch_size=cfg.batch_size)

    keys = ("dense", "bm25", "rrf", "hybrid")
    full = evaluate_corpus(docs, first, client, base, cfg, alias="retrieval-eval", progress=True)
    half = evaluate_corpus(docs, held_out, client, base, cfg, alias="retrieval-eval")
    _table(f"all first turns ({len(first)} questions, {full['index']['chunks']} chunks)", {k: full[k] for k in keys})
    out = {"first_turns": {k: full[k] for k in keys}, "held_out": {k: half[k] for k in keys}}

    if os.environ.get("BENCH_TUNE") == "1":
        tcfg = cfg.tune.model_copy(update={"max_pairs": int(os.environ.get("BENCH_TUNE_PAIRS", cfg.tune.max_pairs))})
        chunks = chunk_documents(docs, cfg.chunk_words, cfg.chunk_overlap, cfg.chunk_mode)
        tuned = tune_embedder(chunks, train, held_out, cfg.embedder, home / "embedders", tcfg, seed=42, progress=True)
        t = evaluate_corpus(docs, held_out, client, LocalEmbedder(tuned.tuned_path), cfg, alias="bench-d2d-tuned")
        rows = {k: half[k] for k in keys} | {"dense tuned": t["dense"], "hybrid tuned": t["hybrid"]}
        _table(f"held-out first turns ({len(held_out)}; tuned on {tuned.pairs} pairs, {tuned.seconds} s)", rows)
        out["held_out"] |= {"dense_tuned": t["dense"], "hybrid_tuned": t["hybrid"]}
        out["tune"] = {"pairs": tuned.pairs, "promoted": tuned.promoted, "seconds": tuned.seconds}
    else:
        _table(f"held-out first turns ({len(held_out)}; BENCH_TUNE=1 adds the tuned embedder)", {k: half[k] for k in keys})
    print(json.dumps({k: v["recall@5"] for k, v in out["first_turns"].items()}))
    return out
