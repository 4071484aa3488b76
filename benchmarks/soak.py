"""`make soak`: mixed load on a real server that is SIGKILLed and restarted, then an audit.

A fresh copy of the seed index (built with the real model) is served on 127.0.0.1.
``--concurrency`` clients (default 16) send searches, asks, ``PUT``s, ``DELETE``s and
multipart ``.jsonl`` uploads for ``--duration`` seconds (default 600) while the
server is SIGKILLed at random moments (every ``--kill-min``..``--kill-max`` s) and
restarted. Each client owns its own document ids, so it knows every state a
document may be in: one state after an acknowledged write, two after a write whose
answer was lost to a kill. At the end the server is killed and restarted once more
and every document is audited: an acknowledged write that is missing or older is
*lost*; an acknowledged delete whose document is back is *resurrected*; a present
document whose unique marker is not found by a lexical search is *unsearchable*.

Reported: acknowledged writes and deletes, lost, resurrected, unsearchable, every
5xx with its request id (the server log holds the traceback under that id),
connection errors (while the server was down, and otherwise), p50/p99 latency per
route, and the server's RSS per generation. Everything stays on 127.0.0.1; the run
stops by itself after ``--duration``.

    .venv/bin/python benchmarks/soak.py [--duration 600] [--concurrency 16] [--out docs/reliability.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.server import free_port, start, wait_healthy  # noqa: E402

QUESTIONS = [
    "上半年地区生产总值是多少",
    "互联网诊疗服务覆盖到哪里了",
    "舊區改造完成了多少戶",
    "黃浦如何最佳化營商環境",
    "下半年要举办什么活动",
    "外灘金融18條是什麼",
    "社区云覆盖了哪些街道",
    "黄浦",
    "区属国有企业为中小企业减免了多少租金,这些措施对稳定就业和优化营商环境起了什么作用",
]
# Operation mix, by weight.
MIX = {"search": 40, "ask": 15, "put": 25, "delete": 10, "upload": 10}
DOCS_PER_CLIENT = 6
ABSENT = -1  # the "version" of a document that does not exist


def marker(client: int, doc: int, version: int) -> str:
    """A phrase only this version of this document contains, lexically searchable.

    Eight CJK characters drawn at random (seeded by the triple) from the common block:
    their bigrams are unique to the version, so BM25 ranks it first. Spelled-out numbers
    were not enough: markers shared most bigrams, and length normalization let a short
    passage of another document outrank the exact one.
    """
    rng = random.Random(f"{client}/{doc}/{version}")
    return "稽核" + "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(8))


def document_text(client: int, doc: int, version: int, rng: random.Random) -> str:
    body = "黃浦區推進網際網路醫院建設,提升群眾就醫體驗,最佳化營商環境。" * rng.randint(1, 12)
    return f"{marker(client, doc, version)}。{body}"


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Doc:
    id: str
    key: int  # what its markers are made from, unique within its client
    possible: set[int] = field(default_factory=lambda: {ABSENT})  # versions it may be at; ABSENT = deleted
    version: int = 0  # the last version written


class Server:
    """The server process, its restarts, and which generation is up."""

    def __init__(self, index_dir: Path, log: Path, env: dict[str, str]) -> None:
        self.index_dir, self.log, self.env = index_dir, log, env
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.down = threading.Event()
        self.generation = 0
        self.rss: list[tuple[int, float, int]] = []  # generation, seconds since the run began, RSS kB
        self.restarts: list[float] = []

    def rss_began(self, generation: int) -> float:
        return min((t for g, t, _ in self.rss if g == generation), default=0.0)

    def up(self) -> None:
        self.process = start(self.index_dir, self.log, self.port, **self.env)
        wait_healthy(self.base, self.log, timeout=300)
        self.down.clear()

    def kill(self) -> None:
        self.down.set()
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)

    def restart(self) -> float:
        began = time.monotonic()
        self.kill()
        self.generation += 1
        self.up()
        return time.monotonic() - began

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latency: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    errors_5xx: list[dict[str, object]] = field(default_factory=list)
    conn_down: int = 0
    conn_up: int = 0
    acked_writes: int = 0
    acked_deletes: int = 0
    answered: int = 0

    def record(self, route: str, response: httpx.Response, ms: float) -> None:
        with self.lock:
            self.latency[route].append(ms)
            self.statuses[route][response.status_code] += 1
            if response.status_code >= 500:
                self.errors_5xx.append(
                    {
                        "route": route,
                        "status": response.status_code,
                        "request_id": response.headers.get("x-request-id", ""),
                        "body": response.text[:300],
                    }
                )


class Client(threading.Thread):
    def __init__(self, number: int, server: Server, tally: Tally, stop: threading.Event, seed: int) -> None:
        super().__init__(name=f"soak-{number}", daemon=True)
        self.number, self.server, self.tally, self.stop = number, server, tally, stop
        self.rng = random.Random(seed * 1000 + number)
        self.docs = [Doc(f"soak-c{number}-d{j}", j) for j in range(DOCS_PER_CLIENT)]
        self.uploads = [Doc(f"soak-c{number}-u{j}", 100 + j) for j in range(DOCS_PER_CLIENT)]

    def run(self) -> None:
        ops, weights = zip(*MIX.items(), strict=True)
        with httpx.Client(timeout=120) as http:
            while not self.stop.is_set():
                op = self.rng.choices(ops, weights)[0]
                down = self.server.down.is_set()
                try:
                    getattr(self, op)(http)
                except httpx.TransportError:
                    with self.tally.lock:
                        if down or self.server.down.is_set():
                            self.tally.conn_down += 1
                        else:
                            self.tally.conn_up += 1
                    time.sleep(0.5)

    def _send(self, http: httpx.Client, route: str, method: str, path: str, **kwargs: object) -> httpx.Response:
        began = time.perf_counter()
        response = http.request(method, self.server.base + path, **kwargs)  # type: ignore[arg-type]
        self.tally.record(route, response, (time.perf_counter() - began) * 1000)
        return response

    def search(self, http: httpx.Client) -> None:
        body = {
            "query": self.rng.choice(QUESTIONS),
            "k": self.rng.choice([3, 10]),
            "mode": self.rng.choice(["hybrid", "hybrid", "dense", "lexical"]),
        }
        self._send(http, "POST /v1/search", "POST", "/v1/search", json=body)

    def ask(self, http: httpx.Client) -> None:
        self._send(http, "POST /v1/ask", "POST", "/v1/ask", json={"question": self.rng.choice(QUESTIONS)})

    def _write(self, docs: list[Doc], send: object) -> None:
        """Run ``send`` (which writes new versions of ``docs``); track what each may now be."""
        for doc in docs:
            doc.version += 1
            doc.possible.add(doc.version)  # until acknowledged, either state is allowed
        response = send()  # type: ignore[operator]  # a TransportError leaves both states possible
        if response.status_code in (200, 201):
            for doc in docs:
                doc.possible = {doc.version}
            with self.tally.lock:
                self.tally.acked_writes += len(docs)
        elif response.status_code < 500:
            for doc in docs:
                doc.possible.discard(doc.version)

    def put(self, http: httpx.Client) -> None:
        target = self.rng.choice(self.docs)
        text = document_text(self.number, target.key, target.version + 1, self.rng)
        path = f"/v1/documents/{target.id}"
        self._write([target], lambda: self._send(http, "PUT /v1/documents/{id}", "PUT", path, json={"text": text}))

    def upload(self, http: httpx.Client) -> None:
        docs = self.rng.sample(self.uploads, self.rng.randint(1, 3))
        records = [
            {"_id": d.id, "title": "稽核", "text": document_text(self.number, d.key, d.version + 1, self.rng)}
            for d in docs
        ]
        lines = [json.dumps(record, ensure_ascii=False) for record in records]
        payload = ("\n".join(lines) + "\n").encode("utf-8")
        files = {"file": ("soak.jsonl", payload, "application/x-ndjson")}
        self._write(
            docs,
            lambda: self._send(
                http, "POST /v1/documents", "POST", "/v1/documents", files=files, params={"replace": "true"}
            ),
        )

    def delete(self, http: httpx.Client) -> None:
        target = self.rng.choice(self.docs + self.uploads)
        target.possible.add(ABSENT)
        response = self._send(http, "DELETE /v1/documents/{id}", "DELETE", f"/v1/documents/{target.id}")
        if response.status_code in (204, 404):  # 404: it was already gone, which is the same end state
            target.possible = {ABSENT}
            if response.status_code == 204:
                with self.tally.lock:
                    self.tally.acked_deletes += 1

    def expected_marker(self, doc: Doc, version: int) -> str:
        return marker(self.number, doc.key, version)


def audit(base: str, clients: list[Client]) -> dict[str, list[str]]:
    """Every document against the states its client allows."""
    found: dict[str, list[str]] = {"lost": [], "resurrected": [], "unsearchable": [], "checked": []}
    with httpx.Client(base_url=base, timeout=120) as http:
        for client in clients:
            for doc in client.docs + client.uploads:
                if doc.possible == {ABSENT} and doc.version == 0:
                    continue  # never written
                found["checked"].append(doc.id)
                response = http.get(f"/v1/documents/{doc.id}")
                if response.status_code == 404:
                    if ABSENT not in doc.possible:
                        found["lost"].append(f"{doc.id}: absent, expected version {sorted(doc.possible)}")
                    continue
                text = response.json()["text"]
                version = next((v for v in range(doc.version, 0, -1) if client.expected_marker(doc, v) in text), 0)
                if version not in doc.possible:
                    if doc.possible == {ABSENT}:
                        found["resurrected"].append(f"{doc.id}: version {version} present after an acknowledged delete")
                    else:
                        found["lost"].append(f"{doc.id}: version {version}, expected {sorted(doc.possible)}")
                    continue
                query = client.expected_marker(doc, version)
                hits = http.get("/v1/search", params={"q": query, "k": 3, "mode": "lexical"}).json()["results"]
                if not hits or hits[0]["doc_id"] != doc.id:
                    got = [(h["doc_id"], h["score"]) for h in hits]
                    found["unsearchable"].append(f"{doc.id}: marker of version {version} not found by search: {got}")
    return found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def tracebacks(log: Path, request_ids: list[str]) -> dict[str, str]:
    """The server log's traceback for each request id (first line of the exception)."""
    lines = log.read_text(errors="replace").splitlines()
    out: dict[str, str] = {}
    for rid in request_ids:
        for i, line in enumerate(lines):
            if rid and rid in line and ("unhandled" in line or "failed" in line):
                tail = [x for x in lines[i + 1 : i + 60] if x and not x.startswith(" ")]
                out[rid] = tail[0] if tail else line
                break
    return out


