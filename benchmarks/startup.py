"""Start-up: how soon `ner serve` tags once started, and the API after a promotion.

    python benchmarks/startup.py --model runs/quick-conll

On `ner serve`'s embedded defaults (SQLite, the filesystem queue, a local object
directory, all in a fresh temporary `NER_DATA_DIR`), with no outside servers:

1. the model is uploaded and registered in production (as a finished training would);
2. `ner serve` is started and timed from the spawn until `/healthz` answers and until
   `POST /predict` answers 200 (the goal: within 15 s);
3. the same model under a second version is registered as a candidate and promoted with
   `POST /models/{version}/promote`; timed until `/predict` answers with that version
   (the goal: within 10 s; the API polls the registry every `model_poll_seconds`);
4. in a fresh interpreter each: the import of the API and of the NER core, and the model's
   load (`Predictor.load`), the parts of the start-up.

Writes benchmarks/results/<name>.json with the CPU model and flags.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from benchmarks.bulk_speed import register
from benchmarks.common import machine, write_result

_beside = Path(sys.executable).with_name("ner")
NER = str(_beside) if _beside.exists() else "ner"
TEXT = "Angela Merkel visited Paris on Tuesday ."

PARTS = r"""
import json, sys, time
t0 = time.perf_counter()
import api.app  # noqa: F401  the API and its service layer
t1 = time.perf_counter()
import shared.ner.inference  # noqa: F401  torch, transformers, the core
t2 = time.perf_counter()
from shared.ner import Predictor
p = Predictor.load(sys.argv[1])
t3 = time.perf_counter()
p.predict(["Angela Merkel visited Paris ."])
t4 = time.perf_counter()
print(json.dumps({"import_api_seconds": round(t1 - t0, 2),
                  "import_core_seconds": round(t2 - t1, 2),
                  "model_load_seconds": round(t3 - t2, 2),
                  "first_predict_seconds": round(t4 - t3, 3),
                  "backend": p.backend}))
"""


def wait_for(predicate: Any, limit: float, step: float = 0.05) -> float | None:
    """Seconds until `predicate()` is true, or None past `limit`."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        try:
            if predicate():
                return time.perf_counter() - start
        except httpx.HTTPError:
            pass
        time.sleep(step)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--name", default="startup")
    args = parser.parse_args()
    model = Path(args.model).resolve()
    url = f"http://127.0.0.1:{args.port}"
    result: dict[str, Any] = {"machine": machine(), "model": str(model)}

    parts = subprocess.run(
        [sys.executable, "-c", PARTS, str(model)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    result["parts"] = json.loads(parts.stdout.strip().splitlines()[-1])
    print("parts:", result["parts"], file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="ner-startup-") as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NER_")}
        env["NER_DATA_DIR"] = data
        os.environ.clear()
        os.environ.update(env)
        register(model, "v1", promote=True)
        start = time.perf_counter()
        serve = subprocess.Popen(
            [NER, "serve", "--port", str(args.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with httpx.Client(base_url=url, timeout=5) as client:
                wait_for(lambda: client.get("/healthz").status_code == 200, 60)
                result["serve_healthz_seconds"] = round(time.perf_counter() - start, 2)
                wait_for(
                    lambda: client.post("/predict", json={"text": TEXT}).status_code == 200, 120
                )
                result["serve_ready_seconds"] = round(time.perf_counter() - start, 2)
                print("ner serve ready in", result["serve_ready_seconds"], "s", file=sys.stderr)

                register(model, "v2", promote=False)
                promoted = time.perf_counter()
                r = client.post("/models/v2/promote")
                r.raise_for_status()
                waited = wait_for(
                    lambda: (
                        client.post("/predict", json={"text": TEXT}).json().get("model_version")
                        == "v2"
                    ),
                    60,
                )
                result["promotion_to_serving_seconds"] = (
                    round(time.perf_counter() - promoted, 2) if waited is not None else None
                )
                print(
                    "promotion → serving",
                    result["promotion_to_serving_seconds"],
                    "s",
                    file=sys.stderr,
                )
                ready = client.get("/readyz").json()
                result["api_backend"] = ready.get("model_backend")
        finally:
            serve.terminate()
            serve.wait(30)
    result["goals"] = {
        "serve_ready_within_15s": (result.get("serve_ready_seconds") or 1e9) <= 15,
        "promotion_within_10s": (result.get("promotion_to_serving_seconds") or 1e9) <= 10,
    }
    path = write_result(args.name, result)
    print(json.dumps({k: result[k] for k in result if k != "machine"}))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
