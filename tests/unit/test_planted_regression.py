"""A planted regression end to end with real LoRA training: a challenger trained on shuffled answers
must be rejected by the gate against a champion trained on the right ones (slow: two trainings on CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from llmops.config import FinetuneParams, GateParams
from llmops.evaluation.answers import token_f1
from llmops.evaluation.gate import decide
from llmops.finetune.lora import merge_adapter, train_lora
from llmops.llm.local import LocalChatModel
from llmops.records import ChatMessage, TrainingExample

PAIRS = [
    ("How do I reset my password?", "Open the sign-in page and click the forgot password link."),
    ("When will I get my refund?", "Refunds reach your original card within five business days."),
    ("Can I change my delivery address?", "Yes, edit the shipping address on the order page before dispatch."),
    ("How do I cancel my subscription?", "Go to account settings, then billing, then cancel plan."),
    ("Where can I download my invoice?", "Invoices are under orders, as a PDF download button."),
    ("What are your support hours?", "Our chat team answers every day from eight to eight."),
    ("Do you ship abroad?", "We ship to forty countries; rates appear at checkout."),
    ("How do I track my parcel?", "Use the tracking link in your shipping confirmation email."),
]
SYSTEM = "You are a helpful customer-support assistant."


def _examples(pairs: list[tuple[str, str]]) -> list[TrainingExample]:
    return [
        TrainingExample(
            messages=[
                ChatMessage(role="system", content=SYSTEM),
                ChatMessage(role="user", content=q),
                ChatMessage(role="assistant", content=a),
            ],
            source="test",
            group_id=q,
        )
        for q, a in pairs
    ]


def _scores(model: LocalChatModel) -> dict[str, list[float]]:
    out = {}
    for q, a in PAIRS:
        res = model.chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}], max_new_tokens=20)
        out[q] = [token_f1(res.text, a)]
    return out


@pytest.mark.slow
def test_shuffled_answer_challenger_is_rejected(tmp_path: Path, model_cache: Path) -> None:
    base = model_cache / "base"
    cfg = FinetuneParams(
        lora_r=16, lora_alpha=32, learning_rate=3e-3, max_steps=12, batch_size=4, max_seq_len=64, eval_examples=0, eval_every=0
    )
    answers = [a for _, a in PAIRS]
    answers = answers[3:] + answers[:3]  # shuffled by rotation: a derangement, no question keeps its answer
    shuffled = [(q, a) for (q, _), a in zip(PAIRS, answers, strict=True)]
    assert all(a != b for (_, a), (_, b) in zip(PAIRS, shuffled, strict=True))
    train_lora(_examples(PAIRS), [], cfg, base_cache=base, out_dir=tmp_path / "champion", seed=1)
    train_lora(_examples(shuffled), [], cfg, base_cache=base, out_dir=tmp_path / "challenger", seed=1)

    champion = LocalChatModel(base, tmp_path / "champion")
    champ, chall = _scores(champion), _scores(LocalChatModel(base, tmp_path / "challenger"))
    mean = lambda s: sum(v[0] for v in s.values()) / len(s)  # noqa: E731
    decision = decide(
        {"answers": {"token_f1": mean(chall)}},
        {"answers": {"token_f1": mean(champ)}},
        GateParams(min_paired_examples=len(PAIRS)),  # decided on the paired evidence, not on "too few questions"
        challenger_scores=chall,
        champion_scores=champ,
    )
    assert mean(champ) > mean(chall)
    assert not decision.promote, decision.reasons
    print(f"champion F1 {mean(champ):.3f}, shuffled challenger F1 {mean(chall):.3f}: {decision.reasons}")

    # The champion can be merged for serving: same greedy answer without peft.
    merged = merge_adapter(base, tmp_path / "champion", tmp_path / "merged")
    from transformers import AutoModelForCausalLM

    plain = AutoModelForCausalLM.from_pretrained(merged).eval()
    assert not hasattr(plain, "peft_config")
    ids = champion.tokenizer(PAIRS[0][0], return_tensors="pt").input_ids
    with torch.inference_mode():
        assert torch.allclose(plain(ids).logits, champion.model(ids).logits, atol=1e-3)  # the same function
