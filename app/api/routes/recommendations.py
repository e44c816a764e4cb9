"""Top-k recommendations for one user, folded in from their ratings at request time."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Query, Response

from app.api.deps import ServingDep
from app.api.routes.users import UserId
from app.schemas.common import ERROR_RESPONSES
from app.schemas.recommendation import RecommendationsPublic
from app.services.recommendations import recommendation_answer

router = APIRouter(prefix="/v1/users", tags=["recommendations"], responses=ERROR_RESPONSES)

# The query's contract, shared with the hot path (app/api/hot_path.py), which answers the
# plainly valid requests in front of this route.
DEFAULT_K = 10
MAX_K = 1000
MAX_NAME = 64


@router.get("/{user_id}/recommendations", response_model=RecommendationsPublic)
async def recommendations(
    serving: ServingDep,
    user_id: UserId,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many items.")] = DEFAULT_K,
    model: Annotated[
        str | None,
        Query(
            max_length=MAX_NAME,
            description="Model type (rbm, autoencoder, ease, ...); default: the best loaded.",
        ),
    ] = None,
    exclude_seen: Annotated[bool, Query(description="Leave out items the user rated.")] = True,
    genre: Annotated[
        str | None, Query(max_length=MAX_NAME, description="Only items of this genre.")
    ] = None,
) -> Response:
    """The user's top-k items with titles and scores, and the model version that answered.

    A user without ratings the model knows gets the most rated items (``strategy: popularity``).
    The ``X-Cache`` header says whether the answer came from the answer cache (``hit``), was
    computed (``miss``), or caching is off (``off``); either way it reflects every rating written
    before the request.
    """

    def answer() -> Response:
        # Everything blocking (the database read, the cache, the model's fold-in) runs here, in
        # ONE trip to the threadpool: each extra hop costs more than a cached answer's own work.
        body, cache = recommendation_answer(
            reads=serving.reads,
            registry=serving.registry,
            catalog=serving.catalog,
            metrics=serving.metrics,
            cache=serving.cache,
            user_id=user_id,
            k=k,
            model=model,
            exclude_seen=exclude_seen,
            genre=genre,
        )
        # The bytes are RecommendationsPublic's JSON, built once with orjson (and cached as
        # such): returning a Response skips FastAPI's validation and serialisation.
        return Response(body, media_type="application/json", headers={"X-Cache": cache})

    return await to_thread.run_sync(answer, limiter=serving.limiter)
