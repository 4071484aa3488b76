"""Search cost of per-document access, as a keyed caller gets it: no filter, 1% and 50% admitted.

A 100,000-document index (``--size``) is built like ``benchmarks/scale.py``'s: the model-free
``hashing-384`` embedder, one ~90-character passage per document, so what is timed is the
index, not the model. Every document is written with ``access`` groups (stored as
``metadata.access``, as ``POST /v1/documents`` stores them): one of 100 fine groups
``g0``..``g99`` (1% each) and one of two halves ``h0``/``h1`` (50% each).

The server (``zhsearch serve`` on 127.0.0.1, a keys file from ``service.keys.add_key``) is
searched with ``POST /v1/search`` by four keys, all with read on the default collection:

- ``all``: groups ``["*"]``, every document (no access filter: the baseline);
- ``one-pct``: groups ``["g7"]``, 1% of the documents;
- ``half``: groups ``["h0"]``, 50%;
- ``half-50-groups``: groups ``g0``..``g49``, 50% again, as the union of 50 groups.

Searches go round-robin over the keys (query by query), so load from elsewhere on the machine
falls on every series alike. The first search of each filtered key, which builds the snapshot's
admitted set (``Snapshot.admitted`` keeps it for later searches), is reported on its own.
Issue target: each filtered p50 at most 1.5x the unfiltered one.

    .venv/bin/python benchmarks/access.py [--size 100000] [--searches 200] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from scale import MODEL, Server, memory_mb, pct, pool  # noqa: E402

from index import Document, build_index  # noqa: E402
from index.models.hashing import HashingEmbedder  # noqa: E402
from index.storage.record import folder  # noqa: E402
from service.keys import add_key  # noqa: E402

FINE = 100  # groups g0..g99: one admits 1%
TARGET = 1.5
OUT = ROOT / "benchmarks" / "out" / "access.json"
#: key name -> (groups, share of the documents it reads)
KEYS: dict[str, tuple[list[str], float]] = {
    "all": (["*"], 1.0),
    "one-pct": (["g7"], 0.01),
    "half": (["h0"], 0.5),
    "half-50-groups": ([f"g{n}" for n in range(50)], 0.5),
}


def document(i: int, sentences: list[str], rng: random.Random) -> Document:
    body = "".join(rng.sample(sentences, 2))[:80]
    return Document(
        f"s{i}",
        f"檔案編號{i}號：{body}",
        title=f"文件{i % 997}",
        metadata={"access": [f"g{i % FINE}", f"h{i % 2}"]},
    )


def readable(doc_id: str, key: str) -> bool:
    """Whether the key ``key`` may read document ``doc_id`` (to check what the server returned)."""
    i = int(doc_id[1:])
    groups = KEYS[key][0]
    return groups == ["*"] or f"g{i % FINE}" in groups or f"h{i % 2}" in groups


def build(size: int, index_dir: Path) -> tuple[int, float | None]:
    if folder.current(index_dir) is not None:
        print(f"[access] reusing {index_dir}", file=sys.stderr, flush=True)
        return size, None
    print(f"[access] building {size} documents with {MODEL} vectors…", file=sys.stderr, flush=True)
    rng = random.Random(size)
    sentences = pool()
    docs = [document(i, sentences, rng) for i in range(size)]
    began = time.perf_counter()
    passages = build_index(docs, index_dir, HashingEmbedder(384)).passages
    return passages, time.perf_counter() - began


def measure(size: int, searches: int, work: Path) -> dict[str, Any]:
    index_dir = work / f"access-index-{size}"
    passages, build_s = build(size, index_dir)
    keys_file = work / "keys.json"
    keys_file.unlink(missing_ok=True)
    secrets = {
        name: add_key(keys_file, name, groups=groups, collections={"default": "read"})
        for name, (groups, _) in KEYS.items()
    }
    env = {
        **os.environ,
        "ZHSEARCH_MODEL": MODEL,
        "ZHSEARCH_INDEX_DIR": str(index_dir),
        "ZHSEARCH_KEYS_FILE": str(keys_file),
        "ZHSEARCH_ENCODE_WORKERS": "1",
    }
    client_ms: dict[str, list[float]] = {name: [] for name in KEYS}
    server_ms: dict[str, list[float]] = {name: [] for name in KEYS}
    first_ms: dict[str, float] = {}
    (work / "access-server.log").unlink(missing_ok=True)
    with Server(env, work / "access-server.log", timeout=600) as server:
        ready_s = server.ready_s
        rng = random.Random(7)
        sentences = pool()
        queries = [rng.choice(sentences)[:12] for _ in range(searches)]
        with httpx.Client(base_url=server.base, timeout=600) as client:

            def search(name: str, query: str) -> tuple[float, float]:
                began = time.perf_counter()
                response = client.post(
                    "/v1/search",
                    json={"query": query, "k": 10},
                    headers={"Authorization": f"Bearer {secrets[name]}"},
                )
                took = (time.perf_counter() - began) * 1000
                response.raise_for_status()
                body = response.json()
                hits = body["results"]
                wrong = [hit["doc_id"] for hit in hits if not readable(hit["doc_id"], name)]
                if wrong or len(hits) != 10:
                    raise RuntimeError(f"key {name}: {len(hits)} hits, unreadable ones: {wrong[:5]}")
                return took, float(body["took_ms"])

            print("[access] searching…", file=sys.stderr, flush=True)
            for query in queries[:5]:  # warm-up, unfiltered
                search("all", query)
            for name in KEYS:  # each filter's first search builds its admitted set
                first_ms[name] = search(name, queries[0])[0]
            for query in queries:
                for name in KEYS:
                    took, inside = search(name, query)
                    client_ms[name].append(took)
                    server_ms[name].append(inside)
        memory = memory_mb(server.process.pid)
    p50 = {name: statistics.median(values) for name, values in client_ms.items()}
    took_p50 = {name: statistics.median(values) for name, values in server_ms.items()}
    return {
        "size": size,
        "passages": passages,
        "build_s": build_s,
        "ready_s": ready_s,
        "searches_per_key": searches,
        "rss_end_mb": memory["VmRSS"],
        "hwm_mb": memory["VmHWM"],
        "keys": {
            name: {
                "groups": ", ".join(groups)
                if len(groups) <= 3
                else f"{groups[0]}..{groups[-1]} ({len(groups)} groups)",
                "admits": share,
                "p50_ms": p50[name],
                "p95_ms": pct(client_ms[name], 0.95),
                "server_took_p50_ms": took_p50[name],
                "first_ms": first_ms[name],
                "p50_ratio": p50[name] / p50["all"],
                "server_took_ratio": took_p50[name] / took_p50["all"],
            }
            for name, (groups, share) in KEYS.items()
        },
    }


def report(facts: dict[str, Any]) -> list[str]:
    keys: dict[str, dict[str, Any]] = facts["keys"]
    lines = [
        f"`benchmarks/access.py --size {facts['size']}` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}. {facts['passages']:,} documents of one "
        f"~90-character passage each, `{MODEL}` vectors, every document with `access` groups. Searched over "
        "HTTP on 127.0.0.1 (`POST /v1/search`, hybrid, k=10) by API keys from a keys file (`ZHSEARCH_KEYS_FILE`, "
        f"`service.keys.add_key`) whose groups admit the share shown; {facts['searches_per_key']} searches per "
        "key, the keys taken in turn query by query. `took_ms`: the server's own time in the response. First: "
        "the key's first search, which builds the admitted set.",
        "",
        "| key | groups | admits | p50 ms | p95 ms | p50 / no filter | took_ms p50 | took / no filter | first ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in keys.items():
        lines.append(
            f"| {name} | {row['groups']} | {float(row['admits']):.0%} | {float(row['p50_ms']):.1f} | "
            f"{float(row['p95_ms']):.1f} | {float(row['p50_ratio']):.2f} | "
            f"{float(row['server_took_p50_ms']):.1f} | {float(row['server_took_ratio']):.2f} | "
            f"{float(row['first_ms']):.1f} |"
        )
    worst = max(float(row["p50_ratio"]) for name, row in keys.items() if name != "all")
    inside = max(float(row["server_took_ratio"]) for name, row in keys.items() if name != "all")
    lines += [
        "",
        f"Worst filtered p50 / unfiltered p50 over HTTP: {worst:.2f} (target: at most {TARGET}): "
        f"{'met' if worst <= TARGET else 'NOT met'}; of the server's own time (`took_ms`): {inside:.2f}, "
        f"{'met' if inside <= TARGET else 'NOT met'}. Server ready in {float(facts['ready_s']):.1f} s; "
        f"RSS at the end {float(facts['rss_end_mb']):.0f} MB, peak {float(facts['hwm_mb']):.0f} MB.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="documents (one passage each)")
    parser.add_argument("--searches", type=int, default=200, help="searches per key")
    parser.add_argument("--keep", type=Path, help="build the index here and reuse it (default: a temporary folder)")
    parser.add_argument("--json", type=Path, default=OUT, help=f"where the numbers go (default: {OUT})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zhsearch-access-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        facts = measure(args.size, args.searches, work)
    print("\n".join(report(facts)))
    text = json.dumps(facts, indent=2)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text + "\n", encoding="utf-8")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
