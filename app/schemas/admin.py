"""Admin: retrain requests, job status, model versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RetrainCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={
            "examples": [{"model": "ease", "params": {"l2": 300}}, {"model": "rbm", "params": {}}]
        },
    )

    model: str = Field(min_length=1, max_length=64, description="Model type to retrain.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the model's training config (see `deeprec train MODEL --help`).",
    )
    epochs: int | None = Field(default=None, ge=1, le=10_000)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class JobPublic(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "model_type": "ease",
                    "status": "succeeded",
                    "params": {"l2": 300},
                    "created_at": "2026-11-27T11:00:00Z",
                    "started_at": "2026-11-27T11:00:00Z",
                    "finished_at": "2026-11-27T11:00:09Z",
                    "error": None,
                    "model_version_id": 7,
                }
            ]
        },
    )

    id: int
    model_type: str
    status: str
    params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    model_version_id: int | None = None
    owner_host: str | None = None
    owner_pid: int | None = None
    heartbeat_at: datetime | None = None
    progress: dict[str, Any] | None = Field(
        default=None,
        description="Epoch of n, the current loss or validation figure, elapsed and estimated s.",
    )


class ModelVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True, protected_namespaces=())

    id: int
    model_type: str
    version: str
    checkpoint_path: str
    sha256: str | None
    metrics: dict[str, Any]
    params: dict[str, Any]
    created_at: datetime
    is_active: bool
    serving: bool = Field(default=False, description="This version is loaded and answering.")
