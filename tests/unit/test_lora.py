"""A real (tiny) LoRA pass on the local SmolLM2 model and generation with the adapter."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from llmops.config import FinetuneParams
from llmops.finetune.lora import encode_example, plot_loss, train_lora
from llmops.llm.local import LocalChatModel, ensure_base_model
from llmops.records import ChatMessage, TrainingExample
from llmops.reports.training import TrainingReport


def _ex(q: str, a: str) -> TrainingExample:
    return TrainingExample(
        messages=[
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content=q),
            ChatMessage(role="assistant", content=a),
        ],
        source="test",
        group_id=q,
    )


def test_prompt_tokens_are_masked(model_cache: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ensure_base_model(model_cache / "base"))
    encoded = encode_example(tok, _ex("Where is my order?", "It ships today."), max_len=128)
    assert encoded is not None
    ids, labels = encoded
    answer = [t for t in labels if t != -100]
    assert len(ids) == len(labels) and 0 < len(answer) < len(ids)
    assert "It ships today." in tok.decode(answer)
    assert labels[0] == -100
    assert tok.decode(answer).rstrip().endswith("<|im_end|>")  # the end-of-turn token is trained on
    # One token short of the whole example: dropped, never cut (a cut answer would lose its end-of-turn token).
    assert encode_example(tok, _ex("Where is my order?", "It ships today."), max_len=len(ids) - 1) is None


def test_time_budget_stops_training_and_threads_follow_the_cores(tmp_path: Path, model_cache: Path) -> None:
    import os

    from llmops.finetune.lora import cpu_threads

    assert cpu_threads(3) == 3 and cpu_threads() == len(os.sched_getaffinity(0))
    data = [_ex(f"How do I reset password {i}?", "Use the 'Forgot password' link on the sign-in page.") for i in range(4)]
    long = [*data, _ex("x?", "word " * 200)]  # over max_seq_len: dropped and counted
    cfg = FinetuneParams(max_steps=1000, max_minutes=0.001, batch_size=2, max_seq_len=64, eval_examples=0)
    report = train_lora(long, [], cfg, base_cache=model_cache / "base", out_dir=tmp_path / "a")
    assert report.stopped_by == "max_minutes" and 1 <= report.steps < 1000
    assert report.dropped_over_max_seq_len == 1 and report.train_examples == 4
    assert report.threads == (cpu_threads() if report.device == "cpu" else 0)


def test_train_two_steps_saves_a_working_adapter(tmp_path: Path, model_cache: Path) -> None:
    data = [_ex(f"How do I reset password {i}?", "Use the 'Forgot password' link on the sign-in page.") for i in range(4)]
    cfg = FinetuneParams(max_steps=2, batch_size=2, max_seq_len=64, eval_examples=2)
    out = tmp_path / "adapter"
    report = train_lora(data, data[:2], cfg, base_cache=model_cache / "base", out_dir=out)
    assert report.steps == 2 and len(report.train_loss) == 2
    assert all(math.isfinite(x) for x in report.train_loss)
    assert report.tokens_seen > 0 and report.model_id.startswith("SmolLM2-135M-Instruct-lora-")
    assert len(report.step_seconds) == 2 and sum(report.step_tokens) == report.tokens_seen
    assert report.device in {"cpu", "cuda+compile"}  # compile (default on) applies on a GPU only
    assert (out / "adapter_model.safetensors").exists()
    written = TrainingReport.read(out)  # the file reads back as what the loop reported, in the shape it always had
    assert written == report.to_report() and written.model_id == report.model_id
    assert json.loads((out / "training.json").read_text()) == json.loads(json.dumps(report.as_dict()))
    plot_loss(report, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 1000

    model = LocalChatModel(model_cache / "base", out)
    res = model.chat([{"role": "user", "content": "How do I reset my password?"}], max_new_tokens=8)
    assert res.completion_tokens > 0 and res.text


def test_compiled_runs_pad_every_batch_to_one_width() -> None:
    from llmops.finetune.lora import _batches

    encoded = [([1, 2, 3], [-100, 2, 3]), ([4, 5], [-100, 5]), ([6], [6])]
    eager = _batches(encoded, 2, pad_id=0)
    static = _batches(encoded, 2, pad_id=0, pad_to=8)
    assert [b["input_ids"].shape[1] for b in eager] == [3, 1]
    assert [b["input_ids"].shape[1] for b in static] == [8, 8]
    assert static[0]["attention_mask"].sum() == 5 and (static[0]["labels"][:, 3:] == -100).all()


def test_answer_only_logits_give_the_models_own_loss(model_cache: Path) -> None:
    """The training loss skips the prompt's vocab projection; it must equal transformers' full-logits loss,
    through the peft wrapper as training uses it, and carry gradients to the LoRA weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmops.finetune.lora import _batches, answer_loss

    base = ensure_base_model(model_cache / "base")
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    encoded = [
        e
        for e in (
            encode_example(tok, _ex("Where is my order?", "It ships today from the Leeds warehouse."), 128),
            encode_example(tok, _ex("Can I change the delivery address of order 12?", "Yes, until it ships."), 128),
        )
        if e is not None
    ]
    assert len(encoded) == 2
    (batch,) = _batches(encoded, 2, pad_id=tok.eos_token_id)
    ours = answer_loss(model, batch, "cpu")
    full = float(model(**batch).loss.detach())
    loss = float(ours.detach())
    assert math.isfinite(loss) and abs(loss - full) < 1e-4
    ours.backward()
    lora_grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_grads and all(g is not None and g.abs().sum() > 0 for g in lora_grads)


def test_steady_throughput_leaves_out_the_first_step() -> None:
    from llmops.finetune.lora import TrainReport

    r = TrainReport("m", "b", "cpu", steps=3, examples_seen=6, tokens_seen=300, seconds=12.0)
    r.step_seconds, r.step_tokens = [10.0, 1.0, 1.0], [100, 100, 100]  # a slow first step (warm-up, compile)
    assert r.tokens_per_s == 25.0 and r.steady_tokens_per_s == 100.0
    assert r.as_dict()["steady_tokens_per_s"] == 100.0
