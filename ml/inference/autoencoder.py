"""Serving the autoencoder family from checkpoints.

- ``autoencoder`` (Mult-DAE ranking): a ``Recommender`` whose scores are the decoder's logits for
  a user folded in from the ratings row; ``user_embeddings`` are the bottleneck codes and
  ``item_embeddings`` the two-view item embedding stored at training time (Mult-DAE input
  columns + item-DAE codes, see ``ml.training.autoencoder``); checkpoints written before it
  fall back to the output layer's weight rows.
- ``autorec`` (I-AutoRec): a ``Recommender`` with ``predict_ratings`` (ridge fold-in of the
  user's output row on the stored item codes, see ``ml.models.autorec``); scores are predicted
  ratings; ``item_embeddings`` are the item codes.
- ``autoencoder-images``: an ``ImageAutoencoder`` following the image-model protocol of
  ``ml.inference.images`` (``reconstruct`` plus ``encode``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ml.checkpoint import Checkpoint, CheckpointError
from ml.data.vocab import IdVocab
from ml.inference import Recommender
from ml.inference.images import check_images
from ml.models.autoencoder import ITEM_EMBEDDINGS, Autoencoder, AutoencoderConfig
from ml.models.autorec import AutoRecConfig, IAutoRec, fold_in_rows

BATCH = 1024


def _dense(rows: sp.csr_matrix | np.ndarray, device: torch.device) -> torch.Tensor:
    array = np.asarray(rows) if isinstance(rows, np.ndarray) else rows.toarray()
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)


def build_autoencoder(checkpoint: Checkpoint, device: torch.device) -> Autoencoder:
    """Rebuild the ``Autoencoder`` of a checkpoint (config + state dict), in eval mode."""
    weights = {k: v for k, v in checkpoint.tensors.items() if k != ITEM_EMBEDDINGS}
    try:
        config = AutoencoderConfig.from_dict(checkpoint.config)
        model = Autoencoder(config)
        model.load_state_dict(weights)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{checkpoint.path}: not a valid autoencoder ({exc})") from exc
    return model.to(device).eval()


class AutoencoderScorer:
    """Mult-DAE scoring: logits (B, I) of users folded in from their ratings rows."""

    def __init__(self, model: Autoencoder, items: np.ndarray | None = None) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        self.items = items  # (I, d') stored item embedding, or None: the decoder rows

    def _batches(
        self, rows: sp.csr_matrix, fn: Callable[[torch.Tensor], torch.Tensor], width: int
    ) -> np.ndarray:
        out = [
            fn(_dense(rows[start : start + BATCH], self.device)).float().cpu().numpy()
            for start in range(0, rows.shape[0], BATCH)
        ]
        return np.concatenate(out) if out else np.zeros((0, width), np.float32)

    def score(self, user_rows: sp.csr_matrix) -> np.ndarray:
        return self._batches(user_rows, self.model.reconstruct, user_rows.shape[1])  # (B, I)

    def user_embeddings(self, user_rows: sp.csr_matrix) -> np.ndarray:
        return self._batches(user_rows, self.model.codes, self.model.config.code_dim)  # (B, d)

    def item_embeddings(self) -> np.ndarray:
        if self.items is not None:
            return self.items  # (I, d')
        return self.model.item_embeddings().float().cpu().numpy()  # (I, d)


class AutoRecScorer:
    """I-AutoRec fold-in: predicted ratings (B, I) from a user's ratings row."""

    def __init__(self, model: IAutoRec, codes: torch.Tensor) -> None:
        self.model = model
        self.codes = codes  # (I, k)

    def predict(self, user_rows: sp.csr_matrix) -> np.ndarray:
        cfg = self.model.config
        out = []
        for start in range(0, user_rows.shape[0], BATCH):
            dense = _dense(user_rows[start : start + BATCH], self.codes.device)  # (B, I)
            predicted = fold_in_rows(
                self.codes, dense, cfg.fold_in_l2, (cfg.rating_min, cfg.rating_max)
            )
            out.append(predicted.cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.codes)), np.float32)

    def score(self, user_rows: sp.csr_matrix) -> np.ndarray:
        return self.predict(user_rows)

    def item_embeddings(self) -> np.ndarray:
        return self.codes.float().cpu().numpy()  # (I, k)


def load(checkpoint: Checkpoint, device: torch.device) -> Recommender:
    """LOADERS entry for ``autoencoder`` and ``autorec`` checkpoints."""
    users = IdVocab.from_list(checkpoint.vocab["user"])
    items = IdVocab.from_list(checkpoint.vocab["item"])
    if checkpoint.model_type == "autoencoder":
        stored = checkpoint.tensors.get(ITEM_EMBEDDINGS)
        vectors = None if stored is None else stored.float().cpu().numpy()
        scorer = AutoencoderScorer(build_autoencoder(checkpoint, device), vectors)
        if scorer.model.config.n_inputs != len(items):
            raise CheckpointError(f"{checkpoint.path}: model width does not match the items")
        if vectors is not None and (vectors.ndim != 2 or len(vectors) != len(items)):
            raise CheckpointError(f"{checkpoint.path}: item embeddings of the wrong shape")
        return Recommender(
            "autoencoder",
            users,
            items,
            scorer,
            checkpoint,
            item_embeddings=scorer.item_embeddings,
            user_embeddings=scorer.user_embeddings,
        )
    if checkpoint.model_type == "autorec":
        tensors = dict(checkpoint.tensors)
        codes = tensors.pop("item_codes", None)
        try:
            model = IAutoRec(AutoRecConfig.from_dict(checkpoint.config))
            model.load_state_dict(tensors)
        except (TypeError, ValueError, RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{checkpoint.path}: not a valid I-AutoRec ({exc})") from exc
        if codes is None or codes.shape[0] != len(items):
            raise CheckpointError(f"{checkpoint.path}: item codes missing or of the wrong size")
        ar = AutoRecScorer(model.to(device).eval(), codes.to(device))
        return Recommender(
            "autorec",
            users,
            items,
            ar,
            checkpoint,
            predict_ratings=ar.predict,
            item_embeddings=ar.item_embeddings,
        )
    raise CheckpointError(
        f"{checkpoint.path}: {checkpoint.model_type!r} is not a ratings autoencoder"
    )


@dataclass
class ImageAutoencoder:
    """The image-model protocol for ``autoencoder-images`` checkpoints."""

    model: Autoencoder
    side: int
    model_type: str = "autoencoder-images"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """(N, side*side) in [0, 1] -> reconstructions of the same shape, in [0, 1]."""
        x = _dense(check_images(images, self.side), self.device)
        return self.model.reconstruct(x).clamp(0.0, 1.0).float().cpu().numpy()

    def encode(self, images: np.ndarray) -> np.ndarray:
        """(N, side*side) -> bottleneck codes (N, d)."""
        x = _dense(check_images(images, self.side), self.device)
        return self.model.codes(x).float().cpu().numpy()


def load_images(checkpoint: Checkpoint, device: torch.device) -> ImageAutoencoder:
    """LOADERS entry for ``autoencoder-images``."""
    model = build_autoencoder(checkpoint, device)
    side = int(checkpoint.extra.get("side", round(model.config.n_inputs**0.5)))
    if side * side != model.config.n_inputs:
        raise CheckpointError(f"{checkpoint.path}: {model.config.n_inputs} inputs are not square")
    return ImageAutoencoder(model, side)
