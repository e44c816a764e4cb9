"""The image-model protocol and the corruptions every image model is judged on.

Shared by the autoencoder (``autoencoder-images``), the Bernoulli RBM (``rbm-images``) and the DBN:
each loader returns an object with ``model_type``, ``side`` and ``reconstruct(images)``, where
``images`` is a float array (N, side*side) with values in [0, 1] and the answer has the same shape.
``corrupt`` makes the noisy inputs for denoising (the same seed gives the same corruption), and
``check_images`` / ``png_to_images`` / ``images_to_png`` turn uploads into that shape and back.
"""

from __future__ import annotations

import io
from typing import Literal, Protocol, runtime_checkable

import numpy as np

CorruptionKind = Literal["mask", "gaussian"]
CORRUPTION_KINDS: tuple[str, ...] = ("mask", "gaussian")


@runtime_checkable
class ImageModel(Protocol):
    """What an image checkpoint loads into: reconstruct (N, side*side) images in [0, 1]."""

    model_type: str
    side: int

    def reconstruct(self, images: np.ndarray) -> np.ndarray: ...


def check_images(images: object, side: int) -> np.ndarray:
    """Validate and return ``images`` as float32 (N, side*side) in [0, 1].

    Accepts (side*side,), (N, side*side), (side, side) or (N, side, side) arrays (or nested lists);
    raises ``ValueError`` with a readable reason otherwise (non-finite values, out of [0, 1], or a
    wrong number of pixels).
    """
    try:
        array = np.asarray(images, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"images must be a numeric array ({exc})") from exc
    n_pixels = side * side
    if array.ndim == 1 and array.size == n_pixels:
        array = array[None, :]
    elif array.ndim == 2 and array.shape == (side, side) and side != n_pixels:
        array = array.reshape(1, n_pixels)
    elif array.ndim == 3 and array.shape[1:] == (side, side):
        array = array.reshape(len(array), n_pixels)
    if array.ndim != 2 or array.shape[1] != n_pixels or array.shape[0] == 0:
        raise ValueError(
            f"expected images of shape (N, {n_pixels}) or (N, {side}, {side}), got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("images contain NaN or infinite values")
    if array.min() < 0.0 or array.max() > 1.0:
        raise ValueError("pixel values must lie in [0, 1]")
    return np.ascontiguousarray(array)


def corrupt(
    images: np.ndarray, noise: float, kind: CorruptionKind = "mask", seed: int = 0
) -> np.ndarray:
    """Corrupt images (N, P) in [0, 1] for denoising; the result stays in [0, 1].

    ``mask``: each pixel is set to 0 with probability ``noise`` (the masking noise of Vincent et
    al. 2008). ``gaussian``: add N(0, noise^2) to every pixel, then clip to [0, 1].
    ``noise=0`` returns an unchanged copy. Deterministic for a given ``seed``.
    """
    if kind not in CORRUPTION_KINDS:
        raise ValueError(f"unknown corruption kind {kind!r}; expected one of {CORRUPTION_KINDS}")
    if not np.isfinite(noise) or noise < 0.0:
        raise ValueError(f"noise must be a non-negative number, got {noise}")
    if kind == "mask" and noise > 1.0:
        raise ValueError(f"mask noise is a probability in [0, 1], got {noise}")
    clean = np.asarray(images, dtype=np.float32)
    rng = np.random.default_rng(seed)
    if kind == "mask":
        keep = rng.random(clean.shape) >= noise
        return (clean * keep).astype(np.float32)
    noisy = clean + rng.normal(0.0, noise, size=clean.shape).astype(np.float32)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


# The largest upload decoded: far above any digit (8x8 or 28x28) a client would send, far below
# what freezes a worker (a 12000x12000 RGBA PNG is 576 MB decoded).
MAX_IMAGE_PIXELS = 1024 * 1024
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageTooLargeError(ValueError):
    """The image's header declares more pixels than the limit; nothing was decoded."""


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR header, without decoding; None if it is not a PNG."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image of {width}x{height} pixels is too large: at most {max_pixels} pixels"
        )


def png_to_images(data: bytes, side: int, *, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a PNG (any mode) into (1, side*side) float32 in [0, 1], resizing to side x side.

    The pixel count is checked from the header BEFORE anything is decoded (a small file can
    declare a huge image: a decompression bomb); :class:`ImageTooLargeError` above
    ``max_pixels``, ``ValueError`` for anything unreadable. CPU-bound: call it off the event loop.
    """
    from PIL import Image, UnidentifiedImageError  # pillow only where images are decoded

    size = png_size(data)
    if size is not None:
        _check_pixels(*size, max_pixels)
    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_pixels(*image.size, max_pixels)  # other formats: the size is read lazily
            grey = image.convert("L")
            if grey.size != (side, side):
                grey = grey.resize((side, side), Image.Resampling.LANCZOS)
            array = np.asarray(grey, dtype=np.float32) / 255.0
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"image too large ({exc})") from exc
    except ImageTooLargeError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"not a readable image ({exc})") from exc
    return array.reshape(1, side * side)


def images_to_png(images: np.ndarray, side: int, *, columns: int | None = None) -> bytes:
    """Encode images (N, side*side) in [0, 1] as one greyscale PNG grid (row-major tiles)."""
    from PIL import Image

    array = check_images(np.clip(images, 0.0, 1.0), side)
    n = len(array)
    cols = columns or min(n, 10)
    rows = -(-n // cols)
    grid = np.zeros((rows * side, cols * side), dtype=np.float32)
    for index, image in enumerate(array):
        r, c = divmod(index, cols)
        grid[r * side : (r + 1) * side, c * side : (c + 1) * side] = image.reshape(side, side)
    buffer = io.BytesIO()
    Image.fromarray((grid * 255.0 + 0.5).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
