"""All routes in one router. A route module joins with its import and one line here.

Each route module's ``APIRouter`` carries its FULL prefix (``APIRouter(prefix="/v1/gan")``) and is
included WITHOUT a prefix, so the route templates the metrics are labelled with are the real paths.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import (
    admin,
    embeddings,
    families,
    gan,
    health,
    images,
    items,
    ratings,
    recommendations,
    users,
)

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(users.router)
api_router.include_router(ratings.router)
api_router.include_router(recommendations.router)
api_router.include_router(items.router)
api_router.include_router(admin.router)
api_router.include_router(gan.router)
api_router.include_router(embeddings.router)
api_router.include_router(images.router)
api_router.include_router(families.router)
