"""``zhsearch serve --ray``: the HTTP API as a Ray Serve application over a cluster index.

Two kinds of deployment:

- ``Shard`` (one per shard, ``replicas`` each, at most one per node): a
  ``ShardReplica`` of the shard's folder, answering the router's calls (candidates,
  rows, evidence, documents, writes).
- ``Router`` (the ingress): the same FastAPI app as ``zhsearch serve``
  (``create_app``), over a ``ClusterIndex`` whose shards are the deployments'
  handles. It normalizes and encodes each query once (micro-batched), asks every
  shard at once and merges.

A shard call that fails (its replicas died, a node is gone) or takes longer than
``ZHSEARCH_SHARD_TIMEOUT_S`` makes the request a 503 that says how many shards
answered; an error the shard raised on purpose (404, 409, 422) passes through.
Ray is imported only inside this module's functions and ``index.cluster.ray_build``'s.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from index import (
    LOOPBACK_ENV,
    ClusterManifest,
    Embedder,
    LazyEmbedder,
    ModelSpec,
    ServedIndex,
    Settings,
    ShardReplica,
    ShardsUnavailableError,
    Tuning,
    ZhsearchError,
    connect_ray,
    loopback,
    open_configured,
    shard_dir,
)

if TYPE_CHECKING:
    from ray.serve.handle import DeploymentHandle

APP_NAME = "zhsearch"
#: Shard methods that change it (never sent twice).
WRITES = frozenset({"put_many", "delete", "restore"})


class Shard:
    """One replica of one shard (a Serve deployment, one per shard)."""

    def __init__(self, folder: str, shard: int, model: LazyEmbedder, tuning: Tuning) -> None:
        # the model's max_tokens is read-only here: a replica never changes it
        self.replica = ShardReplica(Path(folder), cast(Embedder, model), shard, tuning)

    def call(self, method: str, args: tuple[Any, ...]) -> Any:
        return getattr(self.replica, method)(*args)

    def check_health(self) -> None:
        self.replica.fresh()


class HandleShards:
    """The router's way to its shards: Serve handles, called at once, waited for together."""

    #: Tries of a read whose replica died (Serve routes each to a live replica, if the shard has one).
    READ_TRIES = 4

    def __init__(self, handles: list[DeploymentHandle[Any]], timeout_s: float) -> None:
        self.handles = handles
        self.count = len(handles)
        self.timeout_s = timeout_s

    def call(self, calls: Mapping[int, tuple[str, tuple[Any, ...]]]) -> dict[int, Any]:
        from ray.exceptions import RayError, RayTaskError

        pending = {shard: self.handles[shard].call.remote(method, args) for shard, (method, args) in calls.items()}
        deadline = time.monotonic() + self.timeout_s
        results: dict[int, Any] = {}
        failed: dict[int, str] = {}
        raised: dict[int, ZhsearchError] = {}  # raised once every call has ended (a batch undoes its writes)
        for shard, response in pending.items():
            method, args = calls[shard]
            for attempt in range(1 if method in WRITES else self.READ_TRIES):
                if attempt:
                    # A read whose replica died is sent again; a write is not, since it may have been
                    # applied: its client gets the 503 and may send it again.
                    time.sleep(0.1 * 2**attempt)
                    response = self.handles[shard].call.remote(method, args)
                try:
                    results[shard] = response.result(timeout_s=max(0.05, deadline - time.monotonic()))
                    failed.pop(shard, None)
                    break
                except RayTaskError as exc:  # the shard raised: a 404 or 409 of its own passes through
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, ZhsearchError):
                        raised[shard] = cause
                    else:
                        failed[shard] = type(cause or exc).__name__
                    break
                except (RayError, TimeoutError) as exc:
                    response.cancel()  # type: ignore[no-untyped-call]
                    failed[shard] = type(exc).__name__
                    if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
                        break
        if raised:
            raise raised[min(raised)] from None
        if failed:
            answered = len(calls) - len(failed)
            which = ", ".join(f"{shard} ({why})" for shard, why in sorted(failed.items()))
            raise ShardsUnavailableError(
                f"{answered} of {len(calls)} shards answered; shard {which} did not. A ranking without them would"
                " be partial, so none is given: retry once the shard is back",
                answered=answered,
                total=len(calls),
            )
        return results


