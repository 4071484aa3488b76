"""``zhsearch build``, ``search`` and ``ask``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from index import ZhsearchError

if TYPE_CHECKING:
    pass

from .app import (
    AsJson,
    Bars,
    CollectionName,
    IndexDir,
    Model,
    NoServer,
    app,
    emit_json,
    fail,
    index_folder,
    open_searcher,
)


@app.command()
def build(
    docs: Annotated[
        list[Path] | None,
        typer.Option(
            "--docs",
            help="Files or folders (.txt .md .html .htm .pdf .docx .jsonl .json); repeatable. Default: seeds/.",
        ),
    ] = None,
    json_text: Annotated[
        list[str] | None, typer.Option("--json-text", help="Field(s) holding the text in .json collections.")
    ] = None,
    json_title: Annotated[list[str] | None, typer.Option("--json-title", help="Title field(s) in .json.")] = None,
    json_id: Annotated[list[str] | None, typer.Option("--json-id", help="Id field(s) in .json.")] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Build nothing if any file cannot be read (default: skip it, say why).")
    ] = False,
    ray: Annotated[bool, typer.Option("--ray", help="Build on a Ray cluster (pip install 'zhsearch[ray]').")] = False,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (default: start a local Ray on 127.0.0.1).")
    ] = None,
    shards: Annotated[
        int | None, typer.Option(min=1, max=1024, help="Split the index into N shards (a cluster index).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=1024, help="Texts per model call (--ray).")] = 8,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Embedding actors, one model each (--ray; default: one per CPU).")
    ] = None,
    index_dir: IndexDir = None,
    collection: CollectionName = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Build or update the index (unchanged documents are not embedded again).

    A file that cannot be read (an unsupported type, text in no known encoding, a scanned
    PDF, an empty file, a duplicate id) is skipped with its reason and the build goes on;
    the exit status is 1 only when nothing could be indexed, or with --strict.

    With --shards N (and --ray to run it on a Ray cluster) it builds a cluster index: N
    shards, each an ordinary index, plus cluster.json; serve it with `zhsearch serve --ray`.
    """
    from index import JsonFields, build_index, get_settings, load_configured_embedder, read_paths

    settings = get_settings()
    target = index_folder(index_dir, collection) or settings.index_dir
    defaults = JsonFields()
    fields = JsonFields(
        id=tuple(json_id or defaults.id),
        title=tuple(json_title or defaults.title),
        text=tuple(json_text or defaults.text),
    )
    loaded = read_paths(docs or settings.docs, fields)
    skipped = [{"path": s.path, "reason": s.reason} for s in loaded.skipped]
    if not as_json:
        for item in loaded.skipped:
            typer.secho(f"skipped: {item.reason}", fg=typer.colors.YELLOW, err=True)
    if strict and skipped:
        if as_json:
            emit_json({"error": "unreadable files (--strict)", "skipped": skipped})
        typer.secho(f"error: {len(skipped)} file(s) could not be read; nothing built (--strict)", fg="red", err=True)
        raise typer.Exit(1)
    if not loaded.documents:
        if as_json:
            emit_json({"error": "no documents to index", "skipped": skipped})
        why = f" ({len(skipped)} skipped, reasons above)" if skipped and not as_json else ""
        typer.secho(f"error: no documents to index{why}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    if ray or shards:
        _build_cluster(loaded.documents, target, shards or 1, ray, address, batch_size, concurrency, model, as_json)
        if skipped and not as_json:
            typer.secho(f"{len(skipped)} file(s) skipped, reasons above", fg=typer.colors.YELLOW)
        return
    try:
        embedder = load_configured_embedder(settings, model=model)
        report = build_index(loaded.documents, target, embedder, progress=Bars(not as_json))
    except ZhsearchError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json({**report.__dict__, "path": str(report.path), "skipped": skipped})
        return
    if report.unchanged:
        typer.echo(f"index {target} is up to date: {report.documents} documents, {report.passages} passages")
    else:
        typer.echo(
            f"built {report.path}: {report.documents} documents ({report.reused_documents} unchanged),"
            f" {report.passages} passages ({report.embedded_passages} embedded) in {report.seconds:.1f}s"
        )
    if skipped:
        typer.secho(f"{len(skipped)} file(s) skipped, reasons above", fg=typer.colors.YELLOW)


def _build_cluster(
    documents: list[Any],
    target: Path,
    shards: int,
    on_ray: bool,
    address: str | None,
    batch_size: int,
    concurrency: int | None,
    model: str | None,
    as_json: bool,
) -> None:
    """``build --shards N [--ray]``: the sharded build, on Ray or in this process."""
    from index import get_settings, load_configured_embedder

    settings = get_settings()
    try:
        if on_ray:
            from index import ModelSpec, build_on_ray

            try:
                import ray  # noqa: F401
            except ImportError as exc:
                raise typer.BadParameter(f"--ray needs Ray: pip install 'zhsearch[ray]' ({exc})") from exc
            spec = ModelSpec.of(settings, model=model)
            report = build_on_ray(
                documents,
                target,
                spec,
                shards,
                address=address,
                batch_size=batch_size,
                concurrency=concurrency,
                progress=Bars(not as_json),
            )
        else:
            from index import build_in_process

            embedder = load_configured_embedder(settings, model=model)
            report = build_in_process(documents, target, embedder, shards, progress=Bars(not as_json))
    except ZhsearchError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json(
            {
                "path": str(report.path),
                "shards": report.shards,
                "documents": report.documents,
                "passages": report.passages,
                "seconds": report.seconds,
                "shard_passages": [r.passages for r in report.shard_reports],
            }
        )
        return
    sizes = ", ".join(str(r.passages) for r in report.shard_reports)
    typer.echo(
        f"built cluster {report.path}: {report.documents} documents, {report.passages} passages in"
        f" {report.shards} shards ({sizes}) in {report.seconds:.1f}s"
    )


@app.command()
def sync(
    folder: Annotated[Path, typer.Argument(help="The folder to keep the index in step with.")],
    index_dir: IndexDir = None,
    collection: CollectionName = None,
    model: Model = None,
    as_json: AsJson = False,
) -> None:
    """Bring the index in step with a folder: files added, changed (by content), moved and deleted since
    the last sync are added, indexed again and removed; a moved file keeps its id. Each change is
    durable as it is written. A running server holds the index: use `zhsearch serve --watch DIR` then."""
    from index import build_empty, get_settings, has_index, load_model, open_index, sync_folder

    settings = get_settings()
    target = index_folder(index_dir, collection) or settings.index_dir
    if not folder.is_dir():
        raise fail(ZhsearchError(f"{folder}: no such folder"))
    try:
        embedder = load_model(settings, model=model)
        if not has_index(target):
            build_empty(target, embedder)
        index = open_index(target, embedder, writable=True)
        try:
            report = sync_folder(index, folder, progress=Bars(not as_json))
        finally:
            index.close()
    except ZhsearchError as exc:
        raise fail(exc) from exc
    if as_json:
        emit_json(report.as_dict())
        return
    for skipped in report.skipped:
        typer.secho(f"not read: {skipped.reason}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"synced {report.summary()}")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Question or keywords, in any Chinese script.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Number of passages.", min=1, max=100)] = 5,
    mode: Annotated[str, typer.Option(help="dense, lexical or hybrid.")] = "hybrid",
    index_dir: IndexDir = None,
    collection: CollectionName = None,
    model: Model = None,
    no_server: NoServer = False,
    as_json: AsJson = False,
) -> None:
    """Search the index and print ranked passages (through a server running on this index, when there is one)."""
    payload = _from_server(index_dir, collection, no_server, "/search", {"query": query, "k": k, "mode": mode})
    if payload is None:
        try:
            searcher = open_searcher(index_folder(index_dir, collection), model, answers=False)
            result = searcher.search(query, k, mode)  # type: ignore[arg-type]
        except ZhsearchError as exc:
            raise fail(exc) from exc
        payload = {
            "query": result.query,
            "mode": result.mode,
            "results": [hit.as_dict() for hit in result.hits],
            "took_ms": result.took_ms,
        }
    if as_json or not sys.stdout.isatty():
        emit_json(payload)
        return
    for hit in payload["results"]:
        where = f"{hit['doc_id']}:{hit['start']}-{hit['end']}"
        typer.secho(
            f"{hit['rank']}. [{hit['score']:.3f}] {hit['title']} › {hit['section'] or '—'}  ({where})", bold=True
        )
        typer.echo(f"   {hit['text']}\n")
    typer.echo(f"({len(payload['results'])} results in {payload['took_ms']:.0f} ms)")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="A question, in any Chinese script.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Evidence passages.", min=1, max=100)] = 5,
    index_dir: IndexDir = None,
    collection: CollectionName = None,
    model: Model = None,
    no_server: NoServer = False,
    as_json: AsJson = False,
) -> None:
    """Answer a question from the documents (the answer, its sentence and score), and show the evidence
    (through a server running on this index, when there is one)."""
    payload = _from_server(index_dir, collection, no_server, "/ask", {"question": question, "k": k})
    if payload is None:
        from index import ask as ask_question

        try:
            result = ask_question(open_searcher(index_folder(index_dir, collection), model), question, k)
        except ZhsearchError as exc:
            raise fail(exc) from exc
        payload = {
            "question": result.question,
            "answer": result.answer.__dict__ if result.answer else None,
            "passages": [hit.as_dict() for hit in result.hits],
            "took_ms": result.took_ms,
        }
    else:
        wanted = ("question", "answer", "passages", "took_ms", "server")
        payload = {key: payload[key] for key in wanted if key in payload}
    if as_json or not sys.stdout.isatty():
        emit_json(payload)
        return
    answer = payload["answer"]
    if answer is None:
        typer.secho("沒有找到可信的答案 (no confident answer).", fg=typer.colors.YELLOW)
    else:
        typer.secho(f"答案: {answer['text']}", bold=True)
        if answer.get("sentence") and answer["sentence"] != answer["text"]:
            typer.echo(f"      「{answer['sentence']}」")
        typer.echo(f"      ({answer['doc_id']}:{answer['start']}-{answer['end']}, score {answer['score']:.2f})")
    typer.echo("\n證據 (evidence):")
    for hit in payload["passages"]:
        typer.echo(f"  {hit['rank']}. [{hit['score']:.3f}] {hit['section'] or hit['title']}")
        typer.echo(f"     {hit['text'][:120]}{'…' if len(hit['text']) > 120 else ''}")


def _from_server(
    index_dir: Path | None, collection: str | None, no_server: bool, path: str, body: dict[str, Any]
) -> dict[str, Any] | None:
    """The answer of a server running on this index (``service.local_server``), or None: open the index here.
    (The server searches with the index's own model, as the index here would.)"""
    from index import get_settings

    from ..local_server import ServerError, call, find

    if no_server:
        return None
    home = index_dir or get_settings().index_dir
    url = find(home)
    if url is None:
        return None
    try:
        answer = call(url, path, body, collection)
    except ServerError as exc:
        raise fail(ZhsearchError(str(exc))) from exc
    return None if answer is None else {**answer, "server": url}
