"""One configurable autoencoder: deep, sparse, denoising and contractive, in any combination.

Encoder ``h = f(x)`` is a stack of affine layers with an activation after each (the last width is
the code); the decoder mirrors it, ``r = g(h)``, ending in an affine layer whose output is passed
through ``output`` (sigmoid for images in [0, 1], identity for logits or ratings). The variants
are options of one config and combine freely:

- **deep**: ``hidden_layers`` lists any number of encoder widths, e.g. ``(600, 200)``.
- **sparse**: ``sparsity="l1"`` adds ``w * mean_b sum_j |h_j|``; ``sparsity="kl"`` adds
  ``w * sum_j KL(rho || rho_hat_j)`` with ``rho_hat_j`` the batch-mean activation (Ng, "Sparse
  autoencoder", CS294A notes 2011).
- **denoising**: ``noise`` corrupts the input during training while the clean input stays the
  target (Vincent et al., ICML 2008): ``dropout`` (zero with prob p, rescale by 1/(1-p)), ``mask``
  (zero with prob p, no rescale) or ``gaussian`` (add N(0, p^2)).
- **contractive**: ``contractive`` = lambda adds ``lambda * ||dh/dx||_F^2`` (Rifai et al., ICML
  2011): analytic for one sigmoid/tanh layer, exact by autograd for deeper encoders.

The ranking model of the product is Mult-DAE (Liang et al., "Variational Autoencoders for
Collaborative Filtering", WWW 2018): a denoising autoencoder over a user's L2-normalised binary
ratings row, input dropout, tanh layers and a multinomial log-likelihood, i.e. ``loss =
"multinomial"``; see ``mult_dae_config``. I-AutoRec lives in ``ml.models.autorec``.

Item embeddings: the same model over the transposed matrix (items as examples, each a row of
its users, ``item_dae_config``) gives item codes; with Mult-DAE's first-layer weight columns
(``input_embeddings``) they make the served two-view item embedding (``ml.training.autoencoder``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ml.models.config_keys import rename_legacy_keys

ACTIVATIONS = ("sigmoid", "tanh", "relu")
OUTPUTS = ("sigmoid", "identity")
SPARSITY = ("none", "l1", "kl")
NOISE = ("none", "dropout", "mask", "gaussian")
LOSSES = ("mse", "bce", "multinomial")
ITEM_EMBEDDINGS = "item_embeddings"  # checkpoint tensor of the served item embedding (not a weight)


@dataclass(frozen=True)
class AutoencoderConfig:
    """Architecture, variant options and optimisation settings of one autoencoder."""

    # Names follow one scheme across the configs: ``n_*`` counts units, ``hidden_layers`` lists
    # widths, ``learning_rate`` is a step size. Manifests written before keep loading:
    LEGACY_KEYS: ClassVar[dict[str, str]] = {"lr": "learning_rate", "hidden": "hidden_layers"}

    n_inputs: int = 64
    hidden_layers: tuple[int, ...] = (32,)  # encoder widths; the last is the code width
    activation: str = "sigmoid"  # after every encoder and decoder hidden layer
    output: str = "sigmoid"  # sigmoid: pixels in [0, 1]; identity: logits (multinomial loss)
    loss: str = "mse"  # mse | bce | multinomial (Mult-DAE's log-likelihood over a user row)
    normalize_input: bool = False  # L2-normalise each input row (Mult-DAE)
    binarize_input: bool = False  # ratings rows -> 0/1 interactions (Mult-DAE)
    sparsity: str = "none"  # none | l1 | kl
    sparsity_weight: float = 0.0
    sparsity_target: float = 0.05  # rho, for the KL penalty
    noise: str = "none"  # none | dropout | mask | gaussian
    noise_level: float = 0.0  # drop probability, or Gaussian standard deviation
    contractive: float = 0.0  # lambda of the contractive penalty
    # optimisation (Adam)
    learning_rate: float = 1e-3
    weight_decay: float = 0.0  # L2 on the weights (added to the loss, not decoupled)
    batch_size: int = 128

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_layers", tuple(int(h) for h in self.hidden_layers))
        checks: list[tuple[bool, str]] = [
            (self.n_inputs > 0, f"n_inputs must be positive, got {self.n_inputs}"),
            (len(self.hidden_layers) > 0, "hidden_layers needs at least one layer width"),
            (
                all(h > 0 for h in self.hidden_layers),
                f"hidden_layers widths must be positive: {self.hidden_layers}",
            ),
            (self.activation in ACTIVATIONS, f"activation must be one of {ACTIVATIONS}"),
            (self.output in OUTPUTS, f"output must be one of {OUTPUTS}"),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}"),
            (self.sparsity in SPARSITY, f"sparsity must be one of {SPARSITY}"),
            (self.noise in NOISE, f"noise must be one of {NOISE}"),
            (self.noise_level >= 0, f"noise_level must be >= 0, got {self.noise_level}"),
            (
                self.noise not in ("dropout", "mask") or self.noise_level < 1,
                f"a drop probability must be < 1, got {self.noise_level}",
            ),
            (self.sparsity_weight >= 0, "sparsity_weight must be >= 0"),
            (0 < self.sparsity_target < 1, "sparsity_target must lie in (0, 1)"),
            (
                self.sparsity != "kl" or self.activation == "sigmoid",
                "the KL sparsity penalty needs sigmoid codes (activation='sigmoid')",
            ),
            (self.contractive >= 0, "contractive must be >= 0"),
            (self.learning_rate > 0, f"learning_rate must be positive, got {self.learning_rate}"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}"),
            (
                self.loss != "bce" or self.output == "sigmoid",
                "the bce loss needs output='sigmoid'",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def code_dim(self) -> int:
        return self.hidden_layers[-1]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        out = asdict(self)
        out["hidden_layers"] = list(self.hidden_layers)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AutoencoderConfig:
        """From a manifest's config, old key names included (``lr``, ``hidden``)."""
        current = rename_legacy_keys(values, cls.LEGACY_KEYS)
        return cls(**{**current, "hidden_layers": tuple(current.get("hidden_layers", (32,)))})


