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
            "UK_NINO",
            "NATIONAL_ID",
            "MAC_ADDRESS",
            "CRYPTO",
            "VEHICLE_ID",
        ]
    )
    document_entities: list[str] = Field(
        default_factory=lambda: ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "UK_NINO", "IP_ADDRESS"]
    )
    score_threshold: float = 0.4
    batch_size: int = 64
    ner_context_words: int = 6
    # issue #3: engine, operators, vault, parallelism, leak scan
    engine: Literal["fast", "presidio"] = "fast"
    operators: dict[str, Literal["pseudonymize", "replace", "redact", "mask", "hash"]] = Field(default_factory=dict)
    vault: bool = False
    workers: int = 0
    parallel_min_texts: int = 8000  # below: one process (a worker's start costs more than it saves)
    stream_batch: int = Field(default=2000, ge=1)  # new/changed conversations redacted per batch (bounded memory)
    scan_entities: list[str] = Field(
        default_factory=lambda: ["EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "UK_NINO", "IP_ADDRESS", "PHONE_NUMBER"]
    )
    # The redaction boundary: a record with a residual finding is quarantined; the stage fails above this share.
    max_leak_share: float = Field(default=0.01, ge=0.0, le=1.0)
    # Metadata keys kept (their values redacted like text); every other metadata key is dropped.
    metadata_allow: list[str] = Field(
        default_factory=lambda: ["source", "intent", "category", "company", "domain", "doc_id", "language", "product"]
    )
    # Channel names kept; any other channel becomes the allowed name it starts with, or "other".
    channel_allow: list[str] = Field(
        default_factory=lambda: [
            "chat",
            "email",
            "twitter",
            "app",
            "web",
            "phone",
            "voice",
            "sms",
            "whatsapp",
            "messenger",
            "facebook",
            "instagram",
            "telegram",
            "slack",
            "teams",
            "social",
            "api",
            "other",
        ]
    )
    # Identifiers (conversation_id, generation_id) replaced by a keyed hash: "pii" when one looks like
    # personal data, "all" always, "none" never.
    hash_ids: Literal["pii", "all", "none"] = "pii"

    @property
    def scan_threshold(self) -> float:
        """The leak gate's threshold: the redactor's own ``score_threshold`` (one detector, one threshold, so
        text the redactor produced never fails the gate on a score the redactor did not act on)."""
        return self.score_threshold


class EmbedTuneParams(_Section):
    epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=32, ge=2)
    learning_rate: float = 3e-5
    warmup_share: float = 0.1
    max_pairs: int = Field(default=2000, ge=1)
    max_seq_len: int = Field(default=256, ge=16)
    min_gain: float = 0.0


class IndexParams(_Section):
    collection: str = "knowledge-base"
    chunk_words: int = 200
    chunk_overlap: int = 40
    embedder: str = "all-MiniLM-L6-v2"
    batch_size: int = 64
    chunk_mode: Literal["paragraph", "sentence"] = "paragraph"
    retention: int = Field(default=3, ge=1)
    retriever: Literal["hybrid", "dense", "bm25"] = "hybrid"
    dense_weight: float = Field(default=0.5, ge=0)
    bm25_weight: float = Field(default=0.5, ge=0)
    candidates: int = Field(default=50, ge=1)
    embedding_rpm: int = Field(default=3000, ge=1)
    embedding_retries: int = Field(default=5, ge=0)
    tune: EmbedTuneParams = Field(default_factory=EmbedTuneParams)


class TrainsetParams(_Section):
    validation_share: float = 0.1
    max_validation: int = Field(default=200, ge=0)  # validation examples kept (stable: lowest split hash first); 0 = all
    min_answer_chars: int = 20
    max_examples: int = 2000
    include_feedback: bool = True
    max_answer_chars: int = Field(default=4000, ge=1)
    min_alpha_share: float = Field(default=0.5, ge=0, le=1)  # answers mostly digits/symbols are dropped
    near_dup_threshold: float = Field(default=0.8, ge=0, le=1)  # word-3-shingle Jaccard; 0 disables
    # In-domain only: a conversation reply (or any answer) is kept when this share of its content words
    # occurs in the context the answer service retrieves for its question.
    min_support: float = Field(default=0.5, ge=0, le=1)
    max_pairs_per_conversation: int = Field(default=4, ge=0)  # question/answer exchanges per conversation (0: all)
    kb_pairs: bool = True  # knowledge-base pages' FAQ sections (question heading + paragraph) as examples
    # All feedback together (every key) at most this share of train.jsonl, after every filter (1: no cap).
    max_feedback_share: float = Field(default=0.5, gt=0, le=1)


