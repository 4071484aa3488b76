"""``zhsearch serve`` (HTTP) and ``zhsearch mcp`` (stdio)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from index import ZhsearchError

if TYPE_CHECKING:
    from index import CollectionInfo, ServedIndex

from .app import IndexDir, Model, app


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(envvar="ZHSEARCH_HOST", help="Bind address.", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(envvar="ZHSEARCH_PORT", help="Port.", show_default=False)] = None,
    index_dir: IndexDir = None,
    model: Model = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="Serve a cluster index on Ray Serve (built with build --ray --shards N).")
    ] = False,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (default: start a local Ray on 127.0.0.1).")
    ] = None,
    replicas: Annotated[int, typer.Option(min=1, max=64, help="Replicas of each shard (--ray).")] = 1,
    watch: Annotated[
        list[Path] | None,
        typer.Option(
            "--watch",
            help="Keep the index in step with this folder (added, changed, moved, deleted files); repeatable.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (default 127.0.0.1:8000); with --ray, as a Ray Serve application over the shards."""
    import uvicorn

    from index import get_settings

    from ..app import create_app

    base = get_settings()
    if index_dir:
        base = base.with_index_dir(index_dir)
    updates: dict[str, Any] = {}
    if model:
        updates["model"] = model
    if host:
        updates["host"] = host  # /mcp checks Host headers against the bind address
    if watch:
        updates["watch"] = list(watch)
    settings = base.model_copy(update=updates)
    _log_to_stderr()
    if ray:
        try:
            from .. import ray_app
        except ImportError as exc:
            raise typer.BadParameter(f"--ray needs Ray: pip install 'zhsearch[ray]' ({exc})") from exc
        ray_app.run(
            settings.index_dir,
            settings,
            address=address,
            host=host or settings.host,
            port=port or settings.port,
            replicas=replicas,
        )
        return
    # our access log (with request ids, from the middleware) replaces uvicorn's
    uvicorn.run(
        create_app(settings, advertise_port=port or settings.port),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
        access_log=False,
    )


def _log_to_stderr() -> None:
    """zhsearch's own lines (loading, ready time, access log, errors) on stderr, beside uvicorn's."""

    logger = logging.getLogger("zhsearch")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


class ReadOnlyCollections:
    """The collections of a server's folders, each opened read-only on first use with one model
    (``zhsearch mcp``): following what a server on the same folders writes."""

    def __init__(self, default_dir: Path, model: str | None) -> None:
        import threading

        from index import get_settings

        self.settings = get_settings().with_index_dir(default_dir)
        self.default_dir = default_dir
        self.model = model
        self._lock = threading.Lock()
        self._open: dict[str, ServedIndex] = {}

    def _folder(self, name: str) -> Path:
        from index import DEFAULT_COLLECTION, NotFoundError, collection_dir, has_index

        if name == DEFAULT_COLLECTION:
            return self.default_dir
        try:
            path = collection_dir(self.settings.collections_dir, name)
        except ZhsearchError:
            path = None
        if path is None or not has_index(path):
            raise NotFoundError(f"no collection named {name[:80]!r}")
        return path

    def index(self, name: str) -> ServedIndex:
        from index import open_configured, serve_queries_single_threaded

        with self._lock:
            found = self._open.get(name)
            if found is None:
                path = self._folder(name)
                log = logging.getLogger("zhsearch.mcp")
                log.info("loading collection %s from %s", name, path)
                if not self._open:  # the model keeps its threads, FAISS runs without an OpenMP team
                    serve_queries_single_threaded()
                first = next(iter(self._open.values()), None)
                found = open_configured(
                    self.settings, index_dir=path, model=self.model, embedder=first.embedder if first else None
                )
                self._open[name] = found
                log.info("collection %s loaded: %s passages", name, found.health()["passages"])
            return found

    @contextmanager
    def using(self, name: str) -> Iterator[ServedIndex]:
        yield self.index(name)

    def infos(self) -> list[CollectionInfo]:
        from index import DEFAULT_COLLECTION, CollectionInfo, collection_folders, has_index

        default = CollectionInfo(name=DEFAULT_COLLECTION, description="", created="", path=self.default_dir)
        return [default, *(c for c in collection_folders(self.settings.collections_dir) if has_index(c.path))]


@app.command("mcp")
def mcp_stdio(
    index_dir: IndexDir = None,
    model: Model = None,
) -> None:
    """Serve MCP over stdio (for desktop chat clients): tools search and ask (on any collection), the
    collections and their documents as resources. Collections open read-only on first use."""
    from index import get_settings

    from ..mcp_server import create_mcp, run_stdio

    # stdout carries the protocol only: logs go to stderr.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    library = ReadOnlyCollections(index_dir or get_settings().index_dir, model)
    run_stdio(create_mcp(lambda: library))
