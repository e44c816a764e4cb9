"""Every model family, declared once: what it trains on, how it is trained and loaded, what it
can answer, and whether the service trains and prefers it by default.

The CLI's ``deeprec train`` commands (generated from these specs, except the two hand-written
ones in ``app.cli.train.HAND_WRITTEN``), the retrain job, the routes, ``deeprec bootstrap``, the
readiness check, the default-model order, the contract test (``tests/ml/test_registry_contract``)
and the Studio (through ``GET /v1/models``) all read :data:`SPECS` instead of listing families.
Adding a family is one module per layer (``ml/models``: config + module; ``ml/training``: a
``train(data, config, options, *, fit) -> Checkpoint``; ``ml/inference``: ``load``) plus one
entry here; its ``deeprec train`` command, retrain support and contract test follow from it.

This module imports nothing heavy: the web app reads it, and the web app never imports training
code. Trainers and loaders are named as ``"module:function"`` and imported only when called; the
config factories import their config's module, in ``ml.models`` (never ``ml.training``: the web
app builds them to check retrain parameters), only when called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, get_args

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


class Flag(NamedTuple):
    """A ``deeprec train`` option that sets one config field (``--hidden`` -> ``n_hidden``);
    every other field is set through ``--params-json``."""

    option: str  # the option's name without dashes, underscores for dashes: "memory_budget_gib"
    field: str  # the config field it sets
    help: str


def resolve(target: str) -> Any:
    """The object a ``"module:attribute"`` string names, imported now."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


@dataclass(frozen=True)
class ModelSpec:
    """One model family.

    ``train`` names ``f(data, config, options, *, fit) -> Checkpoint``: ``data`` a
    ``RatingsDataset`` (with its items for ``ratings+items``) or an ``ImageDataset``, ``options``
    a ``TrainingOptions``; its docstring's first paragraph is the ``deeprec train`` command's
    help. ``load`` names ``f(Checkpoint, torch.device)`` returning the served object: a
    ``Recommender`` when the family can ``recommend``, else an image model or a GAN sampler.
    ``config(data=None)`` builds the config ``deeprec train`` starts from and applies
    ``--params-json`` to, with the sizes that follow ``data`` (pixels) set from it when given;
    without data (the retrain endpoint checks parameters against it) they keep the defaults.
    The trainer refuses a config whose data-bound sizes do not fit its data.
    """

    name: str  # the checkpoint's model_type
    data: DataKind
    config: Callable[..., Any]
    train: str
    load: str
    capabilities: frozenset[Capability]
    train_words: tuple[str, ...]  # `deeprec train ...` (command and options) the retrain job runs
    default: bool = False  # `deeprec bootstrap` and `serve --train-missing` train it
    required: bool = False  # /readyz answers 200 only once it is loaded
    recommend_rank: int | None = None  # place in the answer order when a client names no model
    similar_rank: int | None = None  # place in the Studio's similar-films / item-map order
    label: str = ""  # what people read (the Studio's menus); the name when empty
    # The generated `deeprec train` command: `--epochs` sets the config field `epochs_field`
    # (``"section.name"`` for a setting inside a config's section)
    # (whose value is then the run's epoch count), else the run's count (default `epochs`; None:
    # fitted in closed form, `--epochs` accepted and ignored); `flags` are extra options.
    epochs_field: str | None = None
    epochs: int | None = None
    flags: tuple[Flag, ...] = ()
    # Settings small enough that the contract test trains the family in seconds.
    smoke: Mapping[str, Any] = field(default_factory=dict, hash=False)

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


# --------------------------------------------------------------------------- config factories
def _config(target: str, **values: Any) -> Callable[..., Any]:
    """A factory of the config class ``target`` names, with ``values``; no size follows data."""

    def build(data: Any = None) -> Any:
        return resolve(target)(**values)

    return build


def _image_config(target: str, sizes: Callable[[int], dict[str, Any]]) -> Callable[..., Any]:
    """A factory of an image family's config; ``sizes(side)`` sets what follows the images'
    side (8 for the built-in digits when no data is given)."""

    def build(data: Any = None) -> Any:
        return resolve(target)(**sizes(8 if data is None else data.side))

    return build


def _mult_dae_config(data: Any = None) -> Any:
    from ml.models.autoencoder import mult_dae_config

    return mult_dae_config(1)  # the trainer sets the width to the data's items


def _image_autoencoder_config(data: Any = None) -> Any:
    from ml.models.autoencoder import apply_variants, image_config

    return apply_variants(image_config(64 if data is None else data.n_pixels), "denoising")


_TRAIN = "ml.training.families"
AUTOREC_EPOCHS = 32  # chosen on the validation pair (bench/tune_autoencoder.py)


def _can(*capabilities: Capability) -> frozenset[Capability]:
    return frozenset(capabilities)


