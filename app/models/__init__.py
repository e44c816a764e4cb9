"""The ORM models; importing this package registers every table on ``Base.metadata``."""

from app.models.item import Item
from app.models.model_version import ModelVersion
from app.models.rating import MAX_RATING, MIN_RATING, Rating
from app.models.training_job import JobStatus, TrainingJob
from app.models.user import User

__all__ = [
    "MAX_RATING",
    "MIN_RATING",
    "Item",
    "JobStatus",
    "ModelVersion",
    "Rating",
    "TrainingJob",
    "User",
]
