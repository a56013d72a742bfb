"""What the HTTP benchmarks (fuzz_api.py, predict_load.py) share: the machine they ran on,
result files, and a throwaway service stack on the real servers. No torch import here:
these scripts may target an API running anywhere."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shared.ner.int8_probe import signed_int8_exact

RESULTS = Path(__file__).parent / "results"
# The flags that pick the matmul kernels: bf16/int8 via AMX, AVX-512 (bf16, VNNI), or AVX2.
CPU_FLAGS = (
    "amx_bf16",
    "amx_int8",
    "amx_tile",
    "avx512_bf16",
    "avx512_vnni",
    "avx512f",
    "avx_vnni",
    "avx2",
)


def _first_cpu() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo, field by field (empty where unreadable)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def _cpuinfo() -> tuple[str, set[str]]:
    fields = _first_cpu()
    return fields.get("model name", "unknown"), set(fields.get("flags", "").split())


# Virtual machines often name every Xeon "Intel(R) Xeon(R) Processor", and two such CPUs
# with the same flags may still differ in speed (docs/benchmarks.md: the same training on
# two AMX machines): family, model, stepping and cache size tell them apart.
IDENTITY = {"cpu family": "family", "model": "model", "stepping": "stepping", "cache size": "cache"}


def cpu_identity() -> dict[str, str]:
    fields = _first_cpu()
    return {name: fields[key] for key, name in IDENTITY.items() if key in fields}


def cpu_flags() -> dict[str, bool]:
    """Which of `CPU_FLAGS` this CPU has: a speed figure holds for these only."""
    flags = _cpuinfo()[1]
    return {f: f in flags for f in CPU_FLAGS}


def machine() -> dict[str, Any]:
    """CPU model and the flags that decide inference speed, cores, load, commit, date."""
    cpu, flags = _cpuinfo()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cpu_identity": cpu_identity(),
        "cpu_flags": {f: f in flags for f in CPU_FLAGS},
        # Whether ONNX Runtime sums signed int8 exactly here (VNNI/AMX): which int8 serves.
        "signed_int8_exact": signed_int8_exact(),
        "cores": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.gmtime()),
    }


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def fresh_settings(**overrides: Any) -> Iterator[Any]:
    """Settings on a new database, bucket and Redis DB of the servers named by the NER_*
    environment (scripts/services.sh env); the database is dropped afterwards."""
    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from shared.migrate import upgrade_to_head
    from shared.settings import Settings
    from shared.storage import make_store

    base = Settings(_env_file=None)
    if not base.database_url.startswith("postgresql"):
        raise SystemExit("set NER_DATABASE_URL etc. to the real servers (scripts/services.sh env)")
    admin_url = make_url(base.database_url)
    name = f"ner_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_to_head(url)
        bucket = f"ner-bench-{uuid.uuid4().hex[:8]}"
        store = make_store(f"s3://{bucket}/objects", base.s3_endpoint_url)
        store.ensure_bucket()  # type: ignore[attr-defined]
        redis.Redis.from_url(base.broker_url).flushdb()
        data_dir = Path(f"var/bench-{name}").resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        yield base.model_copy(
            update={
                "database_url": url,
                "storage_url": f"s3://{bucket}/objects",
                "data_dir": data_dir,
                **overrides,
            }
        )
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def serve_in_thread(settings: Any) -> Iterator[str]:
    """The API app under uvicorn in this process; yields its base URL."""
    import uvicorn

    from api.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
