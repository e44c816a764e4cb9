"""The work behind ``deeprec data load``: check the schema, stream the ratings file into the
database chunk by chunk, with a progress bar in ratings per second."""

from __future__ import annotations

import numpy as np
import typer
from tqdm import tqdm

from app import crud
from app.cli.common import fail, settings
from app.crud.errors import CrudError
from app.db.errors import DatabaseError
from app.db.migrate import require_current_schema
from app.db.session import create_db_engine, create_session_factory, display_url
from ml.data.movielens import DEFAULT_CHUNK_ROWS, RatingsFiles
from ml.data.schema import empty_items


def load_into_database(
    files: RatingsFiles, *, progress: bool = True, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> crud.LoadResult:
    url = settings().resolved_database_url
    try:
        engine = create_db_engine(url)
    except DatabaseError as exc:
        fail(str(exc))
    source = crud.LoadSource(
        name=files.name,
        items=files.items if files.items is not None else empty_items(np.empty(0, dtype=np.int64)),
        users=files.users,
        rating_chunks=files.chunks(chunk_rows),
    )
    try:
        require_current_schema(engine)
        with (
            create_session_factory(engine)() as session,
            tqdm(
                total=files.count_ratings(),
                desc=f"loading {files.name}",
                unit="rating",
                unit_scale=True,
                disable=not progress,
            ) as bar,
        ):
            result = crud.stream_load(session=session, source=source, progress=bar.update)
    except (DatabaseError, CrudError) as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    typer.echo(
        f"{files.name} -> {display_url(url)}: added {result.users_added} users, "
        f"{result.items_added} items, {result.ratings_added} ratings in {result.seconds:.2f} s "
        f"(now {result.users_total} users, {result.items_total} items, "
        f"{result.ratings_total} ratings)"
    )
    return result
