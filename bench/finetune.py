"""Local fine-tuning backend throughput: examples/s and tokens/s of ``train_lora`` (LoRA with peft).

Shape of the reference figures (issue #5): SmolLM2-135M, LoRA r=16 on all linear layers.
* CPU: batch 4 x 256 tokens; reference ~170 tokens/s on 2 cores.
* GPU (when present): batch 64 x 512, bf16 autocast; references 83k tokens/s (eager) / 180k (torch.compile).
Also measured: the params.yaml default shape (r=8 on all linear layers, batch 2 x 384: the served prompt
with its retrieved context and the answer) that the nightly sample run uses. Each example fills the window
exactly, end-of-turn token included (training drops an example that does not fit, never cuts it).

A few steps only (``LLMOPS_BENCH_STEPS``, default 4; ``LLMOPS_BENCH_FULL=1`` for 20). Two figures per
shape: ``tokens/s`` over all steps (first step included: allocation, kernel selection, compile) and
``steady`` over the steps after the first, which is what the reference figures measure.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
REFERENCE = {"cpu": 170.0, "cuda_eager": 83_000.0, "cuda_compiled": 180_000.0}


def _examples(n: int, seq: int, base_cache: Path) -> list:
    """``n`` examples of exactly ``seq`` tokens (chat template and end-of-turn token included)."""
    from transformers import AutoTokenizer

    from llmops.finetune.validate import hf_token_counter
    from llmops.llm.local import ensure_base_model
    from llmops.records import ChatMessage, TrainingExample

    count = hf_token_counter(AutoTokenizer.from_pretrained(ensure_base_model(base_cache)))
    words = [f"step{i % 50} of the refund procedure" for i in range(seq)]

    def messages(i: int, k: int) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": "You are a helpful customer-support assistant."},
            {"role": "user", "content": f"How do I get a refund for order {i}?"},
            {"role": "assistant", "content": " ".join(words[:k])},
        ]

    out = []
    for i in range(n):
        k = 1
        while count(messages(i, k + 1)) <= seq:
            k += 1
        out.append(
            TrainingExample(messages=[ChatMessage(**m) for m in messages(i, k)], source="bench", group_id=str(i))  # type: ignore[arg-type]
        )
    return out


def _measure(name: str, cfg: object, settings: object, n_examples: int) -> dict:
    from llmops.finetune.lora import train_lora

    with tempfile.TemporaryDirectory() as tmp:
        examples = _examples(n_examples, cfg.max_seq_len, settings.base_model_cache)  # type: ignore[attr-defined]
        report = train_lora(examples, [], cfg, base_cache=settings.base_model_cache, out_dir=Path(tmp) / "adapter")
    return {
        "shape": name,
        "device": report.device,
        "steps": report.steps,
        "tokens": report.tokens_seen,
        "seconds": report.seconds,
        "tokens_per_s": round(report.tokens_per_s, 1),
        "steady_tokens_per_s": round(report.steady_tokens_per_s, 1),
        "examples_per_s": round(report.examples_seen / report.seconds, 3),
    }


def _reference_shape(batch: int, seq: int, steps: int, **extra: object) -> object:
    """The reference figures' LoRA: r=16 on all linear layers, no evaluation passes."""
    from llmops.config import FinetuneParams

    return FinetuneParams(
        lora_r=16,
        lora_alpha=32,
        target_modules=ALL_LINEAR,
        batch_size=batch,
        max_seq_len=seq,
        max_steps=steps,
        max_examples=batch * steps,
        eval_examples=0,
        eval_every=0,
        **extra,
    )


def run() -> dict:
    import torch

    from llmops.config import FinetuneParams, Settings

    settings = Settings()
    steps = 20 if os.environ.get("LLMOPS_BENCH_FULL") else int(os.environ.get("LLMOPS_BENCH_STEPS", "4"))
    load = os.getloadavg()[0]  # the machine is shared: a loaded CPU explains low figures
    rows = []
    if torch.cuda.is_available():
        gpu_steps = max(steps, 6)
        for compiled in (False, True):
            gpu = _reference_shape(64, 512, gpu_steps, compile=compiled)
            name = f"r16 all-linear, 64x512, bf16{' compiled' if compiled else ' eager'}"
            rows.append(_measure(name, gpu, settings, 64 * gpu_steps))
    rows.append(_measure("r16 all-linear, 4x256 (reference shape)", _reference_shape(4, 256, steps), settings, 4 * steps))
    sample = FinetuneParams(
        max_steps=steps, eval_examples=0, eval_every=0, max_examples=2 * steps, target_modules=["all-linear"], max_seq_len=384
    )
    rows.append(_measure("params.yaml default: r8 all-linear, 2x384", sample, settings, 2 * steps))

    print(f"{'shape':<44} {'device':<12} {'tokens/s':>9} {'steady':>9} {'examples/s':>11} {'steady vs reference':>22}")
    for r in rows:
        ref = {"cpu": "cpu", "cuda": "cuda_eager", "cuda+compile": "cuda_compiled"}[r["device"]]
        base = REFERENCE[ref]
        r["reference"] = ref
        r["ratio_vs_reference"] = round(r["steady_tokens_per_s"] / base, 2)
        print(
            f"{r['shape']:<44} {r['device']:<12} {r['tokens_per_s']:>9} {r['steady_tokens_per_s']:>9} "
            f"{r['examples_per_s']:>11} {r['ratio_vs_reference']:>10}x of {base:g}"
        )
    print(f"(1-min load average at start: {load:.1f} on {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()})")
    return {
        "steps": steps,
        "threads": torch.get_num_threads(),
        "load_avg": round(load, 2),
        "rows": rows,
        "reference_tokens_per_s": REFERENCE,
    }


