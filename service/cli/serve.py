"""``zhsearch serve`` (HTTP) and ``zhsearch mcp`` (stdio)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from index import ServedIndex, get_settings, open_configured, serve_queries_single_threaded

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
) -> None:
    """Serve the HTTP API (default 127.0.0.1:8000); with --ray, as a Ray Serve application over the shards."""
    import uvicorn

    from ..app import create_app

    base = get_settings()
    updates: dict[str, Any] = {}
    if index_dir:
        updates["index_dir"] = index_dir
    if model:
        updates["model"] = model
    if host:
        updates["host"] = host  # /mcp checks Host headers against the bind address
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
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level="info",
        access_log=False,
    )


def _log_to_stderr() -> None:
    """zhsearch's own lines (loading, ready time, access log, errors) on stderr, beside uvicorn's."""
    import logging

    logger = logging.getLogger("zhsearch")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@app.command("mcp")
def mcp_stdio(
    index_dir: IndexDir = None,
    model: Model = None,
) -> None:
    """Serve MCP over stdio (for desktop chat clients): tools search and ask, documents as resources."""
    import logging
    import threading

    from ..mcp_server import create_mcp, run_stdio

    # stdout carries the protocol only: logs go to stderr.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("zhsearch.mcp")
    settings = get_settings()
    target = index_dir or settings.index_dir
    lock = threading.Lock()
    loaded: list[ServedIndex] = []

    def searcher() -> ServedIndex:
        # Opened on first use, so the client's initialize is answered at once; read-only, following
        # what a server on the same folder writes.
        with lock:
            if not loaded:
                log.info("loading the index from %s", target)
                # no micro-batcher here: the model keeps its threads, FAISS runs without an OpenMP team
                serve_queries_single_threaded()
                loaded.append(open_configured(settings, index_dir=target, model=model))
                log.info("index loaded: %s passages", loaded[0].health()["passages"])
            return loaded[0]

    run_stdio(create_mcp(searcher))
