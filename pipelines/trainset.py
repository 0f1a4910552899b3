"""Stage `trainset`: chat-format fine-tuning data in the served prompt format (retrieved context included)."""

from __future__ import annotations

from pathlib import Path

from llmops import workspace as ws
from llmops.data.incremental import (
    MANIFEST,
    CachedRetriever,
    Lazy,
    RecordCache,
    SeenRecords,
    cache_path,
    file_digest,
    fingerprint,
    tokenizer_digest,
)
from llmops.data.quarantine import write_quarantine
from llmops.finetune.dpo import CuratedPair, build_preference_pairs
from llmops.finetune.leaks import CachedIdFlags, CachedScanner, hold_back_leaks
from llmops.finetune.trainset import (
    WALK_VERSION,
    AnswerFit,
    ConversationPartitions,
    MinHashBands,
    NearDuplicateState,
    ServingPrompt,
    SupportVerdicts,
    build_trainset,
    input_revision,
    pairs_within_shares,
)
from llmops.finetune.validate import base_token_counter
from llmops.index.embed import make_embedder
from llmops.index.hybrid import open_retriever
from llmops.index.store import chroma_client
from llmops.jsonl import read_jsonl, write_json, write_jsonl
from llmops.llm.local import BASE_MODEL_NAME, ensure_base_model
from llmops.pii.redact import Redactor
from llmops.pii.scan import Scanner
from llmops.records import Document, EvalQuestion, FeedbackEvent
from pipelines._stage import setup

_BUILD_CODE = ("src/llmops/finetune/trainset.py", "src/llmops/finetune/examples.py", "src/llmops/llm/prompts.py")


