"""Top-k recommendations for one user, folded in from their ratings at request time."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Query, Response

from app.api.deps import ServingDep
from app.api.routes.users import UserId
from app.schemas.common import ERROR_RESPONSES
from app.schemas.item import ScoredItem
from app.schemas.recommendation import RecommendationsPublic
from app.services.recommendations import recommend

router = APIRouter(prefix="/v1/users", tags=["recommendations"], responses=ERROR_RESPONSES)


@router.get("/{user_id}/recommendations", response_model=RecommendationsPublic)
async def recommendations(
    serving: ServingDep,
    user_id: UserId,
    k: Annotated[int, Query(ge=1, le=1000, description="How many items.")] = 10,
    model: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Model type (rbm, autoencoder, ease, ...); default: the best loaded.",
        ),
    ] = None,
    exclude_seen: Annotated[bool, Query(description="Leave out items the user rated.")] = True,
    genre: Annotated[
        str | None, Query(max_length=64, description="Only items of this genre.")
    ] = None,
) -> Response:
    """The user's top-k items with titles and scores, and the model version that answered.

    A user without ratings the model knows gets the most rated items (``strategy: popularity``).
    """

    def answer() -> Response:
        # Everything blocking (the database read, the model's fold-in) runs here, in ONE trip to
        # the threadpool: each extra hop costs more than this endpoint's own work.
        with serving.session_factory() as session:
            result = recommend(
                session=session,
                registry=serving.registry,
                catalog=serving.catalog,
                metrics=serving.metrics,
                user_id=user_id,
                k=k,
                model=model,
                exclude_seen=exclude_seen,
                genre=genre,
            )
        payload = RecommendationsPublic(
            user_id=result.user_id,
            model=result.model,
            model_version=result.model_version,
            strategy=result.strategy,
            k=k,
            genre=genre or None,
            items=[ScoredItem.of(s.item, s.score) for s in result.items],
        )
        # Serialised here, in the worker: FastAPI would otherwise validate and serialise the
        # model again on the event loop.
        return Response(payload.model_dump_json(), media_type="application/json")

    return await to_thread.run_sync(answer, limiter=serving.limiter)
