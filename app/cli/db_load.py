"""The work behind ``deeprec data load``: check the schema, bulk-load with a progress bar."""

from __future__ import annotations

import typer
from tqdm import tqdm

from app import crud
from app.cli.common import fail, settings
from app.crud.errors import CrudError
from app.db.errors import DatabaseError
from app.db.migrate import require_current_schema
from app.db.session import create_db_engine, create_session_factory, display_url
from ml.data.schema import RatingsDataset


def load_into_database(dataset: RatingsDataset, *, progress: bool = True) -> crud.LoadResult:
    url = settings().resolved_database_url
    try:
        engine = create_db_engine(url)
    except DatabaseError as exc:
        fail(str(exc))
    try:
        require_current_schema(engine)
        with (
            create_session_factory(engine)() as session,
            tqdm(
                total=crud.load_row_count(dataset),
                desc=f"loading {dataset.name}",
                unit="row",
                unit_scale=True,
                disable=not progress,
            ) as bar,
        ):
            result = crud.bulk_load(session=session, dataset=dataset, progress=bar.update)
    except (DatabaseError, CrudError) as exc:
        fail(str(exc))
    finally:
        engine.dispose()
    typer.echo(
        f"{dataset.name} -> {display_url(url)}: added {result.users_added} users, "
        f"{result.items_added} items, {result.ratings_added} ratings in {result.seconds:.2f} s "
        f"(now {result.users_total} users, {result.items_total} items, "
        f"{result.ratings_total} ratings)"
    )
    return result