def main() -> None:
    params, settings = setup("trainset")
    # The conversations' revision is their manifest (the md5 of every day partition it was made from and wrote).
    inputs: list[str | Path] = [ws.REDACTED_CONVERSATIONS / MANIFEST, ws.FEEDBACK / "curated.jsonl", params.evaluate.questions]
    documents = ws.REDACTED / "documents.jsonl"
    # The answer service's retriever over the serving index: examples carry the context it would retrieve.
    # Opened on the first question not in the cache (a run with nothing new loads no embedder).
    retriever = Lazy(
        lambda: open_retriever(
            chroma_client(settings), make_embedder(params.index.embedder, params.index, settings), params.index
        )
    )
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
    # Token counts per (prompt, answer) are reused too; the tokenizer is loaded on the first new example.
    counter = Lazy(lambda: base_token_counter(settings.base_model_cache))
    tokenizer_fp = fingerprint(
        {"base": BASE_MODEL_NAME, "max_seq_len": params.finetune.max_seq_len},
        ["src/llmops/finetune/examples.py", "src/llmops/finetune/validate.py"],
        # of the converted model, converted first on a fresh machine: a first run's fingerprint is the next run's
        # (both library calls; here because only this stage may depend on both modules: tests/unit/test_dvc_deps.py)
        extra=tokenizer_digest(settings.base_model_cache / BASE_MODEL_NAME)
        or tokenizer_digest(ensure_base_model(settings.base_model_cache)),
    )
    fit = AnswerFit(lambda messages: counter.get()(messages), params.finetune.max_seq_len, cache=cache, fp=tokenizer_fp)
    evals = read_jsonl(inputs[2], EvalQuestion)
    redactor = Redactor.from_settings(params.redact, settings)  # the redact stage's detector and id hashing
    seen = SeenRecords(cache, fingerprint(params.trainset, [*_BUILD_CODE], extra=retrieval_fp + tokenizer_fp))
    # Each unchanged partition's screened candidates are reused: the archive is hashed, not read and parsed.
    screen_fp = fingerprint(None, ["src/llmops/text.py"], extra=seen.fp)  # text.py: the near-copy shingles
    conversations = ConversationPartitions(ws.REDACTED_CONVERSATIONS, seen, cache, screen_fp)
    # Near-duplicate band keys per candidate text are reused too (the MinHash signature is the costly part), and
    # so are the verdicts of the pairs of texts compared (Jaccard over trainset.near_dup_threshold or not).
    minhash = MinHashBands(params.base.seed, cache=cache, code=fingerprint(None, ["src/llmops/text.py"]))
    # The walk that drops near duplicates keeps its decisions too: a night resumes it after the longest prefix
    # of candidates it saw in the same order (the feedback candidates, first, are walked every time).
    walk = {"threshold": params.trainset.near_dup_threshold, "bands": minhash.fp, "version": WALK_VERSION}
    near_fp = fingerprint(walk)
    near_state = NearDuplicateState(cache_path(settings.home_dir, "trainset-walk"), near_fp)
    # Support verdicts (does the serving context back the answer?) per (question, answer) are reused too.
    support_fp = fingerprint(
        {"serve": params.serve.model_dump(mode="json"), "system": params.base.system_prompt, "min": params.trainset.min_support},
        ["src/llmops/feedback/curate.py", "src/llmops/llm/prompts.py"],
        extra=retrieval_fp,
    )
    verdicts = SupportVerdicts(cache, support_fp)
    # Whether an eval dialogue's id is hashed at the boundary (redact.hash_ids: pii) is judged once per id.
    scan_fp = fingerprint(params.redact, ["src/llmops/pii"])
    id_flags = CachedIdFlags(redactor.id_flags, cache, scan_fp)
    result = build_trainset(
        conversations,
        read_jsonl(inputs[1], FeedbackEvent),
        evals,
        params.trainset,
        params.base,
        documents=read_jsonl(documents, Document),
        prompt=prompt,
        fit=fit,
        feedback_cfg=params.feedback,
        public_ids=lambda ids: redactor.public_ids(ids, flags=id_flags),  # eval dialogues under their hashed ids too
        minhash=minhash,
        verdicts=verdicts,
        near_state=near_state,
    )
    curated_pairs, over_share = pairs_within_shares(read_jsonl(ws.FEEDBACK / "dpo.jsonl", CuratedPair), result)
    pairs, pairs_skipped = build_preference_pairs(curated_pairs, evals, params.base, prompt=prompt, fit=fit)
    if over_share:
        pairs_skipped["chosen_over_share"] += over_share
    # Leak gate: a record in which personal data survived the redact stage is held back (quarantined, never
    # pushed) and the run goes on; above redact.max_leak_share the stage fails and nothing is published.
    # Verdicts per text are reused across runs (keyed by the scan params and the detector's code): only texts
    # not scanned before go through the detector, which is loaded on the first of them.
    scanner = CachedScanner(lambda: Scanner(params.redact, redactor), cache, scan_fp)
    pairs, gate = hold_back_leaks(result, pairs, scanner, params.redact.max_leak_share)
    key = settings.pii_vault_key.get_secret_value() if settings.pii_vault_key else None  # seals the quarantine
    write_quarantine(ws.TRAINSET_QUARANTINE / "records.jsonl", gate.quarantined, key)
    gate.check()
    write_jsonl(ws.TRAINSET / "train.jsonl", (e.to_openai() for e in result.train))
    write_jsonl(ws.TRAINSET / "validation.jsonl", (e.to_openai() for e in result.validation))
    write_jsonl(ws.TRAINSET / "provenance.jsonl", result.provenance())
    write_jsonl(ws.TRAINSET / "dpo.jsonl", pairs)
    stats = result.stats() | {"dpo_pairs": len(pairs), "dpo_skipped": dict(pairs_skipped), "leak_gate": gate.report()}
    # processed: conversations this stage had not built from before (same params, code, index and tokenizer);
    # reused: the others, whose retrieval, token counts and leak verdicts came from the record cache.
    stats["conversations"] = {
        "in": seen.processed + seen.reused,
        "processed": seen.processed,
        "reused": seen.reused,
        "deleted": seen.gone(),  # conversations built from before that are no longer in the input
        "questions": {"searched": cached.searched, "reused": cached.reused},
        "answers_fitted": {"tokenised": fit.fitted, "reused": fit.reused},
        "leak_scan_texts": {"scanned": scanner.scanned, "reused": scanner.reused},
        "minhash_texts": {"computed": minhash.computed, "reused": minhash.reused},
        "near_duplicate_pairs": {"compared": minhash.pairs_compared, "reused": minhash.pairs_reused},
        "near_duplicate_walk": {"walked": near_state.walked, "resumed": near_state.resumed},
        "partitions": {"parsed": conversations.parsed, "reused": conversations.reused},
        "support_verdicts": {"judged": verdicts.judged, "reused": verdicts.reused},
        "eval_ids_judged": {"judged": id_flags.judged, "reused": id_flags.reused},
    }
    stats["conversations"]["cache_entries_swept"] = cache.sweep()  # nothing of an erased conversation stays
    seen.commit()
    conversations.commit()
    cache.close()
    stats |= input_revision([*inputs, documents, ws.INDEX_MANIFEST, ws.FEEDBACK / "dpo.jsonl"])
    write_json(ws.stage_metrics("trainset"), stats)
    print(stats)


if __name__ == "__main__":
    main()
