"""Service settings, read from the environment (prefix ``DEEPREC_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
        default="rbm",
        description="Comma-separated model types that must be loaded for /readyz to answer 200.",
    )
    default_models: str = Field(
        default="rbm,autoencoder,ease,content,hybrid,autoencoder-images,rbm-images,dbn,gan",
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
    model_sync_s: float = Field(
        default=10.0,
        ge=0,
        description="How often each worker loads active versions changed elsewhere (0: never).",
    )
    popularity_cache_s: float = Field(
        default=30.0, ge=0, description="How long the popularity answer for cold users is cached."
    )
    inference_threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="Threads per worker answering recommendations at once (CPU-bound work: scale "
        "with --workers; raise it only for a slow, remote database).",
    )

    @property
    def required_model_types(self) -> list[str]:
        return [m.strip() for m in self.required_models.split(",") if m.strip()]

    @property
    def default_model_types(self) -> list[str]:
        return [m.strip() for m in self.default_models.split(",") if m.strip()]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'deeprec.db').resolve()}"

    @property
    def resolved_checkpoint_dir(self) -> Path:
        return self.checkpoint_dir or self.data_dir / "checkpoints"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


@lru_cache
def get_settings() -> Settings:
    return Settings()
