"""Fixtures: a real gateway process (tests/gateway_server.js on the built package) and a real SSE reader."""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
SDK = HERE.parent
ROOT = SDK.parent.parent
sys.path.insert(0, str(SDK / "src"))

ETL_TOKEN = "py-etl-token-0123456789"
ETL_ROTATED = "py-etl-token-rotated-0123"
ALERTS_TOKEN = "py-alerts-token-0123456789"


def _ensure_built() -> None:
    """Build dist/ when it is missing or older than src/ (npm test builds it first anyway)."""
    entry = ROOT / "dist" / "index.js"
    newest = max(p.stat().st_mtime for p in (ROOT / "src").rglob("*.ts"))
    if not entry.exists() or entry.stat().st_mtime < newest:
        subprocess.run(["node", str(ROOT / "scripts" / "build.mjs")], cwd=ROOT, check=True)


class Gateway:
    """One gateway process; ``stop()`` and ``start()`` again keep the port."""

    def __init__(self) -> None:
        self.port = 0
        self.process: Optional[subprocess.Popen] = None  # type: ignore[type-arg]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["node", str(HERE / "gateway_server.js"), str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise RuntimeError("the gateway process exited before listening")
        self.port = int(json.loads(line)["port"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def stats(self) -> Dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/control/stats", timeout=5) as answer:
            return json.loads(answer.read())

    def fail_after_publish(self, n: int = 1) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/control/fail-after-publish?n={n}", method="POST")
        urllib.request.urlopen(request, timeout=5).close()


class SseReader:
    """A streaming GET of ``/events?channels=...``; data events are queued as ``{id, channel, data}``."""

    def __init__(self, gateway: Gateway, channels: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
        self.connection.request("GET", f"/events?{urllib.parse.urlencode({'channels': channels})}")
        self.response = self.connection.getresponse()
        assert self.response.status == 200, self.response.read()
        self.events: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(10), "no sse:ready"

    def _read(self) -> None:
        fields: Dict[str, str] = {}
        try:
            for raw in self.response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if fields.get("event") == "sse:ready":
                        self.ready.set()
                    elif "data" in fields and not fields.get("event", "").startswith("sse:"):
                        body = json.loads(fields["data"])
                        self.events.put({"id": fields.get("id"), "channel": body["channel"], "data": body["data"]})
                    fields = {}
                elif not line.startswith(":") and ":" in line:
                    name, value = line.split(":", 1)
                    fields[name] = value[1:] if value.startswith(" ") else value
        except (OSError, ValueError, AttributeError):
            return  # closed by the test (http.client drops its file object on close)

    def take(self, n: int, timeout: float = 10.0) -> List[Dict[str, Any]]:
        return [self.events.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        # Shut the socket down first: the reader thread holds the response's lock while it waits in recv.
        if self.connection.sock is not None:
            try:
                self.connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.connection.close()


@pytest.fixture(scope="session")
def gateway() -> Iterator[Gateway]:
    _ensure_built()
    process = Gateway()
    process.start()
    yield process
    process.stop()


@pytest.fixture()
def own_gateway() -> Iterator[Gateway]:
    """A gateway of the test's own, which it may stop and restart."""
    _ensure_built()
    process = Gateway()
    process.start()
    yield process
    process.stop()


@pytest.fixture()
def sse(gateway: Gateway) -> Iterator[Any]:
    readers: List[SseReader] = []

    def open_stream(channels: str, on: Optional[Gateway] = None) -> SseReader:
        reader = SseReader(on or gateway, channels)
        readers.append(reader)
        return reader

    yield open_stream
    for reader in readers:
        reader.close()
