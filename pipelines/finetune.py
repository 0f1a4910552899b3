"""Stage `finetune`: a short, bounded LoRA pass on the local base model; saves the adapter + loss plot."""

from __future__ import annotations

from llmops import workspace as ws
from llmops.finetune.lora import plot_loss, train_lora
from llmops.finetune.trainset import read_chat_jsonl
from llmops.jsonl import write_json
from pipelines._stage import setup


def main() -> None:
    params, settings = setup("finetune")
    report = train_lora(
        read_chat_jsonl(ws.TRAINSET / "train.jsonl"),
        read_chat_jsonl(ws.TRAINSET / "validation.jsonl"),
        params.finetune,
        base_cache=settings.base_model_cache,
        out_dir=ws.ADAPTER,
        seed=params.base.seed,
        progress=True,
    )
    plot_loss(report, ws.LOSS_PLOT)
    write_json(ws.stage_metrics("finetune"), report.as_dict())
    print({k: v for k, v in report.as_dict().items() if k != "train_loss"})


if __name__ == "__main__":
    main()
