"""Incremental index refresh on doc2dial: full build vs refresh after no change vs refresh after 1% of
documents changed, and full-build throughput vs raw ``model.encode`` on the same chunks.

Goals (issue #4): no change -> 0 chunks embedded, <= 10% of the full build's time; 1% changed ->
<= 1.5% of chunks, <= 5% of the time; full-build throughput >= 0.8x raw encode.

By default a deterministic third of the corpus is used so the bench stays a few minutes on 2 shared
cores; BENCH_FULL=1 uses all 178 documents.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "doc2dial-rag"


def _change(doc, n: int):
    """Edit one paragraph in the middle of a page, as an editor fixing a sentence would."""
    paras = doc.text.split("\n\n")
    i = len(paras) // 2
    paras[i] = paras[i] + f" (Updated notice {n}: office hours changed.)"
    return doc.model_copy(update={"text": "\n\n".join(paras)})


def run() -> dict:
    from llmops.config import IndexParams, Settings
    from llmops.data.sources import doc2dial_documents
    from llmops.index.chunk import chunk_documents
    from llmops.index.embed import LocalEmbedder
    from llmops.index.refresh import refresh_index
    from llmops.index.store import chroma_client
    from llmops.runtime import OFFLINE_ENV

    os.environ.update(OFFLINE_ENV)
    docs = sorted(doc2dial_documents(DATA / "corpus.jsonl"), key=lambda d: d.doc_id)
    if os.environ.get("BENCH_FULL") != "1":
        docs = docs[::3]
    cfg = IndexParams()
    embedder = LocalEmbedder(batch_size=cfg.batch_size)
    chunks = chunk_documents(docs, cfg.chunk_words, cfg.chunk_overlap, cfg.chunk_mode)
    texts = [c.text for c in chunks]
    embedder.embed(texts[:8])  # warm-up: load kernels once, for both sides

    start = time.perf_counter()
    embedder._model.encode(texts, batch_size=cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    raw_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as home:
        client = chroma_client(Settings(home=Path(home)))
        full, _ = refresh_index(docs, client, embedder, cfg)
        same, _ = refresh_index(docs, client, embedder, cfg)
        n_changed = max(1, math.ceil(len(docs) * 0.01))
        step = len(docs) // n_changed
        changed_docs = [(_change(d, i) if i % step == 0 and i // step < n_changed else d) for i, d in enumerate(docs)]
        one, _ = refresh_index(changed_docs, client, embedder, cfg)

    def ratio(a: float, b: float) -> float:
        return round(a / b, 4) if b else 0.0

    rows = {
        "full build": (full.embedded, full.seconds),
        "no change": (same.embedded, same.seconds),
        f"1% changed ({n_changed} docs)": (one.embedded, one.seconds),
    }
    print(f"doc2dial: {len(docs)} documents, {len(chunks)} chunks ({'full' if len(docs) > 100 else 'every 3rd doc'})")
    print(f"{'run':<26}{'embedded':>10}{'x full':>9}{'seconds':>10}{'x full':>9}")
    for name, (emb, sec) in rows.items():
        print(f"{name:<26}{emb:>10}{ratio(emb, full.embedded):>9.3f}{sec:>10.2f}{ratio(sec, full.seconds):>9.3f}")
    throughput = ratio(raw_s, full.seconds)
    print(f"full-build throughput vs raw model.encode: {len(chunks) / full.seconds:.1f} vs {len(chunks) / raw_s:.1f} chunks/s")
    print(f"  = {throughput:.3f}x (goal >= 0.8)")
    return {
        "documents": len(docs),
        "chunks": len(chunks),
        "full": {"embedded": full.embedded, "seconds": full.seconds},
        "no_change": {
            "embedded": same.embedded,
            "seconds": same.seconds,
            "embedded_x": ratio(same.embedded, full.embedded),
            "seconds_x": ratio(same.seconds, full.seconds),
        },
        "one_percent": {
            "docs_changed": n_changed,
            "embedded": one.embedded,
            "seconds": one.seconds,
            "embedded_x": ratio(one.embedded, full.embedded),
            "seconds_x": ratio(one.seconds, full.seconds),
        },
        "raw_encode_seconds": round(raw_s, 3),
        "throughput_x_raw": throughput,
    }
