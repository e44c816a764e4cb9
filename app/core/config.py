"""Service settings, read from the environment (prefix ``DEEPREC_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml.registry import default_model_types, required_model_types


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEEPREC_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"),
        description="Cache of fetched data sets, the SQLite database and checkpoints.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in data_dir."
    )
    checkpoint_dir: Path | None = Field(
        default=None, description="Where trained models are written; default: data_dir/checkpoints."
    )
    dataset: str = Field(default="ml-100k", description="Data set the service trains on.")
    dataset_path: Path | None = Field(
        default=None, description="Local folder holding the data set's files (tried first)."
    )
    online: bool = Field(default=True, description="Allow downloading the official GroupLens zips.")
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N")
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token for /v1/admin; admin is disabled when unset."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # --- web service (app/main.py, app/services/)
    required_models: str = Field(
        default=",".join(required_model_types()),
        description="Comma-separated model types that must be loaded for /readyz to answer 200.",
    )
    default_models: str = Field(
        default=",".join(default_model_types()),
        description="Comma-separated model types `deeprec bootstrap` trains when none is active.",
    )
    max_upload_bytes: int = Field(
        default=5 * 1024 * 1024, gt=0, description="Largest request body accepted (413 above)."
    )
    retrain_timeout_s: float = Field(
        default=3600.0, gt=0, description="A retrain subprocess running longer is killed."
    )
    retrain_require_not_worse: bool = Field(
        default=False,
        description="Activate a retrained model only if its ndcg@10_all is not below the active.",
    )
    job_heartbeat_s: float = Field(
        default=5.0, gt=0, description="How often a job's owner beats the job's heartbeat."
    )
    job_stale_s: float = Field(
        default=120.0,
        gt=0,
        description="A job owned by another host whose heartbeat is older than this is failed "
        "at the next start (its owner is taken to be gone).",
    )
    train_missing: bool = Field(
        default=False,
        description="At start-up, queue retrain jobs (one at a time) for the default models "
        "that have no active version; they are swapped in when ready.",
    )
    model_sync_s: float = Field(
        default=10.0,
        ge=0,
        description="How often each worker loads active versions changed elsewhere (0: never).",
    )
    popularity_cache_s: float = Field(
        default=30.0, ge=0, description="How long the popularity answer for cold users is cached."
    )
    worker_healthcheck_s: int = Field(
        default=120,
        ge=1,
        le=3600,
        description="`deeprec serve --workers N`: seconds uvicorn's supervisor waits for a worker "
        "to answer its health ping before killing it as hung. A worker importing torch and "
        "loading every model on a busy machine can take far longer than uvicorn's 5 s default.",
    )
    inference_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Threads per worker answering recommendations at once (CPU-bound work: scale "
        "with --workers; raise it only for a slow, remote database).",
    )
    # --- answer cache and CPU budget (app/services/answer_cache.py, precompute.py, cpu_budget.py)
    cache_url: str | None = Field(
        default=None,
        description="Redis URL of the shared answer cache (replicas share it), e.g. "
        "redis://127.0.0.1:6379/0; unset: each worker caches in its own memory only.",
    )
    cache_namespace: str | None = Field(
        default=None,
        max_length=64,
        description="Prefix of this service's keys in Redis; default: derived from the database "
        "URL (replicas of one database share answers, other databases never do).",
    )
    cache_max_entries: int = Field(
        default=50_000,
        ge=0,
        description="Answers each worker keeps in memory (LRU; about 2 KB each). 0 with no "
        "cache_url turns caching off: every answer is computed.",
    )
    cache_ttl_s: float = Field(
        default=86_400.0, gt=0, description="How long Redis keeps an answer nobody asks for."
    )
    cache_timeout_s: float = Field(
        default=0.25,
        gt=0,
        description="Redis connect and socket timeout: past it the answer is computed instead.",
    )
    cache_retry_s: float = Field(
        default=5.0,
        ge=0,
        description="After a Redis error, compute without Redis for this long before trying again.",
    )
    cache_precompute_users: int = Field(
        default=1000,
        ge=0,
        description="After a model version is swapped in, fill the cache for this many of the most "
        "recently active users (0: never).",
    )
    hot_path: bool = Field(
        default=True,
        description="Answer well-formed recommendation requests in a lean ASGI path in front of "
        "FastAPI (same answers and headers; anything unusual still goes through FastAPI).",
    )
    torch_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="torch intra-op threads per serving worker (scale with --workers instead).",
    )
    inline_miss_ms: float = Field(
        default=10.0,
        ge=0,
        le=1000,
        description="With SQLite and no Redis, the hot path computes a cache miss on the event "
        "loop when that model's misses cost at most this much CPU (ms, a running average); "
        "slower ones run in the inference thread. In the thread a miss waits for the GIL each "
        "time it gives it up while the loop answers hits, and took many times its CPU cost "
        "(bench/results/serving.md): on the loop it delays the requests behind it once, by its "
        "cost. 0: every miss in the thread.",
    )
    gil_switch_ms: float = Field(
        default=0.5,
        gt=0,
        le=100,
        description="Python's thread switch interval in each serving worker (ms). The event loop "
        "answers cached requests while a thread computes a miss; at Python's default 5 ms, the "
        "thread waits up to that long each time it gives the GIL up (every database call or "
        "NumPy kernel), which makes a 1 ms answer take tens of ms.",
    )
    loop_stall_ms: float = Field(
        default=0.0,
        ge=0,
        le=10_000,
        description="Diagnostics: log the event loop's stack whenever it has not ticked for this "
        "long (ms), and time its lag into deeprec_event_loop_lag_seconds. 0: off.",
    )
    retrain_threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Thread cap of the service's retrain subprocesses (OMP/MKL/torch); "
        "default: half the cores.",
    )
    retrain_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Niceness added to a retrain subprocess, so serving workers win the CPU.",
    )

    @property
    def required_model_types(self) -> list[str]:
        return _names(self.required_models)

    @property
    def default_model_types(self) -> list[str]:
        return _names(self.default_models)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'deeprec.db').resolve()}"

    @property
    def resolved_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir or self.data_dir / "checkpoints"


def _names(text: str) -> list[str]:
    """The names of a comma-separated list, blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
