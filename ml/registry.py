"""Every model family, declared once: what it trains on, how it is trained and loaded, what it
can answer, and whether the service trains and prefers it by default.

The CLI's ``deeprec train`` commands (checked against it at start), the retrain job, the routes,
``deeprec bootstrap``, the readiness check, the default-model order and the Studio (through
``GET /v1/models``) all read :data:`SPECS` instead of listing families. Adding a family is its
modules (model, trainer, loader, ``deeprec train`` command) plus one entry here.

This module imports nothing heavy: the web app reads it, and the web app never imports training
code. Trainers and loaders are named as ``"module:function"`` and imported only when called; the
config factories import their config's module, in ``ml.models`` (never ``ml.training``: the web
app builds them to check retrain parameters), only when called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

Capability = Literal[
    "recommend",  # Recommender.recommend: top-k items from a user's ratings
    "predict_ratings",  # Recommender.predict_ratings: expected ratings (B, I)
    "similar_items",  # nearest items (item embeddings, or content codes)
    "embed",  # vectors: Recommender.item_embeddings / user_embeddings, .encode (images, metadata)
    "reconstruct",  # image model .reconstruct: images (N, P) -> (N, P)
    "sample",  # image model / GAN .sample(n, seed) -> (n, P)
    "discriminate",  # GAN .discriminate(images) -> (N,) probability of being real
]
CAPABILITIES: tuple[Capability, ...] = get_args(Capability)
DataKind = Literal["ratings", "images", "ratings+items"]


class UnknownModelError(KeyError):
    """A model type no spec declares."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown model type"


