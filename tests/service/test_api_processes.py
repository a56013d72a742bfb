"""`ner api --workers N`: several API processes on one port (on real PostgreSQL, Redis and
S3), whose /metrics, whichever process answers the scrape, count what all of them served;
one that dies is replaced, and none leaves metrics files behind when stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from benchmarks.predict_load import process_tree
from shared.settings import Settings
from tests.service.conftest import Process, free_port, settings_env, wait_http_ok

pytestmark = pytest.mark.services

HEALTHZ = re.compile(
    r'^ner_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)$', re.M
)


def _servers(pid: int) -> set[int]:
    """The API processes under the parent (not multiprocessing's resource tracker)."""
    return {
        child
        for child in process_tree(pid)[1:]
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    }


def _healthz_count(base: str) -> float:
    # A new connection each time: the kernel hands it to either process.
    match = HEALTHZ.search(httpx.get(f"{base}/metrics", timeout=10).text)
    assert match, "no /healthz series in /metrics"
    return float(match.group(1))


def test_two_api_processes_serve_one_port_and_count_together(
    service_settings: Settings, tmp_path: Path
) -> None:
    scratch = tmp_path / "tmp"  # where the API keeps its metrics files
    scratch.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = Process(
        ["-m", "api", "--port", str(port), "--workers", "2"],
        settings_env(service_settings, TMPDIR=str(scratch)),
        tmp_path / "api.log",
    ).start()
    try:
        wait_http_ok(f"{base}/readyz", api, timeout=120)
        n = 80
        with ThreadPoolExecutor(8) as pool:
            statuses = list(
                pool.map(lambda _: httpx.get(f"{base}/healthz", timeout=10).status_code, range(n))
            )
        assert statuses == [200] * n
        # Both processes answered some (each writes its own counter file)...
        (folder,) = scratch.glob("ner-api-metrics-*")
        assert len(list(folder.glob("counter_*.db"))) == 2, api.tail()
        # ...and every scrape, whichever of them answers it, counts all n.
        assert {_healthz_count(base) for _ in range(8)} == {float(n)}

        # A process that dies (here SIGKILL) is replaced; the other serves meanwhile.
        assert api.proc is not None
        first = _servers(api.proc.pid)
        assert len(first) == 2
        os.kill(min(first), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = _servers(api.proc.pid)
            if len(now) == 2 and now != first:
                break
            time.sleep(0.2)
        assert len(now) == 2 and min(first) not in now, (first, now, api.tail())
        assert "starting another" in api.tail()
        wait_http_ok(f"{base}/readyz", api, timeout=60)
    finally:
        assert api.stop() == 0, api.tail()
    assert list(scratch.iterdir()) == [], "metrics files left behind"


def test_a_taken_port_is_one_clear_error(service_settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        api = Process(
            ["-m", "api", "--port", str(port), "--workers", "2"],
            settings_env(service_settings),
            tmp_path / "api.log",
        ).start()
        assert api.proc is not None
        assert api.proc.wait(60) == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in api.tail()
