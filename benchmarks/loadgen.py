"""A small HTTP/1.1 load generator for `GET /v1/search` and `POST /v1/ask` on 127.0.0.1.

Each of ``concurrency`` keep-alive connections sends its next request as soon
as the previous answer is read, until ``total`` requests have been sent; then
it stops. It speaks just enough HTTP (a request line, ``Content-Length``
bodies) to stay cheap: the generator shares the machine's two cores with the
server, and a full client library spent about a third of a core at 70 requests/s.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

HOST = "127.0.0.1"
#: Questions about the seed report, in all three scripts (bench.py, profile_ask.py).
QUERIES = [
    "上半年地区生产总值是多少",
    "互联网诊疗服务覆盖到哪里了",
    "舊區改造完成了多少戶",
    "黃浦如何最佳化營商環境",
    "下半年要举办什么活动",
    "区属国有企业为中小企业减免了多少租金",
    "外灘金融18條是什麼",
    "社区云覆盖了哪些街道",
]


@dataclass
class LoadResult:
    concurrency: int
    latencies_ms: list[float]
    per_second: float
    errors: int
    kind: str = "search"


async def _connection(port: int, paths: list[bytes], turn: list[int], result: LoadResult) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while turn[0] < len(paths):
            request = paths[turn[0]]
            turn[0] += 1
            began = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            result.latencies_ms.append((time.perf_counter() - began) * 1000)
            result.errors += not status.startswith(b"HTTP/1.1 200")
    finally:
        writer.close()


def _search(query: str, k: int) -> bytes:
    return f"GET /v1/search?{urlencode({'q': query, 'k': k})} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


def _ask(query: str, k: int) -> bytes:
    body = json.dumps({"question": query, "k": k}, ensure_ascii=False).encode()
    head = f"POST /v1/ask HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def run(
    port: int, queries: Sequence[str], concurrency: int, total: int, k: int = 10, *, kind: str = "search"
) -> LoadResult:
    """Send ``total`` requests over ``concurrency`` connections; stops by itself.

    ``kind``: ``search`` (GET /v1/search), ``ask`` (POST /v1/ask, k=5 passages) or
    ``mixed`` (searches and asks alternating).
    """
    makers = {"search": [_search], "ask": [_ask], "mixed": [_search, _ask]}[kind]
    paths = [
        (maker := makers[i % len(makers)])(queries[i % len(queries)], 5 if maker is _ask else k) for i in range(total)
    ]
    result = LoadResult(concurrency, [], 0.0, 0, kind)
    turn = [0]

    async def main() -> None:
        began = time.perf_counter()
        await asyncio.gather(*(_connection(port, paths, turn, result) for _ in range(concurrency)))
        result.per_second = total / (time.perf_counter() - began)

    asyncio.run(main())
    return result
