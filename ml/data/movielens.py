"""Parsers for the MovieLens formats and plain rating files, into the common schemas.

Formats read:
- ml-100k, GroupLens layout: ``u.data`` (tab), ``u.item`` and ``u.user`` (``|``, latin-1);
- ml-100k, atomic layout of the offline route: ``ml-100k.inter/.item/.user`` (tab, typed header);
- ml-1m: ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``, latin-1);
- ml-latest-small and ml-25m: ``ratings.csv``, ``movies.csv``;
- any CSV/TSV of ``user_id,item_id,rating[,timestamp]``, with or without a header.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.data.errors import DataError
from ml.data.schema import RatingsDataset, empty_items, normalise_ratings

# u.item's 19 genre flags, in file order (u.genre).
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_TITLE_YEAR = re.compile(r"^(.*?)\s*\((\d{4})\)\s*$")


def _split_title_year(title: str) -> tuple[str, int | None]:
    match = _TITLE_YEAR.match(title.strip())
    if match:
        return match.group(1), int(match.group(2))
    return title.strip(), None


def _items_frame(ids: list[int], titles: list[str], years: list, genres: list[list[str]]):
    return pd.DataFrame(
        {
            "item_id": np.asarray(ids, dtype=np.int64),
            "title": titles,
            "year": pd.array(years, dtype="Int64"),
            "genres": genres,
        }
    )


# ---------------------------------------------------------------------------- ratings files


DEFAULT_CHUNK_ROWS = 1_000_000  # rows parsed at a time: memory bounded by a chunk, not a file
RATING_NAMES = ["user_id", "item_id", "rating", "timestamp"]


def _validated(frame: pd.DataFrame, path: Path, first_line: int) -> pd.DataFrame:
    """Check numeric columns row by row so a bad line is named, then cast to the schema's types
    (unsorted: :func:`normalise_ratings` sorts and de-duplicates a whole file)."""
    for column in frame.columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype(float))
        if column in ("user_id", "item_id", "timestamp"):
            bad |= values.notna() & (values != np.round(values))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raw = frame[column].iloc[row]
            raise DataError(
                f"{path}: line {first_line + row}: {column} must be a number, got {raw!r}"
            )
        frame[column] = values
    return pd.DataFrame(
        {
            "user_id": frame["user_id"].to_numpy(dtype=np.int64),
            "item_id": frame["item_id"].to_numpy(dtype=np.int64),
            "rating": frame["rating"].to_numpy(dtype=np.float32),
            "timestamp": (
                frame["timestamp"].to_numpy(dtype=np.int64)
                if "timestamp" in frame
                else np.zeros(len(frame), dtype=np.int64)
            ),
        }
    )


def _read_delimited(path: Path, sep: str, names: list[str], skip: int, encoding: str):
    try:
        return pd.read_csv(
            path,
            sep=sep,
            names=names,
            header=None,
            skiprows=skip,
            dtype=str,
            engine="python" if len(sep) > 1 else "c",
            encoding=encoding,
            skip_blank_lines=True,
            keep_default_na=False,
        )
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot parse: {exc}".splitlines()[0]) from exc


def _check_width(frame: pd.DataFrame, path: Path, first_line: int, required: int) -> None:
    short = frame.iloc[:, required - 1].isna() | (frame.iloc[:, required - 1] == "")
    if short.any():
        row = int(np.flatnonzero(short.to_numpy())[0])
        raise DataError(
            f"{path}: line {first_line + row}: expected at least {required} fields "
            "(user_id, item_id, rating)"
        )


@dataclass(frozen=True)
class _RatingsLayout:
    """How to parse one ratings file with pandas' C parser."""

    sep: str
    names: list[str]
    usecols: list[int]
    skip: int
    encoding: str
    check_width: bool = False

    @property
    def first_line(self) -> int:
        return self.skip + 1


def _ratings_layout(path: Path) -> _RatingsLayout:
    name = path.name
    if name.endswith(".inter"):
        return _RatingsLayout("\t", RATING_NAMES, [0, 1, 2, 3], 1, "utf-8")
    if name == "u.data":
        return _RatingsLayout("\t", RATING_NAMES, [0, 1, 2, 3], 0, "latin-1")
    if name == "ratings.dat":
        # "1::122::5::838985046": split on ":" (the C parser takes one-character separators
        # only, and the Python one is ~10x slower) and keep every other field.
        return _RatingsLayout(":", RATING_NAMES, [0, 2, 4, 6], 0, "latin-1", check_width=True)
    return _plain_layout(path)