class FinetuneParams(_Section):
    backend: Literal["local", "openai"] = "local"
    base_model: str = "SmolLM2-135M-Instruct"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0  # >0 draws a random mask per adapted layer and step: ~20% of a CPU step
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"])
    learning_rate: float = 2e-4
    max_steps: int = 12
    # Wall-clock budget of the training loop on CPU (0: none): training stops at max_steps or here, whichever
    # comes first. On a GPU, max_steps (or epochs_gpu) alone decides.
    max_minutes: float = Field(default=0.0, ge=0)
    epochs_gpu: float = Field(default=0.0, ge=0)  # > 0 on a GPU: train this many passes over the data instead of max_steps
    threads: int = Field(default=0, ge=0)  # torch CPU threads (0: the cores this process may run on)
    method: Literal["sft", "dpo", "sft+dpo"] = "sft"
    dpo_min_pairs: int = Field(default=8, ge=1)  # fewer curated pairs: the DPO step is skipped (reported)
    dpo_beta: float = Field(default=0.1, gt=0)
    dpo_steps: int = Field(default=8, ge=1)
    dpo_learning_rate: float = Field(default=5e-5, gt=0)
    batch_size: int = 2
    max_seq_len: int = 192
    max_examples: int = 64
    eval_examples: int = 16
    eval_every: int = Field(default=6, ge=0)  # validation loss every N steps (0: before/after only)
    compile: bool = True  # torch.compile the model on a GPU (batches padded to max_seq_len: one graph); never on CPU
    # Validation and cost (checked before any training or upload).
    epochs: int = Field(default=1, ge=1)
    context_limit: int = Field(default=2048, ge=16)
    price_per_1m_tokens: dict[str, float] = Field(
        default_factory=lambda: {"SmolLM2-135M-Instruct": 0.0, "gpt-4o-mini-2024-07-18": 3.0, "gpt-4.1-mini-2025-04-14": 5.0}
    )
    budget_usd: float = Field(default=5.0, ge=0)
    # OpenAI backend.
    openai_model: str = "gpt-4o-mini-2024-07-18"
    suffix: str = "llmops"
    poll_interval_s: float = Field(default=10.0, gt=0)
    max_wait_s: float = Field(default=6 * 3600.0, gt=0)


class GateParams(_Section):
    """Promotion gate: the challenger must beat the champion by ``margin`` on ``primary`` (paired bootstrap)."""

    primary: str = "answers.token_f1"
    margin: float = 0.0
    guarded: dict[str, float] = Field(default_factory=lambda: {"retrieval.recall@5": 0.01})
    score_field: str = "answers.token_f1"
    bootstrap_samples: int = Field(default=2000, ge=100)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    min_paired_examples: int = Field(default=100, ge=1)
    require_approval: bool = False
    approval_timeout_s: int = Field(default=14400, ge=1)


class GatesetParams(_Section):
    """The frozen gate set (stage ``gateset``): answered questions of ``evaluate.questions``, one per dialogue."""

    min_answer_chars: int = Field(default=10, ge=1)
    near_duplicate: float = Field(default=0.8, ge=0.0, le=1.0)
    max_questions: int = Field(default=0, ge=0)


class RetrainParams(_Section):
    min_new_examples: int = Field(default=20, ge=0)


class EvaluateParams(_Section):
    questions: str = "data/sample/eval_questions.jsonl"
    gate_questions: str = "data/gateset/questions.jsonl"
    k: list[int] = Field(default_factory=lambda: [1, 5, 10])
    answer_questions: int = Field(default=0, ge=0)
    max_new_tokens: int = 128
    batch_size: int = Field(default=16, ge=1)
    context_chars: int = 900
    groundedness_threshold: float = 0.6
    judge_questions: int = 2
    judge_repeats: int = 1
    judge_model: str = "gpt-4o-mini"


class MonitorParams(_Section):
    reference: str = "data/sample/reference_conversations.jsonl"
    drift_share: float = 0.5
    text_content_drift: bool = True
    new_vocab_threshold: float = 0.35
    embedding_drift: bool = True
    embedding_method: Literal["model", "distance", "mmd"] = "model"
    embedding_threshold: float = 0.8
    embedding_sample: int = 1000
    reference_documents: str = "data/sample/documents.jsonl"
    quality_current_days: int = 2
    quality_min_answers: int = 30
    max_thumbs_down_increase: float = 0.1
    max_refusal_increase: float = 0.1
    max_latency_ratio: float = 1.5
    max_metric_drop: float = 0.05
    retrain_on_trigger: bool = True
    retrain_deployment: str = "retrain/retrain"
    # The current window: conversations that arrived since the last monitored run (first run: the last
    # current_days days of the archive); fewer than min_current_rows -> the drift check is skipped.
    current_days: int = Field(default=7, ge=1)
    min_current_rows: int = Field(default=30, ge=1)


