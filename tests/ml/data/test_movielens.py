from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.data.errors import DataError
from ml.data.movielens import load_folder, load_ratings_path, read_ratings_file


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def test_ml100k_grouplens_layout(tmp_path: Path) -> None:
    write(tmp_path / "u.data", "1\t10\t4\t881250949\n2\t10\t3\t881250950\n1\t20\t5\t881250951\n")
    flags = ["0"] * 19
    flags[1] = flags[5] = "1"  # Action, Comedy
    write(
        tmp_path / "u.item",
        "10|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(flags) + "\n"
        "20|Café Society (1933)|01-Jan-1933||http://y|" + "|".join(["1"] + ["0"] * 18) + "\n",
        encoding="latin-1",
    )
    write(tmp_path / "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    data = load_folder(tmp_path, "ml-100k")
    assert data.stats() == {"ratings": 3, "users": 2, "items": 2}
    item = data.items.set_index("item_id").loc[10]
    assert (item["title"], item["year"], item["genres"]) == (
        "Toy Story",
        1995,
        ["Action", "Comedy"],
    )
    assert data.items.set_index("item_id").loc[20, "title"] == "Café Society"
    assert data.users["occupation"].tolist() == ["technician", "other"]
    assert data.ratings["rating"].dtype == np.float32


def test_atomic_layout_of_the_offline_route(tmp_path: Path) -> None:
    write(
        tmp_path / "ml-100k.inter",
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n",
    )
    write(
        tmp_path / "ml-100k.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "242\tKolya\t1996\tComedy Film-Noir\n",
    )
    data = load_folder(tmp_path, "ml-100k")
    assert data.ratings.iloc[0].tolist() == [196, 242, 3.0, 881250949]
    assert data.items.iloc[0]["genres"] == ["Comedy", "Film-Noir"]


def test_ml1m_layout_latin1(tmp_path: Path) -> None:
    nested = tmp_path / "ml-1m"
    nested.mkdir()
    write(nested / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    write(
        nested / "movies.dat",
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::Pokémon (1999)::Animation|Children's\n",
        encoding="latin-1",
    )
    write(nested / "users.dat", "1::F::1::10::48067\n")
    data = load_folder(tmp_path, "ml-1m")  # the zip's nested folder is found
    items = data.items.set_index("item_id")
    assert items.loc[661, "title"] == "Pokémon"
    assert items.loc[661, "genres"] == ["Animation", "Children's"]
    assert items.loc[1193, "year"] == 1975
    assert data.users["gender"].tolist() == ["F"]


def test_latest_csv_layout(tmp_path: Path) -> None:
    write(
        tmp_path / "ratings.csv",
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n",
    )
    write(
        tmp_path / "movies.csv",
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n"
        '3,"Grumpier Old Men, The (1995)",(no genres listed)\n',
    )
    data = load_folder(tmp_path, "ml-latest-small")
    assert data.ratings["rating"].tolist() == [4.0, 3.5]
    items = data.items.set_index("item_id")
    assert items.loc[3, "title"] == "Grumpier Old Men, The"
    assert items.loc[3, "genres"] == []


@pytest.mark.parametrize(
    "text",
    [
        "user_id,item_id,rating,timestamp\n1,2,4,100\n3,2,5,200\n",
        "1,2,4,100\n3,2,5,200\n",
        "user\titem\trating\n1\t2\t4\n3\t2\t5\n",
        "1;2;4\n3;2;5\n",
    ],
)
def test_plain_ratings_files_with_or_without_header(tmp_path: Path, text: str) -> None:
    data = load_ratings_path(write(tmp_path / "mine.csv", text))
    assert data.ratings[["user_id", "item_id", "rating"]].values.tolist() == [[1, 2, 4], [3, 2, 5]]
    assert data.items["item_id"].tolist() == [2]


def test_duplicates_keep_the_latest_rating(tmp_path: Path) -> None:
    ratings = read_ratings_file(write(tmp_path / "r.csv", "1,2,1,100\n1,2,5,200\n"))
    assert ratings["rating"].tolist() == [5.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user_id,item_id,rating\n1,2,4\n1,x,5\n", "line 3: item_id must be a number, got 'x'"),
        ("1,2,4\n1,3\n", "line 2: expected at least 3 fields"),
        ("1,2,four\n", "line 1: rating must be a number"),
        ("1,2.5,4\n", "line 1: item_id must be a number"),
        ("", "the file is empty"),
    ],
)
def test_malformed_file_names_file_line_and_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=message) as info:
        read_ratings_file(path)
    assert str(path) in str(info.value)


def test_missing_things_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_ratings_file(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="no MovieLens files found"):
        load_folder(tmp_path, "x")
