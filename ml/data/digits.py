"""Handwritten digits: scikit-learn's 8x8 set (default) and MNIST from IDX or npz files.

Images come back as float32 arrays scaled to [0, 1], shape (N, H*W), with integer labels, split
into a fixed train/test partition so every model and benchmark holds out the same digits.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.data.errors import DataError

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


@dataclass(frozen=True)
class ImageDataset:
    name: str
    side: int  # images are side x side
    train_images: np.ndarray  # (N, side*side) float32 in [0, 1]
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray
    test_labels: np.ndarray

    @property
    def n_pixels(self) -> int:
        return self.side * self.side


def images_sha256(data: ImageDataset) -> str:
    """A fingerprint of an image data set: sha256 over its train/test pixels and labels."""
    digest = hashlib.sha256()
    for part in (data.train_images, data.train_labels, data.test_images, data.test_labels):
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()


def load_digits_8x8(
    *, test_fraction: float = DIGITS_TEST_FRACTION, seed: int = DIGITS_SPLIT_SEED
) -> ImageDataset:
    """The 1,797 real 8x8 digits shipped with scikit-learn (16 grey levels), split stratified."""
    from sklearn.datasets import load_digits  # heavy import, only when digits are asked for

    bunch = load_digits()
    images = (bunch.data / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        chosen = rng.choice(members, size=round(test_fraction * len(members)), replace=False)
        test_mask[chosen] = True
    return ImageDataset(
        "digits", 8, images[~test_mask], labels[~test_mask], images[test_mask], labels[test_mask]
    )


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST format), gzipped or not."""
    try:
        with _open(path) as handle:
            header = handle.read(4)
            if len(header) != 4 or header[:2] != b"\x00\x00" or header[2] != 0x08:
                raise DataError(f"{path}: not an unsigned-byte IDX file")
            n_dims = header[3]
            shape = struct.unpack(f">{n_dims}I", handle.read(4 * n_dims))
            data = np.frombuffer(handle.read(), dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: truncated IDX file ({data.size} bytes for shape {shape})")
    return data.reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    raise DataError(f"{folder}: {stem}[.gz] not found")


def load_mnist(path: str | Path) -> ImageDataset:
    """MNIST from a folder of the four IDX files, or from the standard ``mnist.npz``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            parts = [archive[k] for k in ("x_train", "y_train", "x_test", "y_test")]
    elif path.is_dir():
        npz = path / "mnist.npz"
        if npz.is_file():
            return load_mnist(npz)
        parts = [
            read_idx(_find(path, "train-images-idx3-ubyte")),
            read_idx(_find(path, "train-labels-idx1-ubyte")),
            read_idx(_find(path, "t10k-images-idx3-ubyte")),
            read_idx(_find(path, "t10k-labels-idx1-ubyte")),
        ]
    else:
        raise DataError(f"{path}: give a folder of MNIST IDX files or an mnist.npz file")
    x_train, y_train, x_test, y_test = parts
    side = x_train.shape[-1]
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255.0  # noqa: E731
    return ImageDataset(
        "mnist",
        side,
        flat(x_train),
        y_train.astype(np.int64),
        flat(x_test),
        y_test.astype(np.int64),
    )


def load_images(name: str = "digits", path: str | Path | None = None) -> ImageDataset:
    if name == "digits":
        return load_digits_8x8()
    if name == "mnist":
        if path is None:
            raise DataError("mnist needs the path of its IDX files or mnist.npz (--images-path)")
        return load_mnist(path)
    raise DataError(f"unknown image data set {name!r}; known: digits, mnist")
