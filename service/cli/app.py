"""The Typer app and what its commands share: options, errors, JSON output, progress bars."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from index import ZhsearchError

if TYPE_CHECKING:
    from index import ServedIndex

# Plain click help and errors: rich's renderer costs ~90 ms of every `--help` (README, "CLI").
app = typer.Typer(
    help="zhsearch: Chinese semantic search on a CPU.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)

IndexDir = Annotated[
    Path | None, typer.Option("--index-dir", envvar="ZHSEARCH_INDEX_DIR", help="Index folder.", show_default=False)
]
Model = Annotated[
    str | None, typer.Option("--model", envvar="ZHSEARCH_MODEL", help="Embedding model.", show_default=False)
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
NoServer = Annotated[
    bool,
    typer.Option(
        "--no-server",
        envvar="ZHSEARCH_NO_SERVER",
        help="Open the index here even when a server runs on it (by default the query goes to that server).",
    ),
]
CollectionName = Annotated[
    str | None,
    typer.Option(
        "--collection",
        help="A collection of the server: its folder under ZHSEARCH_COLLECTIONS_DIR ('default': the index folder).",
        show_default=False,
    ),
]


def index_folder(index_dir: Path | None, collection: str | None) -> Path | None:
    """The index folder that ``--index-dir`` and ``--collection`` name (None: the configured one): a
    collection of the server whose default collection is ``--index-dir`` (or ``ZHSEARCH_INDEX_DIR``)."""
    from index import DEFAULT_COLLECTION, collection_dir, get_settings

    if collection is None:
        return index_dir
    settings = get_settings()
    if index_dir is not None:
        settings = settings.with_index_dir(index_dir)
    if collection == DEFAULT_COLLECTION:
        return settings.index_dir
    try:
        return collection_dir(settings.collections_dir, collection)
    except ZhsearchError as exc:
        raise fail(exc) from exc


def fail(exc: ZhsearchError) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def emit_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))


class Bars:
    """tqdm bars for the library's (stage, done, total) progress callback.

    A stage's bar opens at its first report (the library reports 0 first, so it is on the
    screen before the slow part starts) and counts its unit per second from then.
    """

    LABELS = {
        "read": ("reading documents", "doc"),
        "embed": ("embedding passages", "passage"),
        "naive": ("embedding baseline windows", "window"),
        "prepare": ("cleaning and chunking", "doc"),
        "shards": ("writing shards", "shard"),
        "sync": ("syncing documents", "doc"),
    }

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            label, unit = self.LABELS.get(stage, (stage, "it"))
            bar = self.bars[stage] = tqdm(
                total=total, desc=label, unit=f" {unit}s", file=sys.stderr, mininterval=0.5, smoothing=0.1
            )
        if done > bar.n:
            bar.update(done - bar.n)
        if done >= total:
            bar.close()


def open_searcher(index_dir: Path | None, model: str | None, *, answers: bool = True) -> ServedIndex:
    """The index read-only, with the configured model and settings (a cluster index: every shard
    opened in this process); ``answers=False`` for a command that only searches (no span reader)."""
    from index import get_settings, open_configured

    return open_configured(get_settings(), index_dir=index_dir, model=model, answers=answers)