class Router:
    """The ingress: zhsearch's HTTP API over the shards (``__serve_build_asgi_app__`` builds it)."""

    def __init__(
        self, index_dir: str, settings: dict[str, Any], explicit: list[str], *shards: DeploymentHandle[Any]
    ) -> None:
        # The deploying process's settings, whatever this worker's environment says, and which of them were
        # set there: a backend left at its default stays a default (``load_configured_embedder``).
        self.settings = Settings(**settings)
        self.settings.__pydantic_fields_set__ = set(explicit)
        handles = HandleShards(list(shards), self.settings.shard_timeout_s)
        self.index: ServedIndex = open_configured(
            self.settings, index_dir=Path(index_dir), writable=True, serving=True, shards=handles
        )

    def __serve_build_asgi_app__(self) -> Any:
        from .app import create_app

        return create_app(self.settings, index=self.index)


def application(
    index_dir: Path,
    settings: Settings,
    *,
    replicas: int = 1,
    shard_cpus: float = 0.0,
    router_cpus: float = 0.0,
    router_resources: dict[str, float] | None = None,
) -> Any:
    """The Serve application: a ``Shard`` deployment per shard of ``index_dir``, and the ``Router``.

    ``router_resources``: custom Ray resources the router needs (to keep it on the head node, say).
    """
    loopback()
    from ray import serve

    manifest = ClusterManifest.read(index_dir)
    spec = ModelSpec.of(settings)
    # the configured model's identity, which each shard's manifest is checked against; its weights
    # load in a replica on its first write
    model = LazyEmbedder(spec, spec.info())
    tuning = Tuning.of(settings)
    handles = []
    for shard in range(manifest.shards):
        options: dict[str, Any] = {
            "name": f"shard-{shard:03d}",
            "num_replicas": replicas,
            "ray_actor_options": {"num_cpus": shard_cpus, "runtime_env": {"env_vars": LOOPBACK_ENV}},
            "health_check_period_s": 2,
            "health_check_timeout_s": 10,
        }
        if replicas > 1:
            options["max_replicas_per_node"] = 1  # a node's loss leaves every shard a replica
        deployment = serve.deployment(**options)(Shard)
        handles.append(deployment.bind(str(shard_dir(index_dir, shard)), shard, model, tuning))
    actor = {"num_cpus": router_cpus, "runtime_env": {"env_vars": LOOPBACK_ENV}, "resources": router_resources or {}}
    router = serve.deployment(name="router", ray_actor_options=actor)(serve.ingress()(Router))
    return router.bind(str(index_dir), settings.model_dump(mode="json"), sorted(settings.model_fields_set), *handles)


def run(
    index_dir: Path,
    settings: Settings,
    *,
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    replicas: int = 1,
    blocking: bool = True,
    router_resources: dict[str, float] | None = None,
) -> None:
    """Start Serve's HTTP proxy on ``host:port`` (on the head node only) and deploy the application."""
    connect_ray(address)
    from ray import serve

    serve.start(http_options={"host": host, "port": port}, proxy_location="HeadOnly")
    app = application(index_dir, settings, replicas=replicas, router_resources=router_resources)
    if not blocking:
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=False)
        return
    import ray

    # Ctrl-C or SIGTERM: take the application down, and the local Ray this process started with it
    # (on a cluster joined with ``address``, the cluster stays up for its other users).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        serve.run(app, name=APP_NAME, route_prefix="/", blocking=True)
    except KeyboardInterrupt:
        pass
    finally:
        serve.delete(APP_NAME)
        if address is None:
            serve.shutdown()  # type: ignore[no-untyped-call]
            ray.shutdown()
