"""Load /predict of a running API (issue 7, point 3; issue 10 reuses it).

Three phases: sequential requests (one client, one at a time), then 1 client, then 16
clients, each for `--seconds`, every client on its own keep-alive connection. With
`--malformed 0.2`, a fifth of the requests are malformed on purpose (a lone surrogate,
invalid JSON, bytes that are not UTF-8, an over-long text, a wrong type, deep nesting);
those must get a 4xx and must not disturb the well-formed ones, which must all get a 200.

    python benchmarks/predict_load.py --url http://127.0.0.1:8000 --seconds 60 --malformed 0.2

Reports p50/p95/p99 latency, requests/s and errors, separately for well-formed and
malformed requests, and the API process's resident memory before and after (from its
/metrics, or /proc/<pid> with --pid). The clients use a lean HTTP client
(benchmarks/raw_http.py; `--client httpx` for the old one), and each phase reports the
CPU per request of the load generator and (with --pid) of the API: on a small machine
they share the cores. Writes benchmarks/results/<name>.json with the CPU
model and flags (amx_bf16, avx512_bf16, avx512_vnni).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from benchmarks.http_common import machine, write_result
from benchmarks.raw_http import HttpError, RawConnection

SENTENCES = [
    "Angela Merkel visited Paris on Tuesday to meet Emmanuel Macron .",
    "The United Nations held a summit in Geneva last week .",
    "Apple opened a new office in Berlin , said Tim Cook .",
    "Barack Obama was born in Honolulu , Hawaii .",
    "Lionel Messi signed for Inter Miami in 2023 .",
    "The river Thames flows through London and Oxford .",
    "Siemens and Bosch reported strong results in Munich .",
    "Marie Curie worked at the University of Paris .",
]

JSON = {"content-type": "application/json"}
# (name, headers, body): each must be answered with a 4xx, never a 5xx.
MALFORMED: list[tuple[str, dict[str, str], bytes]] = [
    ("lone surrogate", JSON, b'{"text": "Angela \\ud800 Merkel"}'),
    ("surrogate in a list", JSON, b'{"texts": ["fine text", "bad \\udfff"]}'),
    ("invalid JSON", JSON, b'{"text": "unterminated'),
    ("not UTF-8", JSON, b'{"text": "\xff\xfe\xfd"}'),
    ("wrong type", JSON, b'{"text": 42}'),
    ("both fields", JSON, b'{"text": "a", "texts": ["b"]}'),
    ("empty list", JSON, b'{"texts": []}'),
    ("deep nesting", JSON, b"[" * 5000 + b"]" * 5000),
    ("over-long text", JSON, json.dumps({"text": "word " * 40_000}).encode()),
]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Tally:
    def __init__(self) -> None:
        self.good_latency: list[float] = []
        self.good_status: Counter[str] = Counter()
        self.bad_status: Counter[str] = Counter()
        self.bad_kinds: Counter[str] = Counter()
        self.good_errors = 0  # a well-formed request not answered 200
        self.bad_errors = 0  # a malformed request answered 5xx or not at all

    def summary(self, seconds: float) -> dict[str, Any]:
        lat = self.good_latency
        total = len(lat) + sum(self.bad_status.values())
        return {
            "seconds": round(seconds, 2),
            "requests": total,
            "requests_per_second": round(total / seconds, 2) if seconds else None,
            "well_formed": {
                "requests": sum(self.good_status.values()),
                "ok_per_second": round(self.good_status.get("200", 0) / seconds, 2),
                "errors": self.good_errors,
                "statuses": dict(self.good_status),
                "latency_ms": {
                    "p50": _ms(percentile(lat, 50)),
                    "p95": _ms(percentile(lat, 95)),
                    "p99": _ms(percentile(lat, 99)),
                    "mean": _ms(statistics.fmean(lat)) if lat else None,
                    "max": _ms(max(lat)) if lat else None,
                },
            },
            "malformed": {
                "requests": sum(self.bad_status.values()),
                "errors": self.bad_errors,
                "statuses": dict(self.bad_status),
                "kinds": dict(self.bad_kinds),
            },
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


class Client:
    """One client on its own keep-alive connection: `raw` (benchmarks/raw_http.py, tens of
    microseconds of CPU per request, the default) or `httpx` (about 1.5 ms: on a 2-core
    machine that is CPU taken from the API being measured)."""

    def __init__(self, url: str, headers: dict[str, str], kind: str) -> None:
        self.kind = kind
        if kind == "raw":
            self._raw = RawConnection(url, headers)
        else:
            self._httpx = httpx.AsyncClient(
                base_url=url,
                headers=headers,
                timeout=120,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )

    async def post(self, body: bytes, headers: dict[str, str]) -> int:
        """The status of POST /predict with `body`; raises ClientError when none came."""
        if self.kind == "raw":
            request = self._raw.request_bytes(
                "POST", "/predict", body, headers.get("content-type", "application/json")
            )
            try:
                return (await self._raw.send(request))[0]
            except HttpError as exc:
                raise ClientError(str(exc)) from exc
        try:
            return (await self._httpx.post("/predict", content=body, headers=headers)).status_code
        except httpx.HTTPError as exc:
            raise ClientError(type(exc).__name__) from exc

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.kind == "raw":
            await self._raw.close()
        else:
            await self._httpx.aclose()


class ClientError(Exception):
    """No answer: the connection failed or timed out."""


async def one_request(client: Client, tally: Tally, rng: random.Random, bad: float, texts: int = 0):
    if rng.random() < bad:
        kind, headers, body = rng.choice(MALFORMED)
        tally.bad_kinds[kind] += 1
        try:
            status = await client.post(body, headers)
        except ClientError as exc:
            tally.bad_status[str(exc).split(":")[0]] += 1
            tally.bad_errors += 1
            return
        tally.bad_status[str(status)] += 1
        if status >= 500:
            tally.bad_errors += 1
        return
    count = texts or rng.choice((1, 1, 1, 2, 4))
    payload = (
        {"text": rng.choice(SENTENCES)}
        if count == 1
        else {"texts": [rng.choice(SENTENCES) for _ in range(count)]}
    )
    body = json.dumps(payload).encode()
    started = time.perf_counter()
    try:
        status = await client.post(body, JSON)
    except ClientError as exc:
        tally.good_status[str(exc).split(":")[0]] += 1
        tally.good_errors += 1
        return
    tally.good_latency.append(time.perf_counter() - started)
    tally.good_status[str(status)] += 1
    if status != 200:
        tally.good_errors += 1


async def sequential(
    url: str, headers: dict[str, str], n: int, seed: int, texts: int = 0, kind: str = "raw"
) -> dict[str, Any]:
    tally, rng = Tally(), random.Random(seed)
    async with Client(url, headers, kind) as client:
        started = time.perf_counter()
        for _ in range(n):
            await one_request(client, tally, rng, 0.0, texts)
        return tally.summary(time.perf_counter() - started)


async def clients_for(
    url: str,
    headers: dict[str, str],
    clients: int,
    seconds: float,
    bad: float,
    seed: int,
    texts: int = 0,
    kind: str = "raw",
) -> dict[str, Any]:
    tally = Tally()
    stop_at = time.perf_counter() + seconds

    async def client_loop(i: int) -> None:
        rng = random.Random(seed + i)
        async with Client(url, headers, kind) as client:
            while time.perf_counter() < stop_at:
                await one_request(client, tally, rng, bad, texts)

    cpu0 = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    result = tally.summary(elapsed)
    result["clients"] = clients
    # What the load generator itself took of the shared CPU, per request answered.
    requests = max(1, result["requests"])
    result["load_generator_cpu_ms_per_request"] = round(
        1000 * (time.process_time() - cpu0) / requests, 3
    )
    return result


def run_loop(coro: Any) -> Any:
    """uvloop when installed (it comes with uvicorn[standard]): less CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux): with `ner api --workers N`, the uvicorn parent
    and its N server processes."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").glob("*/children"):
            with contextlib.suppress(OSError):  # the thread has just ended
                pids.extend(int(c) for c in task.read_text().split())
        i += 1
    return pids