def resolve(target: str) -> Any:
    """The object a ``"module:attribute"`` string names, imported now."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class ModelSpec:
    """One model family.

    ``train`` names ``f(data, config, options, *, fit) -> Checkpoint`` (``ml.training.families``):
    ``data`` a ``RatingsDataset`` (with its items for ``ratings+items``) or an ``ImageDataset``,
    ``options`` a ``TrainingOptions``; data-dependent sizes (items, users, pixels) are fitted to
    the data there. ``load`` names ``f(Checkpoint, torch.device)`` returning the served object: a
    ``Recommender`` when the family can ``recommend``, else an image model or a GAN sampler.
    ``config`` builds, without data, the config ``deeprec train`` starts from and applies
    ``--params-json`` to (the retrain endpoint checks parameters against it).
    """

    name: str  # the checkpoint's model_type
    data: DataKind
    config: Callable[[], Any]
    train: str
    load: str
    capabilities: frozenset[Capability]
    train_words: tuple[str, ...]  # `deeprec train ...` (command and options) the retrain job runs
    default: bool = False  # `deeprec bootstrap` and `serve --train-missing` train it
    required: bool = False  # /readyz answers 200 only once it is loaded
    recommend_rank: int | None = None  # place in the answer order when a client names no model
    similar_rank: int | None = None  # place in the Studio's similar-films / item-map order
    label: str = ""  # what people read (the Studio's menus); the name when empty

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"{self.name}: unknown capabilities {sorted(unknown)}")
        if self.recommend_rank is not None and "recommend" not in self.capabilities:
            raise ValueError(f"{self.name}: ranked for recommendations but cannot recommend")
        if self.similar_rank is not None and "similar_items" not in self.capabilities:
            raise ValueError(f"{self.name}: ranked for similar items but has none")
        if self.required and not self.default:
            raise ValueError(f"{self.name}: a required model must be a default model")

    @property
    def command(self) -> str:
        """The ``deeprec train`` command that makes it (one command may make two families)."""
        return self.train_words[0]

    @property
    def serves_images(self) -> bool:
        """Loads into something other than a Recommender (image models, the GAN)."""
        return "recommend" not in self.capabilities

    @property
    def uses_ratings(self) -> bool:
        return self.data in ("ratings", "ratings+items")

    @property
    def uses_items(self) -> bool:
        """Learns from item metadata too: the retrain job exports the items table."""
        return self.data == "ratings+items"

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def trainer(self) -> Callable[..., Any]:
        return resolve(self.train)  # type: ignore[no-any-return]

    def loader(self) -> Callable[..., Any]:
        return resolve(self.load)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- base configs (no data needed)
def _rbm_config() -> Any:
    from ml.models.rbm import RBMConfig

    return RBMConfig()


def _mult_dae_config() -> Any:
    from ml.models.autoencoder import mult_dae_config

    return mult_dae_config(1)  # the trainer sets the width to the data's items


def _autorec_config() -> Any:
    from ml.models.autorec import AutoRecConfig

    return AutoRecConfig()


def _ease_config() -> Any:
    from ml.models.baselines import EASETrainingConfig

    return EASETrainingConfig()


def _popularity_config() -> Any:
    from ml.models.baselines import PopularityTrainingConfig

    return PopularityTrainingConfig()


def _content_config() -> Any:
    from ml.models.content import ContentConfig

    return ContentConfig()


def _image_autoencoder_config() -> Any:
    from ml.models.autoencoder import apply_variants, image_config

    return apply_variants(image_config(64), "denoising")  # 8x8 digits; fitted to the data


def _image_rbm_config() -> Any:
    from ml.models.rbm import BernoulliRBMConfig

    return BernoulliRBMConfig(n_visible=64, n_hidden=256)


def _dbn_config() -> Any:
    from ml.models.dbn import DBNConfig

    return DBNConfig(layers=(64, 256, 64, 16))


def _gan_config() -> Any:
    from ml.models.gan import GANConfig

    return GANConfig(side=8)


_TRAIN = "ml.training.families"


def _can(*capabilities: Capability) -> frozenset[Capability]:
    return frozenset(capabilities)


SPECS: tuple[ModelSpec, ...] = (
    # Declaration order is bootstrap's training order for the default models.
    ModelSpec(
        "rbm",
        "ratings",
        _rbm_config,
        f"{_TRAIN}:train_rbm",
        "ml.inference.rbm:load",
        _can("recommend", "predict_ratings", "similar_items", "embed"),
        ("rbm",),
        default=True,
        required=True,
        recommend_rank=1,
        label="RBM",
        similar_rank=2,
    ),
    ModelSpec(
        "autoencoder",
        "ratings",
        _mult_dae_config,
        f"{_TRAIN}:train_autoencoder",
        "ml.inference.autoencoder:load",
        _can("recommend", "similar_items", "embed"),
        ("autoencoder", "--target", "ratings"),
        default=True,
        recommend_rank=2,
        label="Autoencoder",
        similar_rank=1,
    ),
    ModelSpec(
        "ease",
        "ratings",
        _ease_config,
        f"{_TRAIN}:train_ease",
        "ml.inference.baselines:load",
        _can("recommend"),
        ("ease",),
        default=True,
        recommend_rank=3,
        label="EASE",
    ),
    ModelSpec(
        "autorec",
        "ratings",
        _autorec_config,
        f"{_TRAIN}:train_autorec",
        "ml.inference.autoencoder:load",
        _can("recommend", "predict_ratings", "similar_items", "embed"),
        ("autorec",),
        recommend_rank=4,
        label="AutoRec",
    ),
    ModelSpec(
        "content",
        "ratings+items",
        _content_config,
        f"{_TRAIN}:train_content",
        "ml.inference.content:load",
        _can("recommend", "similar_items", "embed"),
        ("content",),
        default=True,
        label="Content",
        similar_rank=3,
    ),
    ModelSpec(
        "hybrid",
        "ratings+items",
        _content_config,
        f"{_TRAIN}:train_hybrid",
        "ml.inference.content:load",
        _can("recommend", "similar_items", "embed"),
        ("hybrid",),
        default=True,
        label="Hybrid",
    ),
    ModelSpec(
        "popularity",
        "ratings",
        _popularity_config,
        f"{_TRAIN}:train_popularity",
        "ml.inference.baselines:load",
        _can("recommend"),
        ("popularity",),
        recommend_rank=5,
        label="Popularity",
    ),
    ModelSpec(
        "autoencoder-images",
        "images",
        _image_autoencoder_config,
        f"{_TRAIN}:train_image_autoencoder",
        "ml.inference.autoencoder:load_images",
        _can("reconstruct", "embed"),
        ("autoencoder", "--target", "digits"),
        default=True,
        label="Autoencoder",
    ),
    ModelSpec(
        "rbm-images",
        "images",
        _image_rbm_config,
        f"{_TRAIN}:train_image_rbm",
        "ml.inference.dbn:load_rbm_images",
        _can("reconstruct", "sample"),
        ("rbm-images",),
        default=True,
        label="RBM",
    ),
    ModelSpec(
        "dbn",
        "images",
        _dbn_config,
        f"{_TRAIN}:train_dbn",
        "ml.inference.dbn:load",
        _can("reconstruct", "sample", "embed"),
        ("dbn",),
        default=True,
        label="DBN",
    ),
    ModelSpec(
        "gan",
        "images",
        _gan_config,
        f"{_TRAIN}:train_gan",
        "ml.inference.gan:load",
        _can("sample", "discriminate"),
        # The conditional GAN serves labelled and unlabelled samples and trains in 60 epochs
        # (bench/results/gan.md).
        ("gan", "--conditional", "--epochs", "60"),
        default=True,
        label="GAN",
    ),
)

BY_NAME: dict[str, ModelSpec] = {spec.name: spec for spec in SPECS}
if len(BY_NAME) != len(SPECS):
    raise RuntimeError("two model specs share a name")


def get_spec(name: str) -> ModelSpec:
    """The spec of model type ``name``; :class:`UnknownModelError` names the known ones."""
    spec = BY_NAME.get(name)
    if spec is None:
        raise UnknownModelError(f"unknown model type {name!r}; known: {', '.join(model_types())}")
    return spec


def model_types() -> list[str]:
    """Every declared model type, sorted."""
    return sorted(BY_NAME)


def types_that(capability: Capability, among: Iterable[ModelSpec] = SPECS) -> list[str]:
    """The model types that declare ``capability``, in declaration order."""
    return [spec.name for spec in among if capability in spec.capabilities]


def image_model_types() -> frozenset[str]:
    return frozenset(spec.name for spec in SPECS if spec.serves_images)


def default_model_types() -> list[str]:
    """What bootstrap trains when no version is active, in training order."""
    return [spec.name for spec in SPECS if spec.default]


def required_model_types() -> list[str]:
    return [spec.name for spec in SPECS if spec.required]


def recommendation_order() -> tuple[str, ...]:
    """Which loaded model answers when the client names none: the first loaded of these."""
    ranked = [spec for spec in SPECS if spec.recommend_rank is not None]
    return tuple(spec.name for spec in sorted(ranked, key=lambda s: s.recommend_rank or 0))


def similar_items_order() -> tuple[str, ...]:
    """The families whose neighbours the Studio shows first (best first: bench/results)."""
    ranked = [spec for spec in SPECS if spec.similar_rank is not None]
    return tuple(spec.name for spec in sorted(ranked, key=lambda s: s.similar_rank or 0))


def metadata_model_types() -> list[str]:
    """Families that learn from item metadata, in declaration order (content neighbours)."""
    return [spec.name for spec in SPECS if spec.uses_items]


def reconstructors() -> dict[str, str]:
    """The image route's ``model=`` word -> the family that reconstructs for it: the family's
    name without its ``-images`` suffix (``rbm`` -> ``rbm-images``)."""
    return {
        spec.name.removesuffix("-images"): spec.name for spec in SPECS if spec.can("reconstruct")
    }


def train_commands() -> set[str]:
    """Every ``deeprec train`` command some family needs."""
    return {spec.command for spec in SPECS}
