"""Token counts of chat examples as the base model sees them, without importing transformers.

The training-set stage counts the tokens of each new example (to fit answers into ``finetune.max_seq_len``).
transformers' ``apply_chat_template`` renders the model's Jinja chat template in a sandbox and encodes the
result with the model's ``tokenizer.json``, special tokens matched, none added. Importing transformers for
that costs ~1.9 CPU s per process, more than counting a night's new examples; :func:`template_token_counter`
does the same two steps with jinja2 and tokenizers (the libraries transformers itself uses for them).
``tests/unit/test_tokens.py`` keeps the counts equal to transformers' on real examples. A template that uses
what only transformers provides (its ``{% generation %}`` tag) gives ``None``: the caller uses transformers.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmops.jsonl import read_json

if TYPE_CHECKING:
    from llmops.finetune.validate import CountTokens

_SPECIAL = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _raise(message: str) -> None:
    import jinja2

    raise jinja2.exceptions.TemplateError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False) -> str:
    # as transformers' filter: no HTML escaping (Jinja's own tojson escapes <, >, &)
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _special_tokens(*configs: dict[str, Any]) -> dict[str, str]:
    """The special tokens the template may use, first found in ``tokenizer_config.json`` then
    ``special_tokens_map.json`` (a string, or an added-token dict with ``content``)."""
    tokens: dict[str, str] = {}
    for config in configs:
        for name in _SPECIAL:
            value = config.get(name)
            value = value.get("content") if isinstance(value, dict) else value
            if isinstance(value, str):
                tokens.setdefault(name, value)
    return tokens


def template_token_counter(model_dir: Path) -> CountTokens | None:
    """A counter for a model directory with ``tokenizer.json`` and a chat template (``chat_template.jinja``
    or ``tokenizer_config.json``'s ``chat_template``), or ``None``."""
    try:
        config, tokens_map = read_json(model_dir / "tokenizer_config.json"), read_json(model_dir / "special_tokens_map.json")
    except (OSError, ValueError):  # an unreadable config: transformers says what is wrong with it
        return None
    template_file = model_dir / "chat_template.jinja"
    template = template_file.read_text(encoding="utf-8") if template_file.is_file() else config.get("chat_template")
    if not isinstance(template, str) or not (model_dir / "tokenizer.json").is_file():
        return None
    special = _special_tokens(config, tokens_map)
    if any(name in template and name not in special for name in _SPECIAL):
        return None  # a special token transformers would take from the tokenizer class's defaults
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from tokenizers import Tokenizer

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals.update(raise_exception=_raise, strftime_now=lambda fmt: datetime.now().strftime(fmt))
    try:
        compiled = env.from_string(template)
    except jinja2.TemplateSyntaxError:
        return None
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.no_truncation()  # as apply_chat_template: whatever tokenizer.json stores
    tokenizer.no_padding()

    def count(messages: list[dict[str, Any]]) -> int:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        rendered = compiled.render(messages=plain, tools=None, documents=None, add_generation_prompt=False, **special)
        return len(tokenizer.encode(rendered, add_special_tokens=False).ids)

    return count
