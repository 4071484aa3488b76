"""Starting a real `zhsearch serve` process on 127.0.0.1 for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(index_dir: Path, log: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    environment = os.environ | {"ZHSEARCH_INDEX_DIR": str(index_dir)} | env
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_healthy(base: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError("server did not become healthy:\n" + log.read_text(errors="replace")[-3000:])


@contextmanager
def serving(index_dir: Path, log: Path, **env: str) -> Iterator[str]:
    """A server for the duration of the block; yields its base URL."""
    port = free_port()
    process = start(index_dir, log, port, **env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, log)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
