"""Stage `trainset`: chat-format fine-tuning data in the served prompt format (retrieved context included)."""

from __future__ import annotations

from pathlib import Path

from llmops import workspace as ws
from llmops.data.incremental import (
    MANIFEST,
    CachedRetriever,
    RecordCache,
    cache_path,
    count_records,
    file_digest,
    fingerprint,
    iter_records,
)
from llmops.data.quarantine import write_quarantine
from llmops.finetune.dpo import CuratedPair, build_preference_pairs
from llmops.finetune.leaks import hold_back_leaks
from llmops.finetune.trainset import AnswerFit, ServingPrompt, build_trainset, input_revision, pairs_within_shares
from llmops.finetune.validate import base_token_counter
from llmops.index.embed import make_embedder
from llmops.index.hybrid import open_retriever
from llmops.index.store import chroma_client
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.pii.redact import Redactor
from llmops.pii.scan import Scanner
from llmops.records import Conversation, Document, EvalQuestion, FeedbackEvent
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("trainset")
    # The conversations' revision is their manifest (the md5 of every day partition it was made from and wrote).
    inputs: list[str | Path] = [ws.REDACTED_CONVERSATIONS / MANIFEST, ws.FEEDBACK / "curated.jsonl", params.evaluate.questions]
    documents = ws.REDACTED / "documents.jsonl"
    # The answer service's retriever over the serving index: examples carry the context it would retrieve.
    embedder = make_embedder(params.index.embedder, params.index, settings)
    retriever = open_retriever(chroma_client(settings), embedder, params.index)
    # Contexts are reused across runs while the index content and the retrieval params hold: after an
    # append only the new questions are embedded and searched.
    retrieval_fp = fingerprint(
        {"index": params.index.model_dump(mode="json", exclude={"tune"}), "top_k": params.serve.top_k},
        ["src/llmops/index"],
        extra=file_digest(ws.INDEX_MANIFEST),
    )
    cache = RecordCache(cache_path(settings.home_dir, "trainset"))
    cached = CachedRetriever(retriever, cache, retrieval_fp)
    prompt = ServingPrompt(cached, params.serve)
    fit = AnswerFit(base_token_counter(settings.base_model_cache), params.finetune.max_seq_len)
    evals = read_jsonl(inputs[2], EvalQuestion)
    redactor = Redactor.from_settings(params.redact, settings)  # the redact stage's detector and id hashing
    result = build_trainset(
        iter_records(ws.REDACTED_CONVERSATIONS, Conversation),
        read_jsonl(inputs[1], FeedbackEvent),
        evals,
        params.trainset,
        params.base,
        documents=read_jsonl(documents, Document),
        prompt=prompt,
        fit=fit,
        feedback_cfg=params.feedback,
        public_ids=redactor.public_ids,  # eval dialogues under their hashed ids too (redact.hash_ids)
    )
    curated_pairs, over_share = pairs_within_shares(read_jsonl(ws.FEEDBACK / "dpo.jsonl", CuratedPair), result)
    pairs, pairs_skipped = build_preference_pairs(curated_pairs, evals, params.base, prompt=prompt, fit=fit)
    if over_share:
        pairs_skipped["chosen_over_share"] += over_share
    # Leak gate: a record in which personal data survived the redact stage is held back (quarantined, never
    # pushed) and the run goes on; above redact.max_leak_share the stage fails and nothing is published.
    pairs, gate = hold_back_leaks(result, pairs, Scanner(params.redact, redactor), params.redact.max_leak_share)
    key = settings.pii_vault_key.get_secret_value() if settings.pii_vault_key else None  # seals the quarantine
    write_quarantine(ws.TRAINSET_QUARANTINE / "records.jsonl", gate.quarantined, key)
    gate.check()
    write_jsonl(ws.TRAINSET / "train.jsonl", (e.to_openai() for e in result.train))
    write_jsonl(ws.TRAINSET / "validation.jsonl", (e.to_openai() for e in result.validation))
    write_jsonl(ws.TRAINSET / "provenance.jsonl", result.provenance())
    write_jsonl(ws.TRAINSET / "dpo.jsonl", pairs)
    stats = result.stats() | {"dpo_pairs": len(pairs), "dpo_skipped": dict(pairs_skipped), "leak_gate": gate.report()}
    n_conversations = count_records(ws.REDACTED_CONVERSATIONS)
    # processed/reused count candidate questions (conversation turns, feedback, FAQ sections): retrieval is the cost.
    stats["conversations"] = {
        "in": n_conversations,
        "processed": cached.searched,
        "reused": cached.reused,
        "deleted": cache.sweep(),
        "unit": "questions",
    }
    cache.close()
    stats |= input_revision([*inputs, documents, ws.INDEX_MANIFEST, ws.FEEDBACK / "dpo.jsonl"])
    write_json(ws.stage_metrics("trainset"), stats)
    print(stats)


if __name__ == "__main__":
    main()