def _plain_layout(path: Path) -> _RatingsLayout:
    """A CSV or TSV of user_id,item_id,rating[,timestamp]; the header is optional."""
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            sample = handle.read(4096)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from exc
    if not sample.strip():
        raise DataError(f"{path}: the file is empty")
    try:
        sep = csv.Sniffer().sniff(sample, delimiters=",\t;| ").delimiter
    except csv.Error:
        sep = "\t" if "\t" in sample else ","
    first = sample.splitlines()[0].split(sep)
    has_header = not first[0].strip().lstrip("-").replace(".", "", 1).isdigit()
    n_fields = len(first)
    if n_fields < 3:
        raise DataError(
            f"{path}: line 1: expected at least 3 fields (user_id, item_id, rating), "
            f"found {n_fields} separated by {sep!r}"
        )
    names = RATING_NAMES[: min(n_fields, 4)]
    return _RatingsLayout(
        sep, names, list(range(len(names))), 1 if has_header else 0, "utf-8", check_width=True
    )


def iter_ratings_file(
    path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """The ratings of any supported file, ``chunk_rows`` lines at a time, validated and cast to
    the schema's types (in file order; not de-duplicated). A bad line raises :class:`DataError`
    naming the file and line, whichever chunk it is in."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    layout = _ratings_layout(path)
    done = 0
    try:
        # Fast path: pandas parses numbers itself. Anything odd in a chunk (a missing field, a
        # word, "3.0" as an id) makes it fail; the strict path below then names the line.
        for frame in _parse_chunks(path, layout, chunk_rows, numeric=True):
            if not _plausible(frame):
                raise ValueError("needs the strict path")
            yield _validated(frame, path, 0)
            done += 1
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        pass
    else:
        if done == 0:
            raise DataError(f"{path}: no ratings found")
        return
    first_line, seen = layout.first_line, done > 0
    for index, frame in enumerate(_parse_chunks(path, layout, chunk_rows, numeric=False)):
        if index >= done:  # chunks before it were handed out already by the fast path
            if layout.check_width:
                _check_width(frame.fillna(""), path, first_line, 3)
            yield _validated(frame, path, first_line)
            seen = seen or len(frame) > 0
        first_line += len(frame)
    if not seen:
        raise DataError(f"{path}: no ratings found")


def _plausible(frame: pd.DataFrame) -> bool:
    rating = frame["rating"].to_numpy()
    return len(frame) > 0 and bool(np.isfinite(rating).all())


def _parse_chunks(
    path: Path, layout: _RatingsLayout, chunk_rows: int, *, numeric: bool
) -> Iterator[pd.DataFrame]:
    dtype: Any = (
        {"user_id": np.int64, "item_id": np.int64, "rating": np.float64, "timestamp": np.int64}
        if numeric
        else str
    )
    if numeric and layout.sep == ":":
        pairs = zip(layout.usecols, layout.names, strict=True)
        dtype = {position: dtype[name] for position, name in pairs}
    try:
        reader = pd.read_csv(
            path,
            sep=layout.sep,
            header=None,
            skiprows=layout.skip,
            usecols=layout.usecols,
            names=None if layout.sep == ":" else layout.names,
            dtype=dtype,
            encoding=layout.encoding,
            skip_blank_lines=True,
            keep_default_na=False,
            skipinitialspace=layout.check_width and layout.sep != ":",
            chunksize=chunk_rows,
        )
        with reader:
            for raw in reader:
                yield raw.set_axis(layout.names, axis=1) if layout.sep == ":" else raw
    except FileNotFoundError as exc:
        raise DataError(f"{path}: no such file") from exc
    except pd.errors.EmptyDataError:
        return
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        if numeric or isinstance(exc, DataError):
            raise
        raise DataError(f"{path}: cannot parse: {exc}".splitlines()[0]) from exc


def count_rating_lines(path: str | Path) -> int:
    """Lines holding ratings (a header excluded): a progress bar's total, read in 1 MiB blocks."""
    path = Path(path)
    layout = _ratings_layout(path)
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n") - layout.skip


def read_ratings_file(path: str | Path, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> pd.DataFrame:
    """Read any supported ratings file into the ratings schema (sorted, de-duplicated)."""
    chunks = list(iter_ratings_file(path, chunk_rows))
    return normalise_ratings(chunks[0] if len(chunks) == 1 else pd.concat(chunks))


# ---------------------------------------------------------------------------- item / user files


def read_atomic_items(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8")
    frame.columns = [c.split(":")[0] for c in frame.columns]
    years = [int(y) if y.isdigit() else None for y in frame["release_year"]]
    genres = [g.split() for g in frame["class"]]
    return _items_frame(
        frame["item_id"].astype(int).tolist(), frame["movie_title"].tolist(), years, genres
    )


def read_ml100k_items(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(
        path, sep="|", header=None, dtype=str, encoding="latin-1", keep_default_na=False
    )
    titles, years, genres = [], [], []
    for _, row in frame.iterrows():
        title, year = _split_title_year(row[1])
        if year is None and len(row[2]) >= 4 and row[2][-4:].isdigit():
            year = int(row[2][-4:])  # release date "01-Jan-1995"
        flags = row.iloc[5:24].tolist()
        titles.append(title)
        years.append(year)
        genres.append([g for g, flag in zip(ML100K_GENRES, flags, strict=False) if flag == "1"])
    return _items_frame(frame[0].astype(int).tolist(), titles, years, genres)


def read_pipe_genre_items(path: Path, sep: str, encoding: str) -> pd.DataFrame:
    """movies.dat (``::``) and movies.csv (``,``): id, "Title (year)", genres joined by ``|``."""
    if sep == ",":
        frame = pd.read_csv(path, dtype=str, encoding=encoding, keep_default_na=False)
        frame.columns = ["item_id", "title", "genres"]
    else:
        frame = _read_delimited(path, sep, ["item_id", "title", "genres"], 0, encoding)
    titles, years = zip(*(_split_title_year(t) for t in frame["title"]), strict=True)
    genres = [[] if g in ("", "(no genres listed)") else g.split("|") for g in frame["genres"]]
    return _items_frame(frame["item_id"].astype(int).tolist(), list(titles), list(years), genres)


def read_users(path: Path) -> pd.DataFrame:
    name = path.name
    if name.endswith(".user") and name != "u.user":
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        frame.columns = [c.split(":")[0] for c in frame.columns]
    elif name == "u.user":
        frame = _read_delimited(
            path, "|", ["user_id", "age", "gender", "occupation", "zip_code"], 0, "latin-1"
        )
    else:  # users.dat
        frame = _read_delimited(
            path, "::", ["user_id", "gender", "age", "occupation", "zip_code"], 0, "latin-1"
        )
    frame["user_id"] = frame["user_id"].astype(np.int64)
    frame["age"] = pd.to_numeric(frame["age"], errors="coerce").astype("Int64")
    return frame[["user_id", "age", "gender", "occupation", "zip_code"]]


# ---------------------------------------------------------------------------- folders


def _find_layout_root(folder: Path) -> Path:
    """Accept the folder itself or a single nested folder (as zips unpack: ``ml-100k/u.data``)."""
    markers = ("u.data", "ratings.dat", "ratings.csv")
    for candidate in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
        if any((candidate / m).is_file() for m in markers) or any(candidate.glob("*.inter")):
            return candidate
    raise DataError(
        f"{folder}: no MovieLens files found (looked for *.inter, u.data, ratings.dat, ratings.csv)"
    )


@dataclass(frozen=True)
class RatingsFiles:
    """A data set on disk: its ratings file (read in chunks) and its metadata (read whole)."""

    name: str
    ratings_path: Path
    items: pd.DataFrame | None  # None: the source has no item metadata
    users: pd.DataFrame | None
    source: str = "local"

    def chunks(self, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
        return iter_ratings_file(self.ratings_path, chunk_rows)

    def count_ratings(self) -> int:
        """The ratings file's lines (a progress bar's total; duplicates counted)."""
        return count_rating_lines(self.ratings_path)

    def load(self) -> RatingsDataset:
        ratings = read_ratings_file(self.ratings_path)
        items = self.items if self.items is not None else empty_items(ratings["item_id"].to_numpy())
        return RatingsDataset(
            name=self.name, ratings=ratings, items=items, users=self.users, source=self.source
        )


def folder_files(folder: str | Path, name: str, source: str = "local") -> RatingsFiles:
    """Find a MovieLens folder's files in any of the supported layouts; read its metadata."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder")
    root = _find_layout_root(folder)
    inter = sorted(root.glob("*.inter"))
    if inter:
        item_file, user_file = inter[0].with_suffix(".item"), inter[0].with_suffix(".user")
        return RatingsFiles(
            name,
            inter[0],
            read_atomic_items(item_file) if item_file.is_file() else None,
            read_users(user_file) if user_file.is_file() else None,
            source,
        )
    if (root / "u.data").is_file():
        return RatingsFiles(
            name,
            root / "u.data",
            read_ml100k_items(root / "u.item") if (root / "u.item").is_file() else None,
            read_users(root / "u.user") if (root / "u.user").is_file() else None,
            source,
        )
    if (root / "ratings.dat").is_file():
        movies = root / "movies.dat"
        return RatingsFiles(
            name,
            root / "ratings.dat",
            read_pipe_genre_items(movies, "::", "latin-1") if movies.is_file() else None,
            read_users(root / "users.dat") if (root / "users.dat").is_file() else None,
            source,
        )
    movies = root / "movies.csv"
    return RatingsFiles(
        name,
        root / "ratings.csv",
        read_pipe_genre_items(movies, ",", "utf-8") if movies.is_file() else None,
        None,
        source,
    )


def ratings_files(path: str | Path, name: str | None = None) -> RatingsFiles:
    """A user's own ratings as files: a single ratings file, or a MovieLens folder."""
    path = Path(path)
    if path.is_dir():
        return folder_files(path, name or path.name)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    return RatingsFiles(name or path.stem, path, None, None)


def load_folder(folder: str | Path, name: str, source: str = "local") -> RatingsDataset:
    """Load a MovieLens folder in any of the supported layouts."""
    return folder_files(folder, name, source).load()


def load_ratings_path(path: str | Path, name: str | None = None) -> RatingsDataset:
    """A user's own ratings: a single file in any supported format, or a MovieLens folder."""
    return ratings_files(path, name).load()
