"""The model families the service knows (``ml.registry``), as the Studio reads them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ml.registry import Capability, DataKind


class ModelFamilyPublic(BaseModel):
    name: str = Field(description="The model type: what `model=` takes.")
    label: str = Field(description="What people read.")
    data: DataKind = Field(description="What it trains on.")
    capabilities: list[Capability] = Field(description="What a loaded version answers.")
    default: bool = Field(description="Trained by `deeprec bootstrap` when none is active.")
    required: bool = Field(description="/readyz waits for it.")
    recommend_rank: int | None = Field(description="Place in the default recommendation order.")
    similar_rank: int | None = Field(description="Place in the similar-items order.")
    image_model: str | None = Field(
        description="`model=` of POST /v1/images/reconstruct, for the families that reconstruct."
    )
    loaded_version: str | None = Field(description="The version this worker serves, if any.")


class ModelFamilyList(BaseModel):
    items: list[ModelFamilyPublic]
