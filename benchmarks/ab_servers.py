"""Two running servers side by side: the same questions to both, alternating request by request.

For a change that must not change behaviour or speed: start the old and the new server on copies of
one index (127.0.0.1 only), then

    .venv/bin/python benchmarks/ab_servers.py --ports 8101 8102

prints each one's sequential `/v1/search` latency, its throughput with 16 concurrent clients, and how
many `/v1/search` and `/v1/ask` responses differ (took_ms aside). Load stops by itself.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUERIES = ROOT / "seeds" / "eval" / "queries.jsonl"


def _questions() -> list[str]:
    rows = [json.loads(line) for line in QUERIES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row.get("text") or row["query"] for row in rows]


def _url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def sequential(client: httpx.Client, ports: list[int], questions: list[str], rounds: int) -> dict[int, list[float]]:
    took: dict[int, list[float]] = {port: [] for port in ports}
    for n in range(rounds):
        for question in questions:
            for port in ports if n % 2 == 0 else ports[::-1]:
                began = time.perf_counter()
                client.get(_url(port, "/v1/search"), params={"q": question, "k": 10}).raise_for_status()
                took[port].append((time.perf_counter() - began) * 1000)
    return took


def concurrent(client: httpx.Client, port: int, questions: list[str], requests: int, clients: int) -> float:
    def one(i: int) -> None:
        client.get(_url(port, "/v1/search"), params={"q": questions[i % len(questions)]}).raise_for_status()

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(requests)))
    return requests / (time.perf_counter() - began)


def differing(client: httpx.Client, ports: list[int], questions: list[str]) -> dict[str, int]:
    found = {"search": 0, "ask": 0}
    for question in questions:
        searched = [client.get(_url(p, "/v1/search"), params={"q": question}).json() for p in ports]
        asked = [client.post(_url(p, "/v1/ask"), json={"question": question}).json() for p in ports]
        for name, bodies in (("search", searched), ("ask", asked)):
            for body in bodies:
                body.pop("took_ms", None)
            found[name] += bodies[0] != bodies[1]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, nargs=2, required=True, help="the two servers' ports on 127.0.0.1")
    parser.add_argument("--rounds", type=int, default=4, help="sequential passes over the questions")
    args = parser.parse_args()
    questions = _questions()
    with httpx.Client(timeout=60) as client:
        for port, took in sequential(client, args.ports, questions, args.rounds).items():
            print(f"{port}: sequential /v1/search p50 {statistics.median(took):.2f} ms over {len(took)}")
        for n in range(3):
            for port in args.ports:
                rate = concurrent(client, port, questions, 400, 16)
                print(f"{port}: round {n}, 16 clients, {rate:.1f} searches/s")
        print(f"responses that differ, of {len(questions)}: {differing(client, args.ports, questions)}")


if __name__ == "__main__":
    main()
