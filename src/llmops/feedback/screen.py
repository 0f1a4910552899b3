"""Screening of feedback before it can become a training example.

Local rules (always on, no network), each a reason counted in the feedback metrics:

* ``screened_injection``: instructions aimed at the model ("ignore previous instructions", "you are now",
  chat-template tokens, "system prompt"), in the query or the answer;
* ``screened_credentials``: the answer asks for secrets or payments (card number / CVV / PIN / password /
  one-time codes, gift cards, crypto, wire transfers);
* ``screened_link``: the answer carries a link or a bare domain not on ``feedback.allowed_link_domains``;
* ``screened_toxicity``: insults and slurs in the answer (a short, explicit word list).

With ``OPENAI_API_KEY`` set and ``feedback.moderation`` on, answers the local rules pass also go through
the OpenAI moderation endpoint (``screened_moderation``). The rules are deliberately conservative: a
correction that trips one is dropped from training, never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from llmops.config import FeedbackParams

_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[\w\s,]{0,30}\b(instructions?|prompts?|rules|guidelines|context)\b"
    r"|\byou\s+are\s+now\b|\bfrom\s+now\s+on\b|\bact\s+as\s+(an?\s+)?(unfiltered|uncensored|jailbroken|dan)\b"
    r"|\bpretend\s+(to\s+be|you\s+are)\b|\bsystem\s+prompt\b|\bdeveloper\s+mode\b|\bjailbreak|\bdo\s+anything\s+now\b"
    r"|\bnew\s+instructions?\b|\b(assistant|model|ai)\s*(must|should|will)\s+(always|never|now)\b"
    r"|<\|[a-z_]+\|>|\[/?inst\]|^\s*#{2,}\s*(system|instruction)|<\s*/?\s*(system|im_start|im_end)\s*>",
    re.IGNORECASE | re.MULTILINE,
)
_SECRET = (
    r"(card\s*(number|no\.?|details)|credit\s+card|debit\s+card|cvv2?|cvc|security\s+code|pin(\s+code)?|passwords?|passcode"
    r"|one[-\s]?time\s+(code|password)|otp|verification\s+code|social\s+security\s+number|ssn|login\s+details|seed\s+phrase"
    r"|bank\s+(login|details|account\s+number))"
)
_CREDENTIALS = re.compile(
    r"\b(send|give|share|provide|tell|email|e-mail|text|dm|message|reply\s+with|confirm|read\s+out|type)"
    r"(\s+(it\s+)?(to\s+)?(me|us|them|our\s+\w+|the\s+\w+|[\w.+-]+@[\w.-]+))?\s+(me\s+|us\s+)?"
    r"your\s+(full\s+|complete\s+|\d+-digit\s+)?(card\s*(and|&|\+|,)\s*)?"
    + _SECRET
    + r"\b|\b(pay|send|transfer|wire|deposit)\b[^.!?\n]{0,40}\b(gift\s*cards?|bitcoin|btc|crypto|usdt|western\s+union|moneygram"
    r"|wallet\s+address)\b|\bwire\s+(the\s+)?(money|funds|payment)\b",
    re.IGNORECASE,
)
_LINK = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"']+|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|ru|cn|xyz|top|info|biz|co|me|ly|gg|app|link|click"
    r"|online|site|shop|tk|ml|ga|cf|gq|zip|mov)\b(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
_TOXIC = re.compile(
    r"\b(idiots?|idiotic|stupid|moron(s|ic)?|dumb(ass)?|imbeciles?|retard(s|ed)?|shut\s+up|loser|scum|bitch(es)?|bastards?"
    r"|fuck\w*|shit\w*|asshole\w*|cunt\w*|dickhead\w*|piss\s+off|kill\s+yourself|kys|worthless)\b",
    re.IGNORECASE,
)


class Moderation(Protocol):
    """A content classifier: one flag per text."""

    def flagged(self, texts: Sequence[str]) -> list[bool]: ...


class OpenAIModeration:
    """The OpenAI moderation endpoint (``omni-moderation-latest``), in batches."""

    def __init__(self, *, api_key: str | None, base_url: str | None = None, model: str = "omni-moderation-latest") -> None:
        from openai import OpenAI

        self._client = OpenAI(api_key=api_key, base_url=base_url, max_retries=3)
        self.model = model

    @classmethod
    def from_settings(cls, settings: Any) -> OpenAIModeration | None:
        """None without ``OPENAI_API_KEY`` (local rules only)."""
        if settings.openai_api_key is None:
            return None
        return cls(api_key=settings.openai_api_key.get_secret_value(), base_url=settings.openai_base_url)

    def flagged(self, texts: Sequence[str]) -> list[bool]:
        out: list[bool] = []
        for i in range(0, len(texts), 32):
            resp = self._client.moderations.create(model=self.model, input=list(texts[i : i + 32]))
            out += [bool(r.flagged) for r in resp.results]
        return out


def _link_allowed(link: str, allowed: Sequence[str]) -> bool:
    host = re.sub(r"^(https?://)?(www\.)?", "", link.lower()).split("/", 1)[0].split(":", 1)[0]
    return any(host == d or host.endswith("." + d) for d in allowed)


def screen_reason(query: str, answer: str, cfg: FeedbackParams) -> str | None:
    """The first local rule the (query, answer) pair trips, or None."""
    if _INJECTION.search(query) or _INJECTION.search(answer):
        return "screened_injection"
    if _CREDENTIALS.search(answer):
        return "screened_credentials"
    allowed = [d.lower().removeprefix("www.") for d in cfg.allowed_link_domains]
    if any(not _link_allowed(m.group(0), allowed) for m in _LINK.finditer(answer)):
        return "screened_link"
    if _TOXIC.search(answer):
        return "screened_toxicity"
    return None


def screen_pairs(pairs: Sequence[tuple[str, str]], cfg: FeedbackParams, moderation: Moderation | None = None) -> list[str | None]:
    """A drop reason (or None) per (query, answer): local rules, then moderation for what they let through."""
    reasons = [screen_reason(q, a, cfg) for q, a in pairs]
    if moderation is not None and cfg.moderation:
        todo = [i for i, r in enumerate(reasons) if r is None]
        for i, flag in zip(todo, moderation.flagged([pairs[i][1] for i in todo]), strict=True):
            if flag:
                reasons[i] = "screened_moderation"
    return reasons
