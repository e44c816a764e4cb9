"""``python -m app.services.export_worker OUT``: every rating of ``DEEPREC_DATABASE_URL`` as CSV.

A retrain job used to export the ratings in a thread of the serving worker: 100K rows through the
ORM and pandas is a few seconds of pure-Python work holding the GIL, and the event loop, which
gives the GIL up at every socket and SQLite call, waited up to a switch interval to get it back
each time: answers that take 0.1 ms took seconds (bench/results/serving.md, the retrain runs).
In a process of its own, started with the trainer's thread cap and niceness, it costs the server
nothing but CPU the scheduler gives it after the requests. Prints the number of ratings written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sqlalchemy.orm import Session

from app.crud.ratings import all_ratings_frame
from app.db.session import create_db_engine, create_session_factory

EMPTY_EXIT = 3
NO_RATINGS = "the database holds no ratings to train on (run `deeprec data load`)"


def write_ratings_csv(session: Session, path: Path) -> int:
    """Write every rating as CSV (user_id,item_id,rating,timestamp) and return how many; with
    no ratings, write nothing and return 0."""
    frame = all_ratings_frame(session=session)
    if frame.empty:
        return 0
    frame.to_csv(path, index=False)
    return len(frame)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("error: usage: python -m app.services.export_worker OUT", file=sys.stderr)
        return 2
    engine = create_db_engine(os.environ["DEEPREC_DATABASE_URL"])
    try:
        with create_session_factory(engine)() as session:
            n = write_ratings_csv(session, Path(argv[0]))
    finally:
        engine.dispose()
    if n == 0:
        print(f"error: {NO_RATINGS}", file=sys.stderr)
        return EMPTY_EXIT
    print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