def gain(questions: int = 120, overrides: dict | None = None) -> dict:
    """Does the nightly's training make the assistant better? (``python -m bench.finetune gain [N]``)

    On the shipped sample, as the pipeline does it: the knowledge base indexed (Chroma + MiniLM, hybrid), the
    training set built in the served prompt format (``build_trainset``; the raw sample, not redacted), a LoRA
    adapter trained with params.yaml's ``finetune`` section (``overrides`` on top), then the base model and the
    adapter answer the first ``questions`` answered eval questions (never trained on) through the same
    retrieval and prompt, greedy. Paired per-question differences (adapter - base) of token F1 and of
    answer-reference embedding similarity, BCa 95% CI and permutation p (``llmops.evaluation.paired``).
    """
    import time

    from llmops.config import Settings, load_params
    from llmops.data.ingest import parse_jsonl
    from llmops.evaluation.answers import semantic_similarity, token_f1
    from llmops.evaluation.paired import paired_test
    from llmops.finetune.lora import train_lora
    from llmops.finetune.trainset import AnswerFit, ServingPrompt, build_trainset
    from llmops.finetune.validate import base_token_counter
    from llmops.index.embed import LocalEmbedder
    from llmops.index.hybrid import open_retriever
    from llmops.index.refresh import refresh_index
    from llmops.index.store import chroma_client
    from llmops.jsonl import read_jsonl
    from llmops.llm.local import LocalChatModel
    from llmops.llm.prompts import rag_messages
    from llmops.records import Conversation, Document, EvalQuestion, FeedbackEvent

    sample, params, settings = ROOT / "data/sample", load_params(ROOT / "params.yaml"), Settings()
    cfg = params.finetune.model_copy(update=overrides or {})
    embedder = LocalEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        client = chroma_client(Settings(home=Path(tmp) / "home"))
        refresh_index(read_jsonl(sample / "documents.jsonl", Document), client, embedder, params.index)
        retriever = open_retriever(client, embedder, params.index)
        evals = read_jsonl(sample / "eval_questions.jsonl", EvalQuestion)
        data = build_trainset(
            parse_jsonl((sample / "conversations.jsonl").read_bytes(), Conversation, "sample").records,
            read_jsonl(sample / "feedback.jsonl", FeedbackEvent),
            evals,
            params.trainset,
            params.base,
            documents=read_jsonl(sample / "documents.jsonl", Document),
            prompt=ServingPrompt(retriever, params.serve),
            fit=AnswerFit(base_token_counter(settings.base_model_cache), cfg.max_seq_len),
        )
        start = time.perf_counter()
        report = train_lora(data.train, data.validation, cfg, base_cache=settings.base_model_cache, out_dir=Path(tmp) / "a")
        train_s = time.perf_counter() - start
        asked = [q for q in evals if q.answer][:questions]
        hits = retriever.search([q.query for q in asked], k=params.serve.top_k)
        prompts = [
            rag_messages(q.query, [h["text"] for h in hs], params.base.system_prompt, params.serve.context_chars)
            for q, hs in zip(asked, hits, strict=True)
        ]
        answers = {}
        for name, adapter in (("base", None), ("adapter", Path(tmp) / "a")):
            model = LocalChatModel(settings.base_model_cache, adapter)
            answers[name] = [r.text for r in model.chat_batch(prompts, max_new_tokens=params.evaluate.max_new_tokens)]
    refs = [q.answer or "" for q in asked]
    scores = {
        "token_f1": {k: [token_f1(a, r) for a, r in zip(v, refs, strict=True)] for k, v in answers.items()},
        "similarity": {k: semantic_similarity(embedder, v, refs) for k, v in answers.items()},
    }
    out: dict = {
        "trainset": data.stats(),
        "training": {k: report.as_dict()[k] for k in ("steps", "seconds", "stopped_by", "val_loss_before", "val_loss_after")},
        "train_seconds": round(train_s, 1),
        "questions": len(asked),
        "identical_answers": sum(a == b for a, b in zip(answers["base"], answers["adapter"], strict=True)),
    }
    print(
        f"{report.steps} steps in {train_s:.0f} s ({report.stopped_by}); "
        f"val loss {report.val_loss_before} -> {report.val_loss_after}"
    )
    for metric, by in scores.items():
        test = paired_test([a - b for a, b in zip(by["adapter"], by["base"], strict=True)], seed=0)
        base_mean, adapter_mean = sum(by["base"]) / len(asked), sum(by["adapter"]) / len(asked)
        out[metric] = {
            "base": round(base_mean, 4),
            "adapter": round(adapter_mean, 4),
            "diff": round(test.mean, 4),
            "ci95": [round(test.low, 4), round(test.high, 4)],
            "p": round(test.p_value, 4),
            "ties": test.ties,
        }
        print(
            f"{metric:<11} base {base_mean:.4f} adapter {adapter_mean:.4f} diff {test.mean:+.4f} "
            f"[{test.low:+.4f}, {test.high:+.4f}] p={test.p_value:.3f} ties={test.ties}/{len(asked)}"
        )
    return out


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["gain"]:
        print(gain(int(sys.argv[2]) if len(sys.argv) > 2 else 120))
    else:
        run()
