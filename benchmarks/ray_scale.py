"""Scale-out on Ray, measured on this machine: build throughput, search latency, searches/s, shard memory.

Every Ray process binds and advertises 127.0.0.1 only (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``);
each cluster is a ``ray.cluster_utils.Cluster`` on this one machine, stopped before the next.

- **Build**: ``build --ray --shards 3`` of the shipped corpus (seed report + Debian FAQ) on
  1 node x 2 CPUs, then on 2 nodes x 1 CPU (the same cores: the ratio is what Ray's
  distribution costs), beside the single-node ``build`` on the same 2 cores.
- **Search**: p50 over HTTP of every shipped query, one at a time, through Serve's proxy,
  the router and 3 shards, against ``zhsearch serve`` of the same documents.
- **Searches/s**: 8 clients for a fixed time, with 1 and with 2 replicas per shard.
- **Memory**: each shard replica's RSS beside the passages it holds.

    python benchmarks/ray_scale.py                 # the default model; writes the "Scale-out on Ray" section
    python benchmarks/ray_scale.py --model hashing # model-free, for a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray is imported
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import httpx  # noqa: E402
import ray  # noqa: E402
from ray import serve  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from scale import memory_mb, pct, write_section  # noqa: E402

from index import Settings, build_index, get_settings, load_configured_embedder, load_paths  # noqa: E402
from index.cluster.ray_build import ModelSpec, build_on_ray  # noqa: E402
from tests.server import free_port, serving  # noqa: E402

MARKER = "## Scale-out on Ray"
SHARDS = 3
CORPUS = [ROOT / "seeds", ROOT / "seeds" / "eval" / "debian-faq" / "corpus.jsonl"]
QUERIES = [ROOT / "seeds" / "eval" / "queries.jsonl", ROOT / "seeds" / "eval" / "debian-faq" / "queries.jsonl"]
STORE = 300 * 1024 * 1024


def queries() -> list[str]:
    found = []
    for path in QUERIES:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            found.append(row.get("text") or row["query"])
    return found


def start(nodes: list[int]) -> Cluster:
    """A local cluster: a head node (``nodes[0]`` CPUs, where the proxy and router live) and added nodes."""
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": nodes[0],
            "resources": {"head": 1},
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
            "object_store_memory": STORE,
        },
    )
    for cpus in nodes[1:]:
        cluster.add_node(num_cpus=cpus, node_ip_address="127.0.0.1", object_store_memory=STORE)
    ray.init(address=cluster.address, log_to_driver=False)
    return cluster


def stop(cluster: Cluster) -> None:
    try:
        serve.shutdown()
    finally:
        ray.shutdown()
        cluster.shutdown()


def build(nodes: list[int], spec: ModelSpec, docs: list[Any], out: Path) -> dict[str, float]:
    """Seconds of a Ray build on ``nodes``, and of its embedding stage (the actors' model loads included)."""
    marks: dict[str, float] = {}

    def heard(stage: str, done: int, total: int) -> None:
        marks.setdefault(f"{stage}-{'end' if done >= total else 'start'}", time.perf_counter())

    cluster = start(nodes)
    try:
        began = time.perf_counter()
        report = build_on_ray(docs, out, spec, SHARDS, concurrency=sum(nodes), progress=heard)
        total = time.perf_counter() - began
    finally:
        stop(cluster)
    stages = {stage: marks[f"{stage}-end"] - marks[f"{stage}-start"] for stage in ("prepare", "embed", "shards")}
    return {
        "seconds": total,
        "embed_seconds": stages["embed"],
        "prepare_seconds": stages["prepare"],
        # the corpus statistics between embedding and the shard writes count with the writes
        "write_seconds": marks["shards-end"] - marks["embed-end"],
        "other_seconds": total - (marks["shards-end"] - marks["prepare-start"]),
        "passages": report.passages,
    }


def latencies(base: str, texts: list[str]) -> list[float]:
    found = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for text in texts[:5]:  # warm-up
            client.post("/v1/search", json={"query": text, "k": 10})
        for text in texts:
            began = time.perf_counter()
            response = client.post("/v1/search", json={"query": text, "k": 10})
            found.append((time.perf_counter() - began) * 1000)
            response.raise_for_status()
    return found


def hop(base: str, n: int = 100) -> list[float]:
    """Round trips of ``GET /healthz``: the HTTP path with no index work."""
    found = []
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(n):
            began = time.perf_counter()
            client.get("/healthz").raise_for_status()
            found.append((time.perf_counter() - began) * 1000)
    return found


def shard_call(texts: list[str], model: str) -> tuple[list[float], list[float]]:
    """Per query: the router model's encode in this process, and one shard's candidates call through its
    Serve handle (what the router does once per shard, in parallel)."""
    from index import normalize

    embedder = load_configured_embedder(get_settings().model_copy(update={"model": model}), threads=1)
    handle = serve.get_deployment_handle("shard-000", app_name="zhsearch")
    encode, call = [], []
    for text in texts:
        norm = normalize(text)
        began = time.perf_counter()
        vector = embedder.encode_queries([norm])
        encode.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        handle.call.remote("candidates", (norm, vector, 25, "hybrid", None)).result()
        call.append((time.perf_counter() - began) * 1000)
    return encode, call


def rate(base: str, texts: list[str], clients: int = 8, seconds: float = 15.0) -> float:
    """Searches per second answered 200 by ``clients`` threads asking without pause for ``seconds``."""
    done = [0] * clients
    stop_at = time.monotonic() + seconds

    def work(n: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            i = n
            while time.monotonic() < stop_at:
                if client.post("/v1/search", json={"query": texts[i % len(texts)], "k": 10}).status_code == 200:
                    done[n] += 1
                i += clients

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def shard_memory() -> list[tuple[str, float, int]]:
    """Each shard replica's RSS in MB and its passages (one replica per shard: each answers for itself)."""
    found = []
    for shard in range(SHARDS):
        handle = serve.get_deployment_handle(f"shard-{shard:03d}", app_name="zhsearch")
        health = handle.call.remote("health", ()).result()
        found.append((f"shard-{shard:03d}", memory_mb(int(health["pid"]))["VmRSS"], int(health["passages"])))
    return found


def serve_cluster(index_dir: Path, model: str, replicas: int, port: int) -> str:
    from service import ray_app

    settings = Settings(model=model, index_dir=index_dir)
    ray_app.run(index_dir, settings, port=port, replicas=replicas, blocking=False, router_resources={"head": 0.01})
    return f"http://127.0.0.1:{port}"


def measure(model: str, work: Path) -> dict[str, Any]:
    settings = get_settings().model_copy(update={"model": model})
    spec = ModelSpec.of(settings)
    docs = load_paths(CORPUS)
    texts = queries()
    results: dict[str, Any] = {"documents": len(docs)}

    began = time.perf_counter()
    build_index(docs, work / "single", load_configured_embedder(settings))
    results["single_build_seconds"] = time.perf_counter() - began
    print(f"single-node build: {results['single_build_seconds']:.1f} s", file=sys.stderr, flush=True)
    results["one_node"] = build([2], spec, docs, work / "one-node")
    print(f"1 node x 2 CPUs: {results['one_node']}", file=sys.stderr, flush=True)
    results["two_nodes"] = build([1, 1], spec, docs, work / "two-nodes")
    print(f"2 nodes x 1 CPU: {results['two_nodes']}", file=sys.stderr, flush=True)

    env = {"ZHSEARCH_MODEL": model}
    with serving(work / "single", work / "single.log", **env) as base:
        results["single_search"] = latencies(base, texts)
        results["single_hop"] = hop(base)
        results["single_rate"] = rate(base, texts)
    print(f"single node: p50 {statistics.median(results['single_search']):.1f} ms", file=sys.stderr, flush=True)

    cluster = start([1, 1])
    try:
        for replicas in (1, 2):
            base = serve_cluster(work / "two-nodes", model, replicas, free_port())
            if replicas == 1:
                results["cluster_search"] = latencies(base, texts)
                results["cluster_hop"] = hop(base)
                results["encode"], results["shard_call"] = shard_call(texts, model)
                results["shard_memory"] = shard_memory()
            results[f"cluster_rate_{replicas}"] = rate(base, texts)
            print(f"{replicas} replica(s): {results[f'cluster_rate_{replicas}']:.1f}/s", file=sys.stderr, flush=True)
            serve.delete("zhsearch")
            serve.shutdown()
    finally:
        stop(cluster)
    return results


def section(model: str, r: dict[str, Any]) -> list[str]:
    one, two = r["one_node"], r["two_nodes"]
    passages = one["passages"]
    single_p50, cluster_p50 = statistics.median(r["single_search"]), statistics.median(r["cluster_search"])
    memory = ", ".join(f"{name} {mb:.0f} MB ({n} passages)" for name, mb, n in r["shard_memory"])
    single = r["single_build_seconds"]
    return [
        MARKER,
        "",
        f"`benchmarks/ray_scale.py --model {model}` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, Ray {ray.__version__}. The shipped corpus "
        f"(seed report + Debian FAQ: {r['documents']} documents, {passages} passages) in {SHARDS} shards; every "
        "node is a `ray.cluster_utils.Cluster` node on this one machine, on 127.0.0.1.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| single-node `zhsearch build` | {single:.1f} s ({passages / single:.1f} passages/s) |",
        f"| `build --ray`, 1 node x 2 CPUs | {one['seconds']:.1f} s ({passages / one['seconds']:.1f} passages/s); "
        f"embedding stage {one['embed_seconds']:.1f} s |",
        f"| `build --ray`, 2 nodes x 1 CPU | {two['seconds']:.1f} s ({passages / two['seconds']:.1f} passages/s); "
        f"embedding stage {two['embed_seconds']:.1f} s |",
        f"| efficiency, 2 x 1 over 1 x 2 (target >= 0.85) | {one['seconds'] / two['seconds']:.2f} whole build; "
        f"{one['embed_seconds'] / two['embed_seconds']:.2f} embedding stage |",
        f"| Ray build over the single-node build, throughput (target >= 0.9) | {single / one['seconds']:.2f} on 1 x 2, "
        f"{single / two['seconds']:.2f} on 2 x 1 |",
        *(
            f"| … stages of the build on {label}: prepare (clean, chunk, count tokens), embed (actors' model loads "
            f"included), statistics and shard writes, the rest (Ray Data's start, the driver) | "
            f"{run['prepare_seconds']:.1f} s, {run['embed_seconds']:.1f} s, {run['write_seconds']:.1f} s, "
            f"{run['other_seconds']:.1f} s |"
            for label, run in (("1 x 2", one), ("2 x 1", two))
        ),
        f"| search p50 / p99, single node (`zhsearch serve`) | {single_p50:.1f} / {pct(r['single_search'], 0.99):.1f}"
        " ms |",
        f"| search p50 / p99, router + {SHARDS} shards (Ray Serve) | {cluster_p50:.1f} / "
        f"{pct(r['cluster_search'], 0.99):.1f} ms |",
        f"| router over single node, p50 (target <= 1.3) | {cluster_p50 / single_p50:.2f} |",
        f"| where a routed search goes, p50: `GET /healthz` through Serve's proxy and the router | "
        f"{statistics.median(r['cluster_hop']):.1f} ms (uvicorn: {statistics.median(r['single_hop']):.1f} ms) |",
        f"| … the query's encode (once, in the router) | {statistics.median(r['encode']):.1f} ms |",
        f"| … one shard's candidates (and rows) through its Serve handle, from the driver | "
        f"{statistics.median(r['shard_call']):.1f} ms |",
        f"| searches/s, 8 clients: single node | {r['single_rate']:.1f} |",
        f"| searches/s, 8 clients: 1 replica per shard | {r['cluster_rate_1']:.1f} |",
        f"| searches/s, 8 clients: 2 replicas per shard | {r['cluster_rate_2']:.1f} |",
        f"| shard replica RSS | {memory} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=get_settings().model, help="the default model, or hashing")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zhsearch-ray-") as tmp:
        results = measure(args.model, Path(tmp))
    lines = section(args.model, results)
    write_section(lines, args.out, MARKER)
    print("\n".join(lines))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