def _reviewers_only() -> list[Literal["user", "reviewer"]]:
    return ["reviewer"]


class FeedbackParams(_Section):
    near_duplicate: float = 0.8
    max_answer_chars: int = 2000
    min_support: float = 0.3
    gold_roles: list[Literal["user", "reviewer"]] = Field(default_factory=_reviewers_only)
    max_share_per_key: float = Field(default=0.05, gt=0, lt=1)
    max_dpo_pairs_per_query: int = Field(default=4, ge=0)
    allowed_link_domains: list[str] = Field(default_factory=list)
    moderation: bool = True


class ServeParams(_Section):
    top_k: int = 3
    max_new_tokens: int = 64
    context_chars: int = 900
    cache_size: int = 2048
    max_body_bytes: int = 65536
    max_json_depth: int = Field(default=32, ge=2)  # request JSON nested deeper: 400 before any parser recurses
    fsync: bool = False
    rate_limit_per_minute: int = Field(default=120, ge=1)
    max_queue: int = Field(default=32, ge=1)
    single_flight: bool = True
    protect_metrics: bool = True
    anonymous_role: Literal["user", "reviewer"] = "user"
    # Feedback is accepted for the answers of the last feedback_window_days days, at most max_known_generations
    # of them (the newest): the service's memory stays bounded however many answers it gives.
    feedback_window_days: int = Field(default=7, ge=1)
    max_known_generations: int = Field(default=200_000, ge=1)


class Params(_Section):
    base: BaseParams = Field(default_factory=BaseParams)
    ingest: IngestParams = Field(default_factory=IngestParams)
    clean: CleanParams = Field(default_factory=CleanParams)
    redact: RedactParams = Field(default_factory=RedactParams)
    index: IndexParams = Field(default_factory=IndexParams)
    trainset: TrainsetParams = Field(default_factory=TrainsetParams)
    finetune: FinetuneParams = Field(default_factory=FinetuneParams)
    gate: GateParams = Field(default_factory=GateParams)
    gateset: GatesetParams = Field(default_factory=GatesetParams)
    retrain: RetrainParams = Field(default_factory=RetrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    monitor: MonitorParams = Field(default_factory=MonitorParams)
    feedback: FeedbackParams = Field(default_factory=FeedbackParams)
    serve: ServeParams = Field(default_factory=ServeParams)


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; a wrong key or type is a :class:`ConfigError` naming it."""
    path = Path(path)
    try:
        # libyaml's loader when PyYAML has it (~10x faster: every stage reads params.yaml on start)
        raw: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
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
    openai_chat_model: str | None = Field(default=None, description="e.g. gpt-4o-mini; serves with OpenAI when keyed")
    # dask.distributed scheduler (tcp://host:8786) for the data-parallel work (redaction, embedding,
    # evaluation answers); default: local processes. See README, "Scaling out with Dask".
    dask_address: str | None = None
    notify_webhook: str | None = None
    # Run history (metrics + drift per run, archived reports): a directory or s3://bucket/prefix.
    history_uri: str | None = Field(default=None, description="default: <home>/history")
    # Model registry: a local directory or s3://bucket/prefix; default <home>/registry.
    registry_uri: str | None = None
    # Key of the reversible PII vault (Fernet, urlsafe base64 of 32 bytes); only read when redact.vault is on.
    pii_vault_key: SecretStr | None = None
    # Key of the keyed hash (HMAC-SHA256) that replaces identifiers that look like personal data; default:
    # a random key created once under <home>/pii-vault/id-hash.key (ids stay stable on this state directory).
    pii_hash_key: SecretStr | None = None
    # API keys of the answer service: comma-separated ``name[@role]:secret`` (secret may be ``sha256:<hex>``),
    # or a file with one entry a line. See README, "The answer service".
    api_keys: SecretStr | None = None
    api_keys_file: Path | None = None

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
    def registry_root(self) -> str:
        return self.registry_uri or str(self.path("registry"))

    @property
    def chroma_dir(self) -> Path:
        return self.path("chroma")

    @property
    def history(self) -> str:
        return self.history_uri or str(self.path("history"))

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