SPECS: tuple[ModelSpec, ...] = (
    # Declaration order is bootstrap's training order for the default models.
    ModelSpec(
        "rbm",
        "ratings",
        _config("ml.models.rbm_config:RBMConfig"),
        f"{_TRAIN}:train_rbm",
        "ml.inference.rbm:load",
        _can("recommend", "predict_ratings", "similar_items", "embed"),
        ("rbm",),
        default=True,
        required=True,
        recommend_rank=1,
        label="RBM",
        similar_rank=2,
        epochs_field="training.epochs",
        smoke={
            "n_hidden": 8,
            "training.batch_size": 8,
            "training.epochs": 2,
            "item_rbm.n_hidden": 8,
            "item_rbm.epochs": 2,
            "fold_in.steps": 3,
        },
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
        smoke={"hidden_layers": (8,), "batch_size": 16},
    ),
    ModelSpec(
        "ease",
        "ratings",
        _config("ml.models.baselines:EASETrainingConfig"),
        f"{_TRAIN}:train_ease",
        "ml.inference.baselines:load",
        _can("recommend"),
        ("ease",),
        default=True,
        recommend_rank=3,
        label="EASE",
        flags=(
            Flag("l2", "l2", "EASE's lambda (default: tuned on validation)."),
            Flag(
                "memory_budget_gib",
                "memory_budget_gib",
                "Most memory EASE's items x items arrays may take (default 8); a larger "
                "catalogue is refused before training.",
            ),
        ),
        smoke={"l2": 10.0},
    ),
    ModelSpec(
        "autorec",
        "ratings",
        _config("ml.models.autorec:AutoRecConfig"),
        f"{_TRAIN}:train_autorec",
        "ml.inference.autoencoder:load",
        _can("recommend", "predict_ratings", "similar_items", "embed"),
        ("autorec",),
        recommend_rank=4,
        label="AutoRec",
        epochs=AUTOREC_EPOCHS,
        smoke={"n_hidden": 8, "batch_size": 16},
    ),
    ModelSpec(
        "content",
        "ratings+items",
        _config("ml.models.content:ContentConfig"),
        f"{_TRAIN}:train_content",
        "ml.inference.content:load",
        _can("recommend", "similar_items", "embed"),
        ("content",),
        default=True,
        label="Content",
        similar_rank=3,
        epochs_field="epochs",
        smoke={"code_dim": 4, "n_hidden": 8, "epochs": 2, "batch_size": 16},
    ),
    ModelSpec(
        "hybrid",
        "ratings+items",
        _config("ml.models.content:ContentConfig"),
        f"{_TRAIN}:train_hybrid",
        "ml.inference.content:load",
        _can("recommend", "similar_items", "embed"),
        ("hybrid",),
        default=True,
        label="Hybrid",
        epochs_field="epochs",
        smoke={"code_dim": 4, "n_hidden": 8, "epochs": 2, "batch_size": 16, "ease_l2": 10.0},
    ),
    ModelSpec(
        "popularity",
        "ratings",
        _config("ml.models.baselines:PopularityTrainingConfig"),
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
        smoke={"hidden_layers": (6,), "batch_size": 16},
    ),
    ModelSpec(
        "rbm-images",
        "images",
        _image_config(
            "ml.models.rbm:BernoulliRBMConfig", lambda side: {"n_visible": side**2, "n_hidden": 256}
        ),
        f"{_TRAIN}:train_image_rbm",
        "ml.inference.dbn:load_rbm_images",
        _can("reconstruct", "sample"),
        ("rbm-images",),
        default=True,
        label="RBM",
        epochs=50,
        flags=(Flag("hidden", "n_hidden", "Hidden units (default 256)."),),
        smoke={"n_hidden": 8, "batch_size": 16},
    ),
    ModelSpec(
        "dbn",
        "images",
        _image_config("ml.models.dbn:DBNConfig", lambda side: {"layers": (side**2, 256, 64, 16)}),
        f"{_TRAIN}:train_dbn",
        "ml.inference.dbn:load",
        _can("reconstruct", "sample", "embed"),
        ("dbn",),
        default=True,
        label="DBN",
        epochs_field="pretrain_epochs",
        flags=(Flag("layers", "layers", "Unit counts from the pixels up, e.g. 64,256,64,16."),),
        smoke={
            "layers": (64, 12, 4),
            "pretrain_epochs": 1,
            "finetune_epochs": 1,
            "batch_size": 16,
            "gibbs_steps": 3,
        },
    ),
    ModelSpec(
        "gan",
        "images",
        _image_config("ml.models.gan:GANConfig", lambda side: {"side": side}),
        f"{_TRAIN}:train_gan",
        "ml.inference.gan:load",
        _can("sample", "discriminate"),
        # The conditional GAN serves labelled and unlabelled samples (bench/results/gan.md).
        ("gan", "--conditional"),
        default=True,
        label="GAN",
        epochs=60,  # the conditional GAN's setting (bench/results/gan.md)
        flags=(Flag("conditional", "conditional", "Condition on the digit label."),),
        smoke={"latent_dim": 4, "n_hidden": 16, "batch_size": 16},
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
