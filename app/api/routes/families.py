"""``GET /v1/models``: every model family the service knows and what each can answer, so that
clients (the Studio) list families from the service instead of hard-coding them."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RegistryDep
from app.schemas.common import ERROR_RESPONSES
from app.schemas.family import ModelFamilyList, ModelFamilyPublic
from ml.registry import CAPABILITIES, SPECS, reconstructors

router = APIRouter(prefix="/v1/models", tags=["models"], responses=ERROR_RESPONSES)


@router.get("", response_model=ModelFamilyList)
def model_families(registry: RegistryDep) -> ModelFamilyList:
    """Every family, in declaration order, with the version this worker serves."""
    loaded = registry.snapshot()
    image_words = {family: word for word, family in reconstructors().items()}
    return ModelFamilyList(
        items=[
            ModelFamilyPublic(
                name=spec.name,
                label=spec.label or spec.name,
                data=spec.data,
                capabilities=[c for c in CAPABILITIES if c in spec.capabilities],
                default=spec.default,
                required=spec.required,
                recommend_rank=spec.recommend_rank,
                similar_rank=spec.similar_rank,
                image_model=image_words.get(spec.name),
                loaded_version=loaded[spec.name].version if spec.name in loaded else None,
            )
            for spec in SPECS
        ]
    )
