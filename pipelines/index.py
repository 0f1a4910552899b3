"""Stage `index`: chunk the knowledge base, embed new/changed chunks into Chroma, write the manifest."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.index.embed import make_embedder
from llmops.index.refresh import manifest, refresh_index
from llmops.index.store import chroma_client
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.pii.scan import scan_records
from llmops.records import Document
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("index")
    docs = read_jsonl(ws.REDACTED / "documents.jsonl", Document)
    scan_records(docs, params.redact, "the knowledge-base documents to index")  # leak gate before publishing
    embedder = make_embedder(params.index.embedder, params.index, settings)
    result, chunks = refresh_index(docs, chroma_client(settings), embedder, params.index, progress=True)
    write_jsonl(ws.INDEX_MANIFEST, manifest(chunks, embedder.embedder_id))
    write_json(ws.stage_metrics("index"), result.as_dict())
    print(result.as_dict())


if __name__ == "__main__":
    main()