def mult_dae_config(n_items: int, **overrides: Any) -> AutoencoderConfig:
    """Mult-DAE (Liang et al. 2018) with the settings chosen on the validation pair (bench/)."""
    base = AutoencoderConfig(
        n_inputs=n_items,
        hidden_layers=(200,),
        activation="tanh",
        output="identity",
        loss="multinomial",
        normalize_input=True,
        binarize_input=True,
        noise="dropout",
        noise_level=0.5,
        learning_rate=1e-3,
        weight_decay=1e-2,
        batch_size=128,
    )
    return replace(base, **overrides)


def item_dae_config(n_users: int, **overrides: Any) -> AutoencoderConfig:
    """The item-side DAE: Mult-DAE's design over items' rows of users (items as examples).

    No weight decay and no binarising inside the model: the trainer feeds rows already weighted
    per user (``ml.training.autoencoder.item_view_rows``). Chosen on the validation pair by the
    genre agreement of its codes (bench/bench_autoencoder.py).
    """
    base = mult_dae_config(n_users, binarize_input=False, weight_decay=0.0)
    return replace(base, **overrides)


def image_config(n_pixels: int, **overrides: Any) -> AutoencoderConfig:
    """The digits autoencoder before ``--variant``: one sigmoid layer of 32 units, BCE loss."""
    base = AutoencoderConfig(
        n_inputs=n_pixels,
        hidden_layers=(32,),
        activation="sigmoid",
        output="sigmoid",
        loss="bce",
        learning_rate=3e-3,
        batch_size=64,
    )
    return replace(base, **overrides)


# Named variants (what ``--variant`` accepts; combine with commas, e.g. "sparse,denoising").
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "deep": {"deep": True},
    "sparse": {"sparsity": "kl", "sparsity_weight": 1.0, "sparsity_target": 0.05},
    "sparse-l1": {"sparsity": "l1", "sparsity_weight": 1e-3},
    "denoising": {"noise": "mask", "noise_level": 0.3},
    "contractive": {"contractive": 0.1},
}