def process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds so far of process `pid` and its children (Linux), or None."""
    if not pid:
        return None
    total = 0
    try:
        for each in process_tree(pid):
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    except OSError:
        return None
    return total / os.sysconf("SC_CLK_TCK")


def with_api_cpu(pid: int | None, phase: Any) -> dict[str, Any]:
    """Run a phase; add the API process's CPU per request (with --pid): the server's side
    of the cost, beside the load generator's."""
    before = process_cpu_seconds(pid)
    result: dict[str, Any] = run_loop(phase)
    after = process_cpu_seconds(pid)
    if before is not None and after is not None and result["requests"]:
        result["api_cpu_ms_per_request"] = round(1000 * (after - before) / result["requests"], 3)
    return result


def resident_memory(url: str, headers: dict[str, str], pid: int | None) -> int | None:
    """The API's resident bytes: /proc/<pid> and its children's when given (every API
    process), else its /metrics (one process)."""
    if pid:
        total = 0
        for each in process_tree(pid):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        return total
    try:
        text = httpx.get(f"{url}/metrics", headers=headers, timeout=10).text
    except httpx.HTTPError:
        return None
    match = re.search(r"^process_resident_memory_bytes (\S+)$", text, re.M)
    return int(float(match.group(1))) if match else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the API, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", help="sent as Authorization: Bearer")
    parser.add_argument("--seconds", type=float, default=60, help="per concurrent phase")
    parser.add_argument("--clients", default="1,16", help="comma-separated client counts")
    parser.add_argument("--sequential", type=int, default=50, help="requests, one at a time")
    parser.add_argument("--malformed", type=float, default=0.0, help="share of bad requests")
    parser.add_argument("--pid", type=int, help="the API process, for its memory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--texts",
        type=int,
        default=0,
        help="sentences per request: 1 for quick one-sentence calls (issue 10); "
        "0 mixes 1, 2 and 4 (issue 7)",
    )
    parser.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="the load generator's HTTP client (raw: lean, so the API gets the CPU)",
    )
    parser.add_argument("--name", default="predict_load", help="result file name")
    parser.add_argument("--note", default="", help="how the machine was loaded, etc.")
    args = parser.parse_args(argv)
    if not 0 <= args.malformed < 1:
        parser.error("--malformed is a share between 0 and 1")
    url = args.url.rstrip("/")
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}

    try:
        probe = httpx.post(f"{url}/predict", json={"text": SENTENCES[0]}, headers=headers)
    except httpx.HTTPError as exc:
        print(f"predict_load: {url} does not answer: {exc}", file=sys.stderr)
        return 2
    if probe.status_code != 200:
        print(
            f"predict_load: /predict answers {probe.status_code}: {probe.text[:300]}",
            file=sys.stderr,
        )
        return 2

    result: dict[str, Any] = {
        "machine": machine(),
        "target": url,
        "note": args.note,
        "texts_per_request": args.texts or "1, 2 or 4 (60/20/20 %)",
        "client": args.client,
    }
    result["settings"] = {
        "seconds": args.seconds,
        "malformed_share": args.malformed,
        "model_version": probe.json().get("model_version"),
    }
    result["memory_before_bytes"] = resident_memory(url, headers, args.pid)
    phases: dict[str, Any] = {}
    phases["sequential"] = with_api_cpu(
        args.pid, sequential(url, headers, args.sequential, args.seed, args.texts, args.client)
    )
    _print("sequential", phases["sequential"])
    for n in (int(c) for c in args.clients.split(",")):
        name = f"{n}_clients"
        phases[name] = with_api_cpu(
            args.pid,
            clients_for(
                url, headers, n, args.seconds, args.malformed, args.seed, args.texts, args.client
            ),
        )
        _print(name, phases[name])
    result["phases"] = phases
    result["memory_after_bytes"] = resident_memory(url, headers, args.pid)
    before, after = result["memory_before_bytes"], result["memory_after_bytes"]
    if before and after:
        result["memory_growth_percent"] = round(100 * (after - before) / before, 2)
        print(f"API resident memory: {before / 2**20:.0f} MiB → {after / 2**20:.0f} MiB")
    path = write_result(args.name, result)
    print(f"written: {path}")
    errors = sum(p["well_formed"]["errors"] + p["malformed"]["errors"] for p in phases.values())
    return 1 if errors else 0


def _print(name: str, phase: dict[str, Any]) -> None:
    good, bad = phase["well_formed"], phase["malformed"]
    lat = good["latency_ms"]
    print(
        f"{name:12} {phase['requests']:6} requests  {phase['requests_per_second']:8} req/s  "
        f"well-formed p50 {lat['p50']} ms p95 {lat['p95']} ms p99 {lat['p99']} ms, "
        f"errors {good['errors']}  |  malformed {bad['requests']} "
        f"(5xx or no answer: {bad['errors']}) {bad['statuses']}  |  CPU ms/request: API "
        f"{phase.get('api_cpu_ms_per_request')}, "
        f"load generator {phase.get('load_generator_cpu_ms_per_request')}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
