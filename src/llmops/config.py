"""Configuration, parsed once at the edge.

* :class:`Params` mirrors ``params.yaml``: every value that changes a result, one section per stage.
  DVC tracks it; stages read only their own section (``params: [base, <stage>]`` in dvc.yaml).
* :class:`Settings` comes from the environment / ``.env``: where state lives, endpoints and secrets.

Library functions take these objects as arguments and never read params.yaml or ``os.environ`` themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from llmops.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BaseParams(_Section):
    seed: int = 42
    system_prompt: str = (
        "You are a helpful customer-support assistant. Answer briefly and politely, using the provided context when there is one."
    )


class IngestParams(_Section):
    conversations: str = "data/sample/conversations.jsonl"
    documents: str = "data/sample/documents.jsonl"
    feedback: str = "data/sample/feedback.jsonl"


class CleanParams(_Section):
    unicode_form: Literal["NFC", "NFKC"] = "NFKC"
    min_turn_chars: int = 1
    max_turn_chars: int = 8000
    drop_duplicates: bool = True


class RedactParams(_Section):
    language: str = "en"
    spacy_model: str = "en_core_web_sm"
    entities: list[str] = Field(
        default_factory=lambda: [
            "PERSON",
            "EMAIL_ADDRESS",
            "PHONE_NUMBER",
            "CREDIT_CARD",
            "IBAN_CODE",
            "US_SSN",
            "IP_ADDRESS",
            "URL",
            "LOCATION",
            "SOCIAL_HANDLE",
            "STREET_ADDRESS",
            "ACCOUNT_NUMBER",
            "AGE",
            "DATE_OF_BIRTH",
            "ZIP_CODE",
            "US_DRIVER_LICENSE",
        ]
    )
    document_entities: list[str] = Field(
        default_factory=lambda: ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"]
    )
    score_threshold: float = 0.4
    batch_size: int = 64
    # issue #3: engine, operators, vault, parallelism, leak scan
    engine: Literal["fast", "presidio"] = "fast"
    operators: dict[str, Literal["pseudonymize", "replace", "redact", "mask", "hash"]] = Field(default_factory=dict)
    vault: bool = False
    workers: int = 0
    parallel_min_texts: int = 4000
    scan_entities: list[str] = Field(
        default_factory=lambda: ["EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS", "PHONE_NUMBER"]
    )
    scan_threshold: float = 0.6


class IndexParams(_Section):
    collection: str = "knowledge-base"
    chunk_words: int = 200
    chunk_overlap: int = 40
    embedder: str = "all-MiniLM-L6-v2"
    batch_size: int = 64


class TrainsetParams(_Section):
    validation_share: float = 0.1
    min_answer_chars: int = 20
    max_examples: int = 2000
    include_feedback: bool = True


class FinetuneParams(_Section):
    backend: Literal["local", "openai"] = "local"
    base_model: str = "SmolLM2-135M-Instruct"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    learning_rate: float = 2e-4
    max_steps: int = 12
    batch_size: int = 2
    max_seq_len: int = 192
    max_examples: int = 64
    eval_examples: int = 16


class EvaluateParams(_Section):
    questions: str = "data/sample/eval_questions.jsonl"
    k: list[int] = Field(default_factory=lambda: [1, 5, 10])
    answer_questions: int = 6
    max_new_tokens: int = 48
    context_chars: int = 900


class MonitorParams(_Section):
    reference: str = "data/sample/reference_conversations.jsonl"
    drift_share: float = 0.5
    text_content_drift: bool = True


class Params(_Section):
    base: BaseParams = Field(default_factory=BaseParams)
    ingest: IngestParams = Field(default_factory=IngestParams)
    clean: CleanParams = Field(default_factory=CleanParams)
    redact: RedactParams = Field(default_factory=RedactParams)
    index: IndexParams = Field(default_factory=IndexParams)
    trainset: TrainsetParams = Field(default_factory=TrainsetParams)
    finetune: FinetuneParams = Field(default_factory=FinetuneParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    monitor: MonitorParams = Field(default_factory=MonitorParams)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; a wrong key or type is a :class:`ConfigError` naming it."""
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} not found: run from the project root or pass --params") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path} is invalid:\n{exc}") from exc


class Settings(BaseSettings):
    """Where state lives and how to reach external systems. Read from env vars / ``.env``."""

    model_config = SettingsConfigDict(env_file=".env", env_prefix="LLMOPS_", extra="ignore")

    home: Path = Field(default=Path(".llmops"), description="state directory (LLMOPS_HOME)")
    model_cache: Path | None = Field(default=None, description="converted base models; default <home>/models")
    # S3 / any S3-compatible endpoint (MinIO, moto). Credentials come from the boto3 chain.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    dvc_remote_url: str | None = Field(default=None, description="e.g. s3://bucket/dvc; default: <home>/dvc-remote")
    # Chroma server; default is an embedded PersistentClient under <home>/chroma.
    chroma_url: str | None = None
    # OpenAI or any OpenAI-compatible endpoint.
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    notify_webhook: str | None = None
    # Key of the reversible PII vault (Fernet, urlsafe base64 of 32 bytes); only read when redact.vault is on.
    pii_vault_key: SecretStr | None = None

    @property
    def pii_vault_path(self) -> Path:
        return self.path("pii-vault", "vault.jsonl")

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    def path(self, *parts: str) -> Path:
        """A path under the state directory."""
        return self.home_dir.joinpath(*parts)

    @property
    def base_model_cache(self) -> Path:
        """Where the GGUF base model is kept after its one-time conversion (shareable between homes)."""
        return (self.model_cache.expanduser().resolve() if self.model_cache else self.path("models")) / "base"

    @property
    def chroma_dir(self) -> Path:
        return self.path("chroma")

    @property
    def remote_url(self) -> str:
        return self.dvc_remote_url or str(self.path("dvc-remote"))


def apply_overrides(path: str | Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (``{"finetune.max_steps": "50"}``) in params.yaml, keeping its comments.

    Values given as strings are parsed as YAML (``"50"`` -> 50). The result is validated before it is
    written, so a typo never reaches disk. Returns the keys with their new values.
    """
    from ruamel.yaml import YAML

    path = Path(path)
    rt = YAML()
    rt.preserve_quotes = True
    doc = rt.load(path.read_text(encoding="utf-8"))
    changed: dict[str, Any] = {}
    for dotted, raw in overrides.items():
        value = yaml.safe_load(raw) if isinstance(raw, str) else raw
        *parents, leaf = dotted.split(".")
        node = doc
        for key in parents:
            if key not in node:
                raise ConfigError(f"override {dotted!r}: no section {key!r} in {path}")
            node = node[key]
        node[leaf] = value
        changed[dotted] = value
    try:
        Params.model_validate(yaml.safe_load(_dump(rt, doc)))
    except ValidationError as exc:
        raise ConfigError(f"overrides {overrides} make {path} invalid:\n{exc}") from exc
    path.write_text(_dump(rt, doc), encoding="utf-8")
    return changed


def _dump(rt: Any, doc: Any) -> str:
    import io

    buf = io.StringIO()
    rt.dump(doc, buf)
    return buf.getvalue()
