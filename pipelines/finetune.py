"""Stage `finetune`: validate the training data, then train with the configured backend (local LoRA or OpenAI)."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.finetune.backend import run_finetune
from llmops.jsonl import write_json
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("finetune")
    record = run_finetune(
        ws.TRAINSET / "train.jsonl",
        ws.TRAINSET / "validation.jsonl",
        ws.ADAPTER,
        params.finetune,
        settings,
        seed=params.base.seed,
        loss_plot=ws.LOSS_PLOT,
        preferences=ws.TRAINSET / "dpo.jsonl",
    )
    write_json(ws.stage_metrics("finetune"), record.as_dict())
    print(record.summary())


if __name__ == "__main__":
    main()