def apply_variants(config: AutoencoderConfig, variants: str) -> AutoencoderConfig:
    """Apply comma-separated named variants; ``deep`` puts a wider layer before the code."""
    names = [v.strip() for v in variants.split(",") if v.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {sorted(VARIANTS)}")
    for name in names:
        options = dict(VARIANTS[name])
        if options.pop("deep", False) and len(config.hidden_layers) == 1:
            wide = max(2 * config.code_dim, min(4 * config.code_dim, config.n_inputs))
            options["hidden_layers"] = (wide, config.code_dim)
        config = replace(config, **options)
    return config


def _activation(name: str) -> nn.Module:
    return {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "relu": nn.ReLU()}[name]


@dataclass
class Losses:
    """The terms of one batch's objective (tensors, so the total can be back-propagated)."""

    reconstruction: torch.Tensor
    sparsity: torch.Tensor
    contractive: torch.Tensor
    weight_decay: torch.Tensor
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> torch.Tensor:
        return self.reconstruction + self.sparsity + self.contractive + self.weight_decay


class Autoencoder(nn.Module):
    """Mirrored encoder/decoder MLP; see the module docstring for the variants."""

    def __init__(self, config: AutoencoderConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        widths = [config.n_inputs, *config.hidden_layers]
        enc: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(widths):
            enc += [nn.Linear(n_in, n_out), _activation(config.activation)]
        dec: list[nn.Module] = []
        back = widths[::-1]
        for index, (n_in, n_out) in enumerate(itertools.pairwise(back)):
            dec.append(nn.Linear(n_in, n_out))
            if index < len(back) - 2:
                dec.append(_activation(config.activation))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        for module in self.modules():
            if isinstance(module, nn.Linear):  # Glorot init, as in Liang et al. and Vincent et al.
                nn.init.xavier_uniform_(module.weight, generator=generator)
                nn.init.zeros_(module.bias)

    # -- the maps --------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Input preprocessing that is part of the model (binarise, L2-normalise rows)."""
        if self.config.binarize_input:
            x = (x != 0).to(x.dtype)
        if self.config.normalize_input:
            x = F.normalize(x, p=2.0, dim=1)
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)  # (B, d)

    def decode_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h)  # (B, n)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.decode_logits(h)
        return torch.sigmoid(logits) if self.config.output == "sigmoid" else logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(self.prepare(x)))

    # -- scoring ---------------------------------------------------------------------------
    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Clean reconstruction (no noise): images in [0, 1], or logits for ratings rows."""
        return self.forward(x)

    @torch.inference_mode()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck codes (B, d) of clean inputs: the user (or image) embeddings."""
        return self.encode(self.prepare(x))

    def item_embeddings(self) -> torch.Tensor:
        """(n_inputs, d'): the output layer's weight rows, one per item (Liang et al. 2018)."""
        last = self.decoder[-1]
        assert isinstance(last, nn.Linear)
        return last.weight.detach()  # (I, d_last)

    def input_embeddings(self) -> torch.Tensor:
        """(n_inputs, d1): the first encoder layer's weight columns, one per input (item)."""
        first = self.encoder[0]
        assert isinstance(first, nn.Linear)
        return first.weight.detach().T  # (I, d1)

    # -- training terms --------------------------------------------------------------------
    def noise_draws(
        self,
        shape: tuple[int, ...],
        generator: torch.Generator | None,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor | None:
        """The random numbers ``corrupt`` uses for a batch of ``shape`` (None without noise):
        uniform for dropout and mask, normal for gaussian. Data-parallel training draws them
        for the whole global batch on every rank, so each rank corrupts its rows exactly as
        one process would."""
        p, kind = self.config.noise_level, self.config.noise
        if kind == "none" or p == 0.0:
            return None
        if kind == "gaussian":
            return torch.randn(shape, generator=generator, device=device, dtype=dtype)
        return torch.rand(shape, generator=generator, device=device)

    def corrupt(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None,
        draws: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The denoising corruption of a (prepared) batch; identity when noise is 'none'.
        ``draws``: this batch's ``noise_draws`` drawn beforehand (default: drawn here)."""
        p, kind = self.config.noise_level, self.config.noise
        if kind == "none" or p == 0.0:
            return x
        if draws is None:
            draws = self.noise_draws(tuple(x.shape), generator, x.device, x.dtype)
        assert draws is not None
        if kind == "gaussian":
            return x + p * draws
        keep = draws >= p  # (B, n)
        out = x * keep.to(x.dtype)
        return out / (1.0 - p) if kind == "dropout" else out

    def reconstruction_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.config.loss
        if loss == "multinomial":  # -sum_i x_i log softmax(z)_i, mean over users (Liang eq. 2)
            return -(F.log_softmax(logits, dim=1) * target).sum(dim=1).mean()
        if loss == "bce":
            return (
                F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1).mean()
            )
        out = torch.sigmoid(logits) if self.config.output == "sigmoid" else logits
        return ((out - target) ** 2).sum(dim=1).mean()  # squared error per example

    def sparsity_penalty(self, h: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if cfg.sparsity == "none" or cfg.sparsity_weight == 0.0:
            return h.new_zeros(())
        if cfg.sparsity == "l1":
            return cfg.sparsity_weight * h.abs().sum(dim=1).mean()
        rho = cfg.sparsity_target
        rho_hat = h.mean(dim=0).clamp(1e-6, 1 - 1e-6)  # (d,)
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
        return cfg.sparsity_weight * kl.sum()

    def contractive_penalty(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """``lambda * mean_b ||dh/dx||_F^2`` (exact; differentiable w.r.t. the weights)."""
        lam = self.config.contractive
        if lam == 0.0:
            return x.new_zeros(())
        return lam * jacobian_frobenius_sq(self, x, h).mean()

    def weight_penalty(self) -> torch.Tensor:
        wd = self.config.weight_decay
        first = next(self.parameters())
        if wd == 0.0:
            return first.new_zeros(())
        total = sum((m.weight**2).sum() for m in self.modules() if isinstance(m, nn.Linear))
        return wd * total  # type: ignore[return-value]

    def losses(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        draws: torch.Tensor | None = None,
    ) -> Losses:
        """All terms of the objective for a clean batch ``x`` (B, n); ``draws``: the
        corruption's random numbers drawn beforehand (``noise_draws``), default drawn here."""
        clean = self.prepare(x)  # (B, n)
        noisy = self.corrupt(clean, generator, draws) if self.training else clean
        if self.config.contractive > 0.0:
            noisy = noisy.detach().requires_grad_(True)
        h = self.encode(noisy)  # (B, d)
        logits = self.decode_logits(h)  # (B, n)
        target = clean if self.config.loss != "multinomial" else (x != 0).to(x.dtype)
        return Losses(
            reconstruction=self.reconstruction_loss(logits, target),
            sparsity=self.sparsity_penalty(h),
            contractive=self.contractive_penalty(noisy, h),
            weight_decay=self.weight_penalty(),
            extra={"mean_code": float(h.detach().mean())},
        )


def jacobian_frobenius_sq(
    model: Autoencoder, x: torch.Tensor, h: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-example ``||dh/dx||_F^2`` (B,) of the encoder at ``x`` (already prepared).

    One sigmoid (or tanh) layer: ``sum_j (h_j (1 - h_j))^2 sum_i W_ji^2`` (Rifai et al. 2011,
    eq. 5); ``(1 - h_j^2)^2`` for tanh. Otherwise exact by autograd, one backward pass per code
    unit (each example's code depends only on its own input, so a summed gradient separates).
    """
    layers = [m for m in model.encoder if isinstance(m, nn.Linear)]
    if len(layers) == 1 and model.config.activation in ("sigmoid", "tanh"):
        h = model.encode(x) if h is None else h  # (B, d)
        slope = h * (1 - h) if model.config.activation == "sigmoid" else 1 - h**2  # (B, d)
        w_sq = (layers[0].weight ** 2).sum(dim=1)  # (d,)
        return (slope**2 * w_sq).sum(dim=1)  # (B,)
    x = x if x.requires_grad else x.detach().requires_grad_(True)
    h = model.encode(x) if h is None else h
    total = x.new_zeros(x.shape[0])
    for j in range(h.shape[1]):
        (grad,) = torch.autograd.grad(h[:, j].sum(), x, create_graph=True)  # (B, n)
        total = total + (grad**2).sum(dim=1)
    return total
