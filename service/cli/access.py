"""``zhsearch documents``, ``zhsearch collections`` and ``zhsearch keys``: what a server holds, and who may read it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from index import ZhsearchError

if TYPE_CHECKING:
    pass

from .app import AsJson, CollectionName, IndexDir, Model, app, emit_json, fail, index_folder, open_searcher

keys_app = typer.Typer(
    help="API keys of the server (ZHSEARCH_KEYS_FILE): add, list, remove.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(keys_app, name="keys")

KeysFile = Annotated[
    Path | None,
    typer.Option("--keys-file", envvar="ZHSEARCH_KEYS_FILE", help="The keys file.", show_default=False),
]


@app.command()
def documents(
    offset: Annotated[int, typer.Option(min=0, help="Skip this many documents (by id).")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Documents to list.")] = 50,
    index_dir: IndexDir = None,
    collection: CollectionName = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """List the documents of an index or collection, by id."""
    try:
        total, page = open_searcher(index_folder(index_dir, collection), model).documents(offset, limit)
    except ZhsearchError as exc:
        raise fail(exc) from exc
    if as_json:
        listed = [
            {"id": d.id, "title": d.title, "metadata": d.metadata, "chars": d.chars, "passages": len(d.passage_ids)}
            for d in page
        ]
        emit_json({"total": total, "offset": offset, "documents": listed})
        return
    for d in page:
        access = d.metadata.get("access")
        shown = f"  access: {', '.join(map(str, access))}" if isinstance(access, list) else ""
        typer.echo(f"{d.id}\t{d.title}\t{d.chars} chars, {len(d.passage_ids)} passages{shown}")
    typer.echo(f"({len(page)} of {total} documents from {offset})")


@app.command()
def collections(as_json: AsJson = False) -> None:
    """List the collections a server on this folder serves (ZHSEARCH_COLLECTIONS_DIR), besides the default."""
    from index import collection_folders, get_settings, has_index

    root = get_settings().collections_dir
    found = [
        {"name": c.name, "description": c.description, "built": has_index(c.path), "path": str(c.path)}
        for c in collection_folders(root)
    ]
    if as_json:
        emit_json({"collections_dir": str(root), "collections": found})
        return
    for one in found:
        state = "" if one["built"] else "  (no index: not served)"
        typer.echo(f"{one['name']}\t{one['description']}{state}")
    typer.echo(f"({len(found)} collections in {root}, and the default one)")


def _keys_file(path: Path | None) -> Path:
    from index import get_settings

    found = path or get_settings().keys_file
    if found is None:
        raise fail(ZhsearchError("name the keys file: --keys-file PATH or ZHSEARCH_KEYS_FILE"))
    return found


@keys_app.command("add")
def keys_add(
    name: Annotated[str, typer.Argument(help="The key's name (logs and `keys list` show it, never the secret).")],
    group: Annotated[
        list[str] | None, typer.Option("--group", help="A group whose documents it reads; repeatable. '*': all.")
    ] = None,
    read: Annotated[list[str] | None, typer.Option("--read", help="A collection it may read; '*': all.")] = None,
    write: Annotated[
        list[str] | None, typer.Option("--write", help="A collection it may write to (and read all of); '*': all.")
    ] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="May create and delete collections, and read metrics.")
    ] = False,
    keys_file: KeysFile = None,
    as_json: AsJson = False,
) -> None:
    """Add a key; its secret is printed once and stored only as a hash."""
    from ..keys import add_key

    rights = {c: "read" for c in read or []} | {c: "write" for c in write or []}
    path = _keys_file(keys_file)
    try:
        secret = add_key(path, name, groups=list(group or []), collections=rights, admin=admin)  # type: ignore[arg-type]
    except ZhsearchError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json({"name": name, "secret": secret, "keys_file": str(path)})
        return
    typer.echo(f"added key {name!r} to {path}; its secret (shown this once, send it as `Authorization: Bearer …`):")
    typer.echo(secret)


@keys_app.command("list")
def keys_list(keys_file: KeysFile = None, as_json: AsJson = False) -> None:
    """The keys: names, groups, collections and rights (never secrets)."""
    from ..keys import read_keys_file

    path = _keys_file(keys_file)
    try:
        callers = sorted(read_keys_file(path).values(), key=lambda c: c.name) if path.exists() else []
    except ZhsearchError as exc:
        raise fail(exc) from exc
    listed = [
        {
            "name": c.name,
            "groups": ["*"] if c.groups is None else sorted(c.groups),
            "collections": dict(c.collections),
            "admin": c.admin,
        }
        for c in callers
    ]
    if as_json:
        emit_json({"keys_file": str(path), "keys": listed})
        return
    for one in listed:
        rights = ", ".join(f"{k}: {v}" for k, v in one["collections"].items()) or "no collection"  # type: ignore[attr-defined]
        admin = "  admin" if one["admin"] else ""
        typer.echo(f"{one['name']}\tgroups: {', '.join(one['groups']) or '—'}\t{rights}{admin}")  # type: ignore[arg-type]


@keys_app.command("remove")
def keys_remove(name: Annotated[str, typer.Argument(help="The key's name.")], keys_file: KeysFile = None) -> None:
    """Remove a key: a server reading the file refuses it from its next request."""
    from ..keys import remove_key

    try:
        remove_key(_keys_file(keys_file), name)
    except ZhsearchError as exc:
        raise fail(exc) from exc
    typer.echo(f"removed key {name!r}")
