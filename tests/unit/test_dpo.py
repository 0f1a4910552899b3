"""Preference training: pairs in the served prompt format, and a real DPO step (TRL DPOTrainer + LoRA on SmolLM2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmops.config import BaseParams, FinetuneParams
from llmops.finetune.dpo import CuratedPair, PreferencePair, build_preference_pairs, read_pairs, train_dpo
from llmops.finetune.trainset import AnswerFit
from llmops.records import ChatMessage, EvalQuestion
from llmops.reports.training import TrainingReport

ROWS = [
    CuratedPair(prompt="How do I renew my license?", chosen="Renew it online on the DMV website.", rejected="I don't know."),
    CuratedPair(prompt="When can I get retirement benefits?", chosen="From age 62.", rejected="Ask someone else."),
    CuratedPair(prompt="What is form MV-82 for?", chosen="It registers a vehicle.", rejected="Sorry, no idea."),
    CuratedPair(prompt="Can I lower my loan payments?", chosen="Yes, with an income-driven plan.", rejected="No."),
    CuratedPair(prompt="an eval question", chosen="a gold answer", rejected="a bad answer"),
    CuratedPair(prompt="broken?", chosen="Ask {<PERSON_1>}} about it.", rejected="No."),
]


def _words(messages: list[dict[str, str]]) -> int:
    return sum(len(m["content"].split()) + 2 for m in messages)


def test_pairs_drop_eval_questions_broken_spans_and_what_does_not_fit() -> None:
    evals = [EvalQuestion(id="e_1", query="An eval  question", gold_doc_ids=["d"])]
    pairs, skipped = build_preference_pairs(ROWS, evals, BaseParams(system_prompt="SYS"))
    assert len(pairs) == 4 and skipped == {"eval_overlap": 1, "broken_or_equal": 1}
    assert pairs[0].to_trl()["prompt"] == [{"role": "system", "content": "SYS"}, {"role": "user", "content": ROWS[0].prompt}]
    assert pairs[0].to_trl()["chosen"] == [{"role": "assistant", "content": ROWS[0].chosen}]
    tight, skipped = build_preference_pairs(ROWS[:4], [], BaseParams(system_prompt="SYS"), fit=AnswerFit(_words, 14))
    assert skipped["answer_over_max_seq_len"] >= 1 and len(tight) < 4


@pytest.mark.slow  # TRL start-up + model load + 2 DPO steps: ~40 s on 2 free CPU cores
def test_dpo_step_on_a_tiny_set_moves_the_adapter(tmp_path: Path, model_cache: Path) -> None:
    from safetensors.torch import load_file

    pairs, _ = build_preference_pairs(ROWS[:4], [], BaseParams())
    (tmp_path / "dpo.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in pairs))
    assert read_pairs(tmp_path / "dpo.jsonl") == pairs
    cfg = FinetuneParams(dpo_steps=2, batch_size=2, max_seq_len=128, threads=1)
    report = train_dpo(pairs, cfg, base_cache=model_cache, out_dir=tmp_path / "adapter", seed=1)
    assert report["steps"] == 2 and report["pairs"] == 4 and len(report["loss"]) == 2
    assert report["loss"][0] == pytest.approx(0.6931, abs=1e-3)  # log 2: policy == reference at the first step
    weights = load_file(tmp_path / "adapter/adapter_model.safetensors")
    lora_b = [w for k, w in weights.items() if "lora_B" in k]
    assert lora_b and any(float(w.abs().sum()) > 0 for w in lora_b)  # B starts at zero: DPO moved it
    assert not (tmp_path / "adapter/ref").exists()  # only the trained adapter is saved


def test_preference_pair_round_trip() -> None:
    pair = PreferencePair(prompt=[ChatMessage(role="user", content="q")], chosen="a", rejected="b", group_id="g1")
    assert PreferencePair.model_validate_json(pair.model_dump_json()) == pair


def test_method_dpo_without_enough_pairs_is_a_clear_error(tmp_path: Path, model_cache: Path) -> None:
    from llmops.errors import EmptyDatasetError
    from llmops.finetune.backend import LocalBackend

    pairs, _ = build_preference_pairs(ROWS[:2], [], BaseParams())
    (tmp_path / "dpo.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in pairs))
    backend = LocalBackend(FinetuneParams(method="dpo"), model_cache / "base", preferences=tmp_path / "dpo.jsonl")
    with pytest.raises(EmptyDatasetError, match=r"only 2 preference pairs < finetune\.dpo_min_pairs 8"):
        backend.train(tmp_path / "train.jsonl", tmp_path / "validation.jsonl", tmp_path / "out")


@pytest.mark.slow  # SFT (2 steps) then DPO (2 steps) on the real model
def test_sft_then_dpo_continues_the_sft_adapter(tmp_path: Path, model_cache: Path) -> None:
    import json

    from llmops.finetune.backend import LocalBackend

    pairs, _ = build_preference_pairs(ROWS[:4], [], BaseParams())
    (tmp_path / "dpo.jsonl").write_text("".join(p.model_dump_json() + "\n" for p in pairs))
    sft = [{"messages": [m.model_dump() for m in p.prompt] + [{"role": "assistant", "content": p.chosen}]} for p in pairs]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sft))
    (tmp_path / "validation.jsonl").write_text("")
    cfg = FinetuneParams(method="sft+dpo", max_steps=2, dpo_steps=2, dpo_min_pairs=4, max_seq_len=128, eval_examples=0)
    record = LocalBackend(cfg, model_cache / "base", preferences=tmp_path / "dpo.jsonl").train(
        tmp_path / "train.jsonl", tmp_path / "validation.jsonl", tmp_path / "out"
    )
    assert record.steps == 2 and record.dpo is not None and record.dpo.steps == 2 and record.dpo.reference == "sft adapter"
    assert TrainingReport.read(tmp_path / "out") == record  # the sft+dpo record is what training.json holds
    few = LocalBackend(cfg.model_copy(update={"dpo_min_pairs": 8}), model_cache / "base", preferences=tmp_path / "dpo.jsonl")
    skipped = few.train(tmp_path / "train.jsonl", tmp_path / "validation.jsonl", tmp_path / "o2").dpo
    assert skipped is not None and "only 4 preference pairs" in (skipped.skipped or "")
