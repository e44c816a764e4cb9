"""``deeprec models list | register | activate | export``: model versions from the command line.

A checkpoint trained elsewhere (a GPU machine, a colleague's laptop) is brought into the service
with ``register``: it goes through the checks the service's registry applies before it serves a
version (manifest format version, a known model type, the tensors' sha256 against the manifest,
the model rebuilt and run once), is copied under ``DEEPREC_CHECKPOINT_DIR/<type>/<version>/`` and
recorded with the sha256 of its manifest. ``activate`` verifies the stored files against that
sha256 again before it switches the active version in the database (running workers follow
within ``DEEPREC_MODEL_SYNC_S``); ``export`` verifies, then copies a version's folder out.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.orm import Session

from app.cli.common import fail, print_json, settings

app = typer.Typer(help="List, import, activate and export model versions.", no_args_is_help=True)


@contextlib.contextmanager
def _session() -> Iterator[Session]:
    from app.db.errors import DatabaseError
    from app.db.migrate import require_current_schema
    from app.db.session import create_db_engine, create_session_factory

    engine = create_db_engine(settings().resolved_database_url)
    try:
        try:
            require_current_schema(engine)
        except DatabaseError as exc:
            fail(f"{exc} (run `deeprec db upgrade` first)")
        with create_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _verified(model_type: str, version: str, path: Path, sha256: str | None) -> str:
    """The registry's checks on a checkpoint folder; its manifest sha256 when they pass."""
    from app.services.registry import ModelRegistry
    from ml.checkpoint import CheckpointError, read_manifest
    from ml.registry import BY_NAME, model_types

    found = read_manifest(path).get("model_type")  # format version checked here
    if found not in BY_NAME:
        raise CheckpointError(f"{path}: unknown model type {found!r}; known: {model_types()}")
    if found != model_type:
        raise CheckpointError(f"{path}: holds a {found!r} model, not {model_type!r}")
    entry = ModelRegistry(device="cpu").load(
        model_type=model_type, version=version, checkpoint_path=path, sha256=sha256
    )
    assert entry.sha256 is not None
    return entry.sha256


def _copy_folder(source: Path, destination: Path) -> None:
    """Copy a checkpoint folder in full under a temporary name, then rename it into place."""
    if destination.exists():
        fail(f"{destination}: already exists")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        for name in ("manifest.json", "model.safetensors"):
            shutil.copy2(source / name, staging / name)
        staging.rename(destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _find(session: Session, version: str, model: str | None) -> Any:
    """A version row by numeric id or by version name (``--model`` when names repeat)."""
    from app.crud import get_model_version, list_model_versions

    if version.isdigit():
        row = get_model_version(session=session, version_id=int(version))
        if row is None:
            fail(f"unknown model version id {version}")
        return row
    rows = list_model_versions(session=session, model_type=model)
    rows = [r for r in rows if r.version == version]
    if not rows:
        fail(f"unknown model version {version!r}" + (f" of {model}" if model else ""))
    if len(rows) > 1:
        types = sorted(r.model_type for r in rows)
        fail(f"version {version!r} exists for {types}; name one with --model")
    return rows[0]


def _public(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "model_type": row.model_type,
        "version": row.version,
        "active": bool(row.is_active),
        "created_at": row.created_at,
        "ndcg@10_all": (row.metrics or {}).get("ndcg@10_all"),
        "checkpoint_path": row.checkpoint_path,
        "sha256": row.sha256,
    }


@app.command("list")
def list_versions(
    model: str | None = typer.Option(None, help="Only versions of this model type."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Registered versions, newest first; the active one of each type is marked."""
    from app.crud import list_model_versions

    with _session() as session:
        rows = [_public(r) for r in list_model_versions(session=session, model_type=model)]
    if json_output:
        print_json({"items": rows})
        return
    if not rows:
        typer.echo("no model versions registered")
        return
    for r in rows:
        ndcg = "" if r["ndcg@10_all"] is None else f"  ndcg@10 {r['ndcg@10_all']:.4f}"
        mark = "*" if r["active"] else " "
        typer.echo(f"{mark} {r['id']:>4}  {r['model_type']:<18} {r['version']}{ndcg}")


@app.command()
def register(
    checkpoint: Path = typer.Argument(..., help="A checkpoint folder (manifest + tensors)."),
    version: str | None = typer.Option(None, help="Version name (default: a UTC time stamp)."),
    activate: bool = typer.Option(False, help="Also make it the active version of its type."),
) -> None:
    """Verify a checkpoint as the registry does, copy it into the checkpoint store, record it."""
    from app.crud import ConflictError, activate_model_version, register_model_version
    from ml.checkpoint import read_manifest

    manifest = read_manifest(checkpoint)
    model_type = str(manifest.get("model_type"))
    name = version or f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-import"
    if not name.strip() or "/" in name or name.startswith("."):
        fail(f"invalid version name {name!r}")
    sha256 = _verified(model_type, name, checkpoint, None)
    destination = settings().resolved_checkpoint_dir.resolve() / model_type / name
    with _session() as session:
        _copy_folder(checkpoint, destination)
        try:
            # The copy must be the checkpoint that was verified, byte for byte.
            _verified(model_type, name, destination, sha256)
            try:
                row = register_model_version(
                    session=session,
                    model_type=model_type,
                    checkpoint_path=str(destination),
                    sha256=sha256,
                    metrics=manifest.get("metrics") or {},
                    params={"imported_from": str(checkpoint.resolve())},
                    version=name,
                )
            except ConflictError as exc:
                fail(str(exc))
            if activate:
                row = activate_model_version(session=session, version_id=row.id)
        except BaseException:
            shutil.rmtree(destination, ignore_errors=True)
            raise
        print_json(_public(row))


@app.command("activate")
def activate_version(
    version: str = typer.Argument(..., help="Version id or name."),
    model: str | None = typer.Option(None, help="Model type, when the name is not unique."),
) -> None:
    """Verify a registered version's files (sha256, load) and make it the active one."""
    from app.crud import activate_model_version

    with _session() as session:
        row = _find(session, version, model)
        _verified(row.model_type, row.version, Path(row.checkpoint_path), row.sha256)
        row = activate_model_version(session=session, version_id=row.id)
        print_json(_public(row))


@app.command()
def export(
    version: str = typer.Argument(..., help="Version id or name."),
    directory: Path = typer.Argument(..., help="Folder to write (must not exist)."),
    model: str | None = typer.Option(None, help="Model type, when the name is not unique."),
) -> None:
    """Verify a registered version's files, then copy its checkpoint folder to DIRECTORY."""
    if directory.exists():
        fail(f"{directory}: already exists")
    with _session() as session:
        row = _find(session, version, model)
        _verified(row.model_type, row.version, Path(row.checkpoint_path), row.sha256)
        _copy_folder(Path(row.checkpoint_path), directory)
        print_json({**_public(row), "exported_to": str(directory)})