def prepare_index(work: Path, source: Path | None) -> Path:
    index_dir = work / "index"
    if source is not None:
        shutil.copytree(source, index_dir, symlinks=True)
        return index_dir
    print("building a fresh seed index with the real model…", flush=True)
    subprocess.run(
        [sys.executable, "-m", "service.cli", "build", "--docs", str(ROOT / "seeds"), "--index-dir", str(index_dir)],
        cwd=ROOT,
        check=True,
    )
    return index_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (default 600)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kill-min", type=float, default=25, help="shortest time between kills, seconds")
    parser.add_argument("--kill-max", type=float, default=75, help="longest time between kills, seconds")
    parser.add_argument("--index", type=Path, help="index folder to copy (default: build the seeds afresh)")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "out" / "soak.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zhsearch-soak-"))
    rng = random.Random(args.seed)
    server = Server(prepare_index(work, args.index), work / "server.log", {})
    tally = Tally()
    stop = threading.Event()
    print(f"starting the server on {server.base} (log: {server.log})", flush=True)
    server.up()
    clients = [Client(i, server, tally, stop, args.seed) for i in range(args.concurrency)]
    began = time.monotonic()

    def sample_rss() -> None:
        while not stop.is_set():
            if server.process is not None and not server.down.is_set():
                kb = rss_kb(server.process.pid)
                if kb:
                    server.rss.append((server.generation, time.monotonic() - began, kb))
            stop.wait(2)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    for client in clients:
        client.start()
    next_kill = began + rng.uniform(args.kill_min, args.kill_max)
    last_report = began
    try:
        while (now := time.monotonic()) < began + args.duration:
            if now >= next_kill:
                took = server.restart()
                server.restarts.append(took)
                print(
                    f"[{now - began:6.0f} s] SIGKILL + restart #{server.generation} ({took:.1f} s to healthy)",
                    flush=True,
                )
                next_kill = time.monotonic() + rng.uniform(args.kill_min, args.kill_max)
            if now - last_report >= 15:
                last_report = now
                done = sum(len(v) for v in tally.latency.values())
                print(
                    f"[{now - began:6.0f} s] {done} answered, {tally.acked_writes} writes and "
                    f"{tally.acked_deletes} deletes acknowledged, {len(tally.errors_5xx)} 5xx, "
                    f"{tally.conn_down}+{tally.conn_up} connection errors (down+up)",
                    flush=True,
                )
            time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=180)
    elapsed = time.monotonic() - began
    print("final SIGKILL + restart, then the audit…", flush=True)
    server.restart()
    try:
        found = audit(server.base, clients)
        ready = httpx.get(f"{server.base}/readyz", timeout=30).status_code
    finally:
        server.stop()

    ids = [str(e["request_id"]) for e in tally.errors_5xx]
    traces = tracebacks(server.log, ids)
    by_generation: dict[int, list[int]] = defaultdict(list)
    for generation, _, kb in server.rss:
        by_generation[generation].append(kb)
    # Generation 1 once warm (the document model loads on its first write): its samples after 10 s.
    warm = [kb for generation, t, kb in server.rss if generation == 1 and t - server.rss_began(1) >= 10]
    last = by_generation[max(by_generation)] if by_generation else [0]
    result = {
        "machine": f"{platform.node()}: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "duration_s": round(elapsed, 1),
        "concurrency": args.concurrency,
        "mix": MIX,
        "kills": len(server.restarts),
        "restart_s": [round(x, 1) for x in server.restarts],
        "acknowledged_writes": tally.acked_writes,
        "acknowledged_deletes": tally.acked_deletes,
        "documents_audited": len(found["checked"]),
        "lost": found["lost"],
        "resurrected": found["resurrected"],
        "unsearchable": found["unsearchable"],
        "errors_5xx": [{**e, "traceback": traces.get(str(e["request_id"]), "")} for e in tally.errors_5xx],
        "connection_errors_while_down": tally.conn_down,
        "connection_errors_while_up": tally.conn_up,
        "readyz_after": ready,
        "routes": {
            route: {
                "requests": len(values),
                "p50_ms": round(pct(values, 0.5), 1),
                "p99_ms": round(pct(values, 0.99), 1),
                "statuses": dict(sorted(tally.statuses[route].items())),
            }
            for route, values in sorted(tally.latency.items())
        },
        "rss_mb": {
            "start": round(by_generation[0][0] / 1024, 1) if by_generation.get(0) else None,
            "after_first_restart": round(sorted(warm)[len(warm) // 2] / 1024, 1) if warm else None,
            "end": round(last[-1] / 1024, 1),
            "per_generation": {
                g: [round(v[0] / 1024, 1), round(max(v) / 1024, 1), round(v[-1] / 1024, 1)]
                for g, v in sorted(by_generation.items())
            },
        },
    }
    base_rss = result["rss_mb"]["after_first_restart"]  # type: ignore[index]
    result["rss_growth_after_first_restart"] = (
        round(result["rss_mb"]["end"] / base_rss - 1, 3) if base_rss else None  # type: ignore[index]
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    report = render(result, args)
    args.out.write_text(report, encoding="utf-8")
    print(report)
    failed = result["lost"] or result["resurrected"] or result["unsearchable"] or result["errors_5xx"]
    if failed:
        print(f"kept {work} for inspection", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


def render(r: dict, args: argparse.Namespace) -> str:  # type: ignore[type-arg]
    rows = "\n".join(
        f"| `{route}` | {v['requests']} | {v['p50_ms']} | {v['p99_ms']} | "
        + ", ".join(f"{code}: {n}" for code, n in v["statuses"].items())
        + " |"
        for route, v in r["routes"].items()
    )
    errors = (
        "\n".join(
            f"- `{e['route']}` {e['status']}, request id `{e['request_id']}`: {e['traceback'] or e['body']}"
            for e in r["errors_5xx"]
        )
        or "none"
    )
    rss = r["rss_mb"]
    generations = "\n".join(f"| {g} | {v[0]} | {v[1]} | {v[2]} |" for g, v in rss["per_generation"].items())
    conn_up = r["connection_errors_while_up"]
    growth = "n/a" if r["rss_growth_after_first_restart"] is None else f"{r['rss_growth_after_first_restart']:+.1%}"
    problems = "\n".join(f"- {x}" for x in r["lost"] + r["resurrected"] + r["unsearchable"]) or "none"
    return f"""# Reliability

`make soak` (`benchmarks/soak.py`): a fresh copy of the seed index served on
127.0.0.1 with the default model and backend, {r["concurrency"]} clients sending a
mixed load ({", ".join(f"{k} {v}%" for k, v in r["mix"].items())}; uploads are multipart
`.jsonl` files of 1-3 documents, `replace=true`), the server SIGKILLed every {args.kill_min:.0f}-{args.kill_max:.0f} s
at random and restarted, then killed and restarted once more and audited document by
document. Targets (issue 10): 0 lost, 0 resurrected, 0 5xx, RSS growth at most 10%
after the first restart.

Run: {r["date"]}, {r["duration_s"]} s, on {r["machine"]}.

| | |
|---|---|
| acknowledged writes (documents) | {r["acknowledged_writes"]} |
| acknowledged deletes | {r["acknowledged_deletes"]} |
| documents audited | {r["documents_audited"]} |
| **lost writes** | **{len(r["lost"])}** |
| **resurrected deletes** | **{len(r["resurrected"])}** |
| acknowledged but not found by search | {len(r["unsearchable"])} |
| **5xx responses** | **{len(r["errors_5xx"])}** |
| SIGKILLs | {r["kills"]} (restart to healthy: {", ".join(str(x) for x in r["restart_s"])} s) |
| connection errors while the server was down / up | {r["connection_errors_while_down"]} / {conn_up} |
| `/readyz` after the final restart | {r["readyz_after"]} |
| server RSS: start / after the first restart / end | {rss["start"]} / {rss["after_first_restart"]} / {rss["end"]} MB |
| RSS growth after the first restart (end / median of generation 1 once warm) | {growth} |

Latency per route (ms, every answered request, restarts included):

| route | requests | p50 | p99 | statuses |
|---|---|---|---|---|
{rows}

Server RSS by generation (MB: first sample, peak, last sample; one generation per
restart):

| generation | first | peak | last |
|---|---|---|---|
{generations}

5xx responses:
{errors}

Audit findings:
{problems}

Reproduce: `make soak` (10 minutes), or
`.venv/bin/python benchmarks/soak.py --duration 120` for a short run; the JSON
is written to `benchmarks/out/soak.json`.
"""


if __name__ == "__main__":
    raise SystemExit(main())
