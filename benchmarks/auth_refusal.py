"""How fast an API with keys refuses an upload that carries none, without reading it, and
how much the key check costs a request that passes (issue 7, point 6).

Against a running API (`ner api` with a key configured):

    python benchmarks/auth_refusal.py --url http://127.0.0.1:8000 --token "$TOKEN" [--n 50]

1. POST /datasets with no key and a body that never finishes, chunked and with a declared
   Content-Length of 10 GiB: seconds from the headers to the 401.
2. The same chunked upload with the valid key: still no answer after `--wait` seconds
   (the server is waiting for the body, so the 401 above was decided without it).
3. GET /models?limit=1 with the key, sequential: p50/p99 latency, the cost of a request whose
   key is checked from the per-process cache.

Prints one JSON object (machine, date, figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

PART = (
    b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
    b"Content-Type: text/csv\r\n\r\ntext,labels\n" + b"Angela lives here,B-PER O O\n" * 30
)
CHUNK = f"{len(PART):x}\r\n".encode() + PART + b"\r\n"


def open_upload(host: str, port: int, headers: str) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    head = (
        f"POST /datasets HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n" + headers + "\r\n"
    )
    sock.sendall(head.encode() + CHUNK)
    return sock


def time_to_status(host: str, port: int, headers: str, wait: float) -> tuple[int | None, float]:
    start = time.perf_counter()
    with open_upload(host, port, headers) as sock:
        sock.settimeout(wait)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return None, time.perf_counter() - start
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    return status, time.perf_counter() - start


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="a valid key with the train scope")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--wait", type=float, default=3.0)
    args = parser.parse_args()
    where = urlsplit(args.url)
    host, port = where.hostname or "127.0.0.1", where.port or 80

    refused: dict[str, dict[str, float]] = {}
    for name, headers in (
        ("chunked, never finishing", "Transfer-Encoding: chunked\r\n"),
        ("Content-Length 10 GiB, 1 KiB sent", f"Content-Length: {10 * 2**30}\r\n"),
    ):
        seconds = []
        for _ in range(args.n):
            status, took = time_to_status(host, port, headers, 10)
            assert status == 401, (name, status)
            seconds.append(took)
        refused[name] = {
            "p50_ms": round(statistics.median(seconds) * 1000, 2),
            "max_ms": round(max(seconds) * 1000, 2),
        }
    status, _ = time_to_status(
        host,
        port,
        f"Transfer-Encoding: chunked\r\nAuthorization: Bearer {args.token}\r\n",
        args.wait,
    )
    assert status is None, f"with a valid key the unfinished upload was answered {status}"

    latencies = []
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {args.token}"}) as c:
        c.get("/models", params={"limit": 1}).raise_for_status()  # fills the key cache
        for _ in range(args.n * 4):
            start = time.perf_counter()
            c.get("/models", params={"limit": 1}).raise_for_status()
            latencies.append(time.perf_counter() - start)

    print(
        json.dumps(
            {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(),
                },
                "refused_without_key": refused,
                "valid_key_unfinished_upload_unanswered_after_s": args.wait,
                "get_models_with_key_ms": {
                    "p50": round(statistics.median(latencies) * 1000, 2),
                    "p99": round(pct(latencies, 0.99) * 1000, 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
