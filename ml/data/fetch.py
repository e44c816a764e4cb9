"""Find a data set's files: a local folder, the cache, the GroupLens zip, or the offline wheel.

``fetch`` tries the routes in that order and reports which one it used. Everything fetched is
verified by checksum before it is unpacked into the cache (outside git, under ``data_dir``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ml.data.errors import DataError
from ml.data.movielens import load_folder
from ml.data.schema import RatingsDataset

log = logging.getLogger(__name__)

GROUPLENS_BASE = "https://files.grouplens.org/datasets/movielens"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    zip_name: str
    description: str


DATASETS: dict[str, DatasetSpec] = {
    "ml-100k": DatasetSpec("ml-100k", "ml-100k.zip", "100,000 ratings, 943 users, 1,682 movies"),
    "ml-1m": DatasetSpec("ml-1m", "ml-1m.zip", "1,000,209 ratings, 6,040 users, 3,706 movies"),
    "ml-latest-small": DatasetSpec(
        "ml-latest-small", "ml-latest-small.zip", "about 100,000 ratings, 610 users"
    ),
    "ml-25m": DatasetSpec("ml-25m", "ml-25m.zip", "25 million ratings, 162,541 users"),
}

# The offline route for ml-100k: files shipped inside a PyPI wheel (read from the zip, never
# imported or installed). Checksums from DATA.md.
WHEEL_REQUIREMENT = "recbole==1.2.1"
WHEEL_FILE = "recbole-1.2.1-py3-none-any.whl"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
WHEEL_MEMBERS = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
WHEEL_PREFIX = "recbole/dataset_example/ml-100k/"
COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class FetchResult:
    name: str
    path: Path
    route: str  # "local", "cache", "grouplens" or "wheel"


def known_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(DATASETS)
        raise DataError(f"unknown data set {name!r}; known data sets: {known}") from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(
    name: str,
    *,
    data_dir: Path,
    local_dir: Path | None = None,
    online: bool = True,
    timeout: float = 10.0,
) -> FetchResult:
    """Return a folder holding the data set's files, trying each route in turn."""
    known_dataset(name)
    if local_dir is not None:
        if not Path(local_dir).is_dir():
            raise DataError(f"{local_dir}: the local data folder does not exist")
        log.info("data set %s: using the local folder %s", name, local_dir)
        return FetchResult(name, Path(local_dir), "local")
    cached = cache_path(data_dir, name)
    if (cached / COMPLETE_MARKER).is_file():
        log.info("data set %s: using the cache %s", name, cached)
        return FetchResult(name, cached, "cache")
    errors: list[str] = []
    if online:
        try:
            _fetch_grouplens(name, cached, timeout=timeout)
            return FetchResult(name, cached, "grouplens")
        except (OSError, DataError) as exc:
            errors.append(f"GroupLens: {exc}")
            log.warning("data set %s: GroupLens download failed (%s)", name, exc)
    if name == "ml-100k":
        try:
            _fetch_wheel(cached, data_dir / "wheels")
            return FetchResult(name, cached, "wheel")
        except (OSError, DataError, subprocess.SubprocessError) as exc:
            errors.append(f"offline wheel: {exc}")
    tried = "; ".join(errors) or "no download route is enabled (online=false)"
    raise DataError(f"could not fetch {name}: {tried}. Set DEEPREC_DATASET_PATH to a local copy.")


def load_dataset(
    name: str,
    *,
    data_dir: Path,
    local_dir: Path | None = None,
    online: bool = True,
) -> RatingsDataset:
    result = fetch(name, data_dir=data_dir, local_dir=local_dir, online=online)
    return load_folder(result.path, name, source=result.route)


def cache_path(data_dir: Path, name: str) -> Path:
    return Path(data_dir) / "cache" / name


def _publish(staging: Path, target: Path) -> None:
    """Move a fully written folder into place, so the cache never holds half a data set."""
    (staging / COMPLETE_MARKER).write_text("ok\n")
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)


def _fetch_grouplens(name: str, target: Path, timeout: float) -> None:
    spec = known_dataset(name)
    url = f"{GROUPLENS_BASE}/{spec.zip_name}"
    log.info("data set %s: downloading %s", name, url)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / spec.zip_name
        with urllib.request.urlopen(url, timeout=timeout) as response, archive.open("wb") as out:
            shutil.copyfileobj(response, out)
        # GroupLens publishes an MD5 beside each zip; compare with it before unpacking.
        with urllib.request.urlopen(f"{url}.md5", timeout=timeout) as response:
            expected = response.read().decode().split()[0].strip().lower()
        actual = hashlib.md5(archive.read_bytes(), usedforsecurity=False).hexdigest()
        if expected != actual:
            raise DataError(f"{url}: checksum mismatch (md5 {actual}, published {expected})")
        staging = Path(tmp) / "unpacked"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)
        _publish(staging, target)


def _fetch_wheel(target: Path, wheel_dir: Path) -> None:
    wheel = wheel_dir / WHEEL_FILE
    if not wheel.is_file():
        wheel_dir.mkdir(parents=True, exist_ok=True)
        log.info(
            "data set ml-100k: downloading the %s wheel with pip (offline route)", WHEEL_REQUIREMENT
        )
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "-q", WHEEL_REQUIREMENT, "-d", str(wheel_dir),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0 or not wheel.is_file():
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DataError(f"pip download {WHEEL_REQUIREMENT} failed: {detail[0]}")
    extract_wheel_members(wheel, target)


def extract_wheel_members(wheel: Path, target: Path) -> None:
    """Verify the wheel and the three ml-100k files inside it, then publish them to ``target``."""
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        raise DataError(f"{wheel}: checksum mismatch (sha256 {actual}, expected {WHEEL_SHA256})")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staging = Path(tmp) / "ml-100k"
        staging.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            for member, expected in WHEEL_MEMBERS.items():
                data = zf.read(WHEEL_PREFIX + member)
                digest = hashlib.sha256(data).hexdigest()
                if digest != expected:
                    raise DataError(f"{wheel}!{member}: checksum mismatch (sha256 {digest})")
                (staging / member).write_bytes(data)
        (staging / "SOURCE").write_text(f"{WHEEL_REQUIREMENT} ({WHEEL_SHA256})\n")
        _publish(staging, target)
