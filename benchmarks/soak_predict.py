"""Memory soak of /predict (issue 7, point 7): mixed traffic against a running API for N
minutes; the API process's resident memory is sampled throughout. Passes when, after the
warm-up, it grows less than 5 %.

    python benchmarks/soak_predict.py --url http://127.0.0.1:8000 --pid API_PID \\
        [--minutes 20] [--warmup-minutes 2] [--clients 8] [--key KEY]

The traffic: single sentences, batches of texts, long documents (windowed), Unicode with
emoji and combining marks, and malformed requests (bad JSON, no text, a lone surrogate,
over-long texts) that must be answered 4xx. Results go to benchmarks/results/soak-predict.json
with the CPU named.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results"
WORDS = [
    "Angela",
    "Merkel",
    "visited",
    "Paris",
    "with",
    "Tomas",
    "Novak",
    "of",
    "Globex",
    "Corporation",
    "on",
    "Monday",
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu() -> dict[str, Any]:
    text = Path("/proc/cpuinfo").read_text()
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if "model name" in ln), "")
    flags = set(next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split())
    return {
        "model": name,
        "cores": os.cpu_count(),
        **{f: f in flags for f in ("amx_bf16", "avx512_bf16", "avx512_vnni")},
    }


def request(rng: random.Random) -> tuple[dict[str, Any] | bytes, bool]:
    """A request body, and whether it is well-formed."""
    kind = rng.random()
    sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25)))
    if kind < 0.55:
        return {"text": sentence}, True
    if kind < 0.75:
        return {"texts": [sentence] * rng.randint(2, 16)}, True
    if kind < 0.82:
        return {"text": (sentence + " . ") * rng.randint(50, 300)}, True
    if kind < 0.88:
        return {"text": f"Zoë 🙂 e\u0301 {sentence}\n\n  Łódź"}, True
    bad = rng.choice(
        [b"{not json", b'{"texts": []}', b'{"text": "\\ud800 lone"}', b"{}", b'{"text": 5}']
    )
    return bad, False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--pid", type=int, required=True, help="the API process (for its RSS)")
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--warmup-minutes", type=float, default=2)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--key", help="API key (Authorization: Bearer)")
    parser.add_argument("--out", default=str(RESULTS / "soak-predict.json"))
    args = parser.parse_args()

    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    stop_at = time.monotonic() + args.minutes * 60
    counts = {
        "good": 0,
        "good_errors": 0,
        "bad": 0,
        "bad_5xx": 0,
        "bad_2xx": 0,
        "transport_errors": 0,
    }
    latencies: list[float] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(base_url=args.url, headers=headers, timeout=60) as http:
            while time.monotonic() < stop_at:
                body, good = request(rng)
                start = time.perf_counter()
                try:
                    if isinstance(body, bytes):
                        r = http.post(
                            "/predict", content=body, headers={"content-type": "application/json"}
                        )
                    else:
                        r = http.post("/predict", json=body)
                except httpx.TransportError:
                    with lock:
                        counts["transport_errors"] += 1
                    time.sleep(1)
                    continue
                took = time.perf_counter() - start
                with lock:
                    if good:
                        counts["good"] += 1
                        counts["good_errors"] += r.status_code != 200
                        latencies.append(took)
                    else:
                        counts["bad"] += 1
                        counts["bad_5xx"] += r.status_code >= 500
                        counts["bad_2xx"] += r.status_code < 400

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    samples: list[tuple[float, float]] = []
    while any(t.is_alive() for t in threads):
        samples.append((time.monotonic() - started, rss_mb(args.pid)))
        print(f"{samples[-1][0]:7.0f} s  RSS {samples[-1][1]:7.1f} MB  {counts}", flush=True)
        time.sleep(10)
    for t in threads:
        t.join()
    # Resident memory moves by tens of MB from one sample to the next (a long text's
    # activations): compare the median of the first and of the last minute after warm-up.
    warm = [(t, mb) for t, mb in samples if t >= args.warmup_minutes * 60] or samples
    first = statistics.median(mb for t, mb in warm if t <= warm[0][0] + 60)
    last = statistics.median(mb for t, mb in warm if t >= warm[-1][0] - 60)
    growth = (last - first) / first * 100
    ordered = sorted(latencies)
    result = {
        "cpu": cpu(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "minutes": args.minutes,
        "clients": args.clients,
        "requests": counts,
        "p50_ms": round(statistics.median(ordered) * 1000, 1) if ordered else None,
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1) if ordered else None,
        "rss_mb": {
            "first_minute_after_warmup_median": round(first, 1),
            "last_minute_median": round(last, 1),
            "max": max(m for _, m in samples),
        },
        "growth_after_warmup_percent": round(growth, 2),
        "passed": growth < 5
        and counts["good_errors"] == 0
        and counts["bad_5xx"] == 0
        and counts["transport_errors"] == 0,
        "samples": samples,
    }
    Path(args.out).parent.mkdir(exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
