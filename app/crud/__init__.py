"""Database operations the service and the CLI use: keyword-only, typed, one transaction per write.

Every write commits on success and rolls back everything on failure; errors are the
:mod:`app.crud.errors` classes (``NotFoundError`` -> 404, ``ConflictError`` -> 409,
``InvalidValueError`` -> 422).
"""

from app.crud.bulk import LoadResult, LoadSource, bulk_load, load_row_count, stream_load
from app.crud.errors import (
    ConflictError,
    CrudError,
    InvalidTransitionError,
    InvalidValueError,
    NotFoundError,
    UnknownItemError,
    UnknownUserError,
)
from app.crud.items import (
    all_item_ids,
    count_items,
    get_item,
    get_items,
    item_ids_by_genre,
    item_popularity,
    list_genres,
)
from app.crud.model_versions import (
    activate_model_version,
    get_active_model_version,
    get_model_version,
    list_active_model_versions,
    list_model_versions,
    register_model_version,
)
from app.crud.ratings import (
    all_ratings_frame,
    count_ratings,
    count_user_ratings,
    delete_rating,
    get_user_ratings,
    upsert_ratings,
)
from app.crud.training_jobs import (
    active_jobs,
    beat_heartbeat,
    create_training_job,
    get_training_job,
    list_training_jobs,
    mark_failed,
    mark_running,
    mark_succeeded,
    record_progress,
    running_job,
)
from app.crud.users import count_users, create_user, get_user

__all__ = [
    "ConflictError",
    "CrudError",
    "InvalidTransitionError",
    "InvalidValueError",
    "LoadResult",
    "LoadSource",
    "NotFoundError",
    "UnknownItemError",
    "UnknownUserError",
    "activate_model_version",
    "active_jobs",
    "all_item_ids",
    "all_ratings_frame",
    "beat_heartbeat",
    "bulk_load",
    "count_items",
    "count_ratings",
    "count_user_ratings",
    "count_users",
    "create_training_job",
    "create_user",
    "delete_rating",
    "get_active_model_version",
    "get_item",
    "get_items",
    "get_model_version",
    "get_training_job",
    "get_user",
    "get_user_ratings",
    "item_ids_by_genre",
    "item_popularity",
    "list_active_model_versions",
    "list_genres",
    "list_model_versions",
    "list_training_jobs",
    "load_row_count",
    "mark_failed",
    "mark_running",
    "mark_succeeded",
    "record_progress",
    "register_model_version",
    "running_job",
    "stream_load",
    "upsert_ratings",
]
