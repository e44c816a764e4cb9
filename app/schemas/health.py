"""Liveness and readiness answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthPublic(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessPublic(BaseModel):
    ready: bool
    database: str = Field(description="'ok' or why the database does not answer.")
    models: dict[str, str] = Field(description="Loaded model types and their versions.")
    missing: list[str] = Field(description="Required model types that are not loaded.")
    errors: dict[str, str] = Field(default_factory=dict, description="Why a load failed.")
