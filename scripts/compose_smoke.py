"""The user's flow against a running `docker compose` stack, with the checks of issue 11.

Called by scripts/compose-smoke.sh once both images are built; standard library only, since
it runs on the Docker host, outside the project's virtual environment:

    python3 scripts/compose_smoke.py --compose "docker compose -p ner-smoke -f docker-compose.yml" \
        --api http://127.0.0.1:18000 --project ner-smoke --result var/compose-smoke/result.json

From a fresh `up` (no volumes): upload a dataset, train a small model, poll it to
`succeeded`, `/predict` with exact offsets, a bulk job with `restart worker` while it runs
and its results, a second model and its promotion, then `down` and `up` again and find it all
still there. Along the way: health checks, non-root containers, one migration run.
Prints what it does and writes the timings and checks as JSON; exits 1 at the first failure.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GMB = ROOT / "data" / "gmb-ner.zip"
# Services built from this repository (non-root checks) and those with a health check.
OUR_SERVICES = ("api", "worker")
HEALTHY_SERVICES = ("postgres", "redis", "minio", "api", "worker")
SAMPLE = (
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday, and the United Nations said "
    "Iraq agreed."
)
# Offsets must hold for any input: non-ASCII, combining marks, tabs, repeated spaces.
# A model that finds entities after about a minute on 2 busy cores: one epoch over a few
# hundred sentences, in small batches with a high learning rate (test F1 about 0.4).
SMALL_MODEL = {"epochs": 1, "batch_size": 8, "learning_rate": 5e-4}
AWKWARD = "  Ärzte\u00a0in  São Paulo\tand  Zürich  met   Mr.  Müller on Friday .\n\nBritain  too."


class SmokeFailure(Exception):
    pass


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def check(condition: bool, what: str, detail: Any = "") -> None:
    if not condition:
        raise SmokeFailure(f"{what}{': ' if detail != '' else ''}{detail}")
    RESULT["checks"].append(what)
    log(f"ok: {what}")


RESULT: dict[str, Any] = {"checks": [], "timings_s": {}}


def timing(name: str, seconds: float) -> None:
    RESULT["timings_s"][name] = round(seconds, 3 if seconds < 1 else 1)
    log(f"time: {name} {seconds:.3g} s")


# -- HTTP ---------------------------------------------------------------------------------------


class Api:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        files: dict[str, tuple[str, bytes]] | None = None,
        expect: tuple[int, ...] = (200,),
        timeout: float = 120,
    ) -> Any:
        # compose requires a key (NER_API_KEYS); the smoke generates one and sends it.
        headers = {"Authorization": f"Bearer {os.environ['NER_API_KEYS'].split(',')[0]}"}
        data = None
        if files is not None:
            boundary = uuid.uuid4().hex
            parts = []
            for field, (filename, content) in files.items():
                head = (
                    f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
                    f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                )
                parts.append(head.encode() + content + b"\r\n")
            data = b"".join(parts) + f"--{boundary}--\r\n".encode()
            headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        if status not in expect:
            raise SmokeFailure(f"{method} {path}: HTTP {status} {raw[:500]!r}")
        return json.loads(raw) if raw else None

    def answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.base + path, timeout=3) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_job(self, job_id: str, timeout: float, until: tuple[str, ...] = ()) -> dict:
        """Poll a job until it ends (or reaches a status in `until`)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.call("GET", f"/jobs/{job_id}")
            if job["status"] in ("succeeded", "failed", "cancelled", *until):
                return job
            if time.monotonic() > deadline:
                raise SmokeFailure(f"job {job_id} still {job['status']} after {timeout:.0f} s")
            time.sleep(1)


# -- Docker -------------------------------------------------------------------------------------


class Stack:
    def __init__(self, compose: list[str], project: str) -> None:
        self.compose_cmd = compose
        self.project = project

    def compose(self, *args: str) -> None:
        log("$ " + shlex.join([*self.compose_cmd, *args]))
        subprocess.run([*self.compose_cmd, *args], check=True)

    @staticmethod
    def docker(*args: str) -> str:
        return subprocess.run(
            ["docker", *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    def containers(self, service: str) -> list[str]:
        """All containers of a service, running or exited (the same labels in compose v1 and v2)."""
        out = self.docker(
            "ps", "-a", "-q", "--no-trunc",
            "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
        )  # fmt: skip
        return out.split()

    def container(self, service: str) -> str:
        ids = self.containers(service)
        if len(ids) != 1:
            raise SmokeFailure(f"expected one {service} container, found {len(ids)}")
        return ids[0]

    def inspect(self, cid: str, template: str) -> str:
        return self.docker("inspect", "-f", template, cid)

    def logs(self, service: str) -> str:
        cid = self.container(service)
        done = subprocess.run(["docker", "logs", cid], capture_output=True, text=True, check=True)
        return done.stdout + done.stderr

    def health(self, service: str) -> str:
        ids = self.containers(service)
        if not ids:
            return "missing"
        return self.inspect(ids[0], "{{if .State.Health}}{{.State.Health.Status}}{{end}}")

    def psql(self, sql: str) -> str:
        cid = self.container("postgres")
        return self.docker(
            "exec", cid, "sh", "-c", f'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "{sql}"'
        )


def up_until_healthy(stack: Stack, api: Api, label: str) -> None:
    started = time.monotonic()
    stack.compose("up", "-d", "--no-build")
    answered = None
    deadline = started + 600
    while True:
        now = time.monotonic()
        if answered is None and api.answers("/readyz"):
            answered = now - started
        states = {s: stack.health(s) for s in HEALTHY_SERVICES}
        if all(v == "healthy" for v in states.values()):
            break
        if any(v == "unhealthy" for v in states.values()) or now > deadline:
            raise SmokeFailure(f"{label}: not healthy: {states}")
        time.sleep(1)
    timing(f"{label}: up to /readyz answering", answered or time.monotonic() - started)
    timing(f"{label}: up to every health check healthy", time.monotonic() - started)
    check(True, f"{label}: health checks of {', '.join(HEALTHY_SERVICES)} turn healthy")


# -- data ---------------------------------------------------------------------------------------


def gmb_rows(count: int) -> list[tuple[str, str]]:
    """The first `count` well-formed (text, labels) rows of the bundled GMB data."""
    with zipfile.ZipFile(GMB) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".csv"))
        reader = csv.DictReader(io.TextIOWrapper(zf.open(name), encoding="utf-8"))
        rows = []
        for row in reader:
            if len(row["text"].split()) == len(row["labels"].split()):
                rows.append((row["text"], row["labels"]))
                if len(rows) == count:
                    break
    return rows


def csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "labels"])
    writer.writerows(rows)
    return out.getvalue().encode()


def assert_offsets(text: str, entities: list[dict], what: str) -> None:
    for e in entities:
        ok = 0 <= e["start"] < e["end"] <= len(text) and text[e["start"] : e["end"]] == e["text"]
        if not ok:
            raise SmokeFailure(f"{what}: entity {e} does not match the text {text!r}")


# -- the flow -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    api = Api(args.api)
    stack = Stack(shlex.split(args.compose), args.project)

    log("fresh start: down -v (no volumes left from an earlier run)")
    stack.compose("down", "-v", "--remove-orphans")
    up_until_healthy(stack, api, "first up")

    # Non-root: every process in our containers, and the image's configured user.
    for service in OUR_SERVICES:
        cid = stack.container(service)
        # (`docker top` needs the pid column.)
        top = stack.docker("top", cid, "-eo", "pid,uid,args").splitlines()[1:]
        uids = {line.split()[1] for line in top}
        check(
            bool(top) and "0" not in uids,
            f"{service}: every process runs as non-root (uids {sorted(uids)})",
            top,
        )
    migrate = stack.container("migrate")
    user = stack.inspect(migrate, "{{.Config.User}}")
    check(user not in ("", "0", "root"), f"migrate: runs as user {user!r}")

    # One migration run: the one-shot service ran and exited 0 once, upgraded the empty
    # database; the api found the schema current.
    exit_code = stack.inspect(migrate, "{{.State.ExitCode}} {{.RestartCount}}")
    check(exit_code == "0 0", "migrate: one container, exited 0, never restarted", exit_code)
    check("Running upgrade" in stack.logs("migrate"), "migrate: applied the migrations")
    check("Running upgrade" not in stack.logs("api"), "api: found the schema current")
    versions = stack.psql("SELECT count(*) FROM alembic_version")
    check(versions == "1", "database: one alembic_version row", versions)

    # Upload.
    rows = gmb_rows(args.train_rows + args.bulk_docs)
    train_rows, bulk_rows = rows[: args.train_rows], rows[args.train_rows :]
    t0 = time.monotonic()
    dataset = api.call(
        "POST", "/datasets", files={"file": ("smoke.csv", csv_bytes(train_rows))}, expect=(201,)
    )
    timing(f"upload (dataset of {len(train_rows)} sentences)", time.monotonic() - t0)
    check(dataset["sentences"] == len(train_rows), "upload: every sentence read", dataset)

    # Train, poll to succeeded.
    t0 = time.monotonic()
    job = api.call(
        "POST",
        "/jobs/train",
        {
            "dataset_id": dataset["id"],
            **SMALL_MODEL,
            "max_sentences": args.max_sentences,
            "seed": 7,
        },
        expect=(202,),
    )
    job = api.wait_job(job["id"], timeout=1200)
    timing(f"train (1 epoch, {args.max_sentences} sentences) to succeeded", time.monotonic() - t0)
    check(job["status"] == "succeeded", "train: job succeeded", job)
    train_job, version1 = job, job["model_version"]
    RESULT["model_f1"] = job["metrics"]["f1"]
    log(f"model {version1}: test f1 {job['metrics']['f1']:.3f}")

    # /predict with exact offsets (the first model goes to production by itself).
    t0 = time.monotonic()
    while True:
        answer = api.call("POST", "/predict", {"text": SAMPLE}, expect=(200, 503))
        if answer.get("model_version") == version1:
            break
        if time.monotonic() - t0 > 30:
            raise SmokeFailure(f"/predict does not serve {version1} after 30 s: {answer}")
        time.sleep(0.5)
    timing("train succeeded to /predict serving the model", time.monotonic() - t0)
    sample_entities = answer["entities"]
    log(f"/predict: {[(e['text'], e['label']) for e in sample_entities]}")
    check(len(sample_entities) > 0, "/predict: finds entities in the sample")
    assert_offsets(SAMPLE, sample_entities, "/predict")
    awkward = api.call("POST", "/predict", {"texts": [AWKWARD, SAMPLE]})
    for text, result in zip([AWKWARD, SAMPLE], awkward["results"], strict=True):
        assert_offsets(text, result["entities"], "/predict texts")
    check(True, "/predict: text == input[start:end] for every entity, Unicode and spacing too")
    latencies = []
    for _ in range(20):
        t = time.monotonic()
        api.call("POST", "/predict", {"text": SAMPLE})
        latencies.append(time.monotonic() - t)
    timing("/predict one sentence, median of 20", statistics.median(latencies))

    # Bulk job, with the worker restarted while it runs.
    docs = [{"id": f"doc-{i:05d}", "text": text} for i, (text, _) in enumerate(bulk_rows)]
    t0 = time.monotonic()
    bulk = api.call("POST", "/jobs/predict", {"documents": docs}, expect=(202,))
    timing(f"bulk: submit {len(docs)} documents", time.monotonic() - t0)
    while True:
        state = api.call("GET", f"/jobs/{bulk['id']}")
        if state["status"] == "running" and state["progress"] >= args.restart_at:
            break
        if state["status"] in ("succeeded", "failed", "cancelled"):
            raise SmokeFailure(
                f"the bulk job ended ({state['status']}) before the restart: use more documents"
            )
        time.sleep(0.2)
    RESULT["bulk_progress_at_restart"] = state["progress"]
    t_restart = time.monotonic()
    stack.compose("restart", "worker")
    timing("bulk: `restart worker` command", time.monotonic() - t_restart)
    # Celery's warm shutdown lets the running task go on; a job that outlasts the worker's
    # stop_grace_period is killed with it, and the restarted worker takes it up again once its
    # heartbeat is stale (NER_STALE_JOB_SECONDS), skipping the chunks already stored.
    state = api.call("GET", f"/jobs/{bulk['id']}")
    interrupted = state["status"] == "running"
    RESULT["bulk_progress_after_restart"] = state["progress"]
    RESULT["bulk_killed_mid_job"] = interrupted
    log(
        f"bulk job right after the restart: {state['status']}, progress {state['progress']:.2f}"
        + (" (the worker was killed mid-job)" if interrupted else " (finished in the grace period)")
    )
    bulk_done = api.wait_job(bulk["id"], timeout=1200)
    timing("bulk: submit to succeeded (restart included)", time.monotonic() - t0)
    timing("bulk: restart to succeeded", time.monotonic() - t_restart)
    check(bulk_done["status"] == "succeeded", "bulk: job succeeded after the worker restart")
    results = fetch_results(api, bulk["id"])
    ids = [r["document_id"] for r in results]
    check(
        ids == [d["id"] for d in docs],
        f"bulk: every one of {len(docs)} documents has exactly one result, in order",
        f"{len(ids)} results, {len(set(ids))} distinct",
    )
    for doc, result in zip(docs, results, strict=True):
        assert_offsets(doc["text"], result["entities"], f"bulk {doc['id']}")
    check(True, "bulk: exact offsets in every result")
    stored = stack.psql(f"SELECT count(*) FROM job_results WHERE job_id = '{bulk['id']}'")
    check(stored == str(len(docs)), "bulk: one result row per document in the database", stored)
    check(len(stack.containers("migrate")) == 1, "migrate: not run again by the restart")

    # A second model, then promotion of whichever is not in production.
    t0 = time.monotonic()
    job2 = api.call(
        "POST",
        "/jobs/train",
        {"dataset_id": dataset["id"], **SMALL_MODEL, "max_sentences": args.max_sentences // 4},
        expect=(202,),
    )
    job2 = api.wait_job(job2["id"], timeout=1200)
    timing("second train to succeeded", time.monotonic() - t0)
    check(job2["status"] == "succeeded", "second train: job succeeded", job2)
    models = {m["version"]: m for m in api.call("GET", "/models")["items"]}
    candidate = next(v for v, m in models.items() if m["stage"] != "production")
    t0 = time.monotonic()
    promoted = api.call("POST", f"/models/{candidate}/promote")
    check(promoted["stage"] == "production", f"promote: {candidate} is in production")
    while api.call("POST", "/predict", {"text": SAMPLE})["model_version"] != candidate:
        if time.monotonic() - t0 > 10:
            raise SmokeFailure(f"/predict does not serve {candidate} 10 s after the promotion")
        time.sleep(0.2)
    timing("promote to /predict serving it", time.monotonic() - t0)
    check(True, "promote: /predict serves the promoted model with no restart")
    served = api.call("POST", "/predict", {"text": SAMPLE})

    # down && up: everything is in the named volumes.
    t0 = time.monotonic()
    stack.compose("down")
    timing("down", time.monotonic() - t0)
    up_until_healthy(stack, api, "second up")
    check(
        "Running upgrade" not in stack.logs("migrate"),
        "migrate: ran once more on `up` and found nothing to do",
    )
    again = api.call("GET", f"/datasets/{dataset['id']}")
    check(again["sentences"] == len(train_rows), "after down/up: the dataset is there")
    job_again = api.call("GET", f"/jobs/{train_job['id']}")
    check(
        job_again["status"] == "succeeded" and job_again["model_version"] == version1,
        "after down/up: the training job is there",
    )
    check(
        [r["document_id"] for r in fetch_results(api, bulk["id"])] == ids,
        "after down/up: the bulk job's results are there",
    )
    models_again = {m["version"]: m["stage"] for m in api.call("GET", "/models")["items"]}
    check(
        set(models_again) == set(models) and models_again[candidate] == "production",
        "after down/up: both models, the promoted one in production",
        models_again,
    )
    t0 = time.monotonic()
    while True:
        answer = api.call("POST", "/predict", {"text": SAMPLE}, expect=(200, 503))
        if answer.get("model_version") == candidate:
            break
        if time.monotonic() - t0 > 60:
            raise SmokeFailure(f"/predict after down/up: {answer}")
        time.sleep(0.5)
    check(
        answer["entities"] == served["entities"],
        "after down/up: /predict gives the same entities (model files read back from S3)",
    )


def fetch_results(api: Api, job_id: str) -> list[dict]:
    items: list[dict] = []
    while True:
        page = api.call("GET", f"/jobs/{job_id}/results?offset={len(items)}&limit=1000")
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            return items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compose", required=True, help="compose command with -p and -f options")
    parser.add_argument("--project", required=True, help="the compose project name")
    parser.add_argument("--api", required=True, help="the API's published URL")
    parser.add_argument("--result", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--max-sentences", type=int, default=500)
    parser.add_argument("--bulk-docs", type=int, default=12000)
    parser.add_argument(
        "--restart-at", type=float, default=0.05, help="bulk progress at which to restart"
    )
    args = parser.parse_args()
    started = time.monotonic()
    RESULT["date_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # Timings depend on what else the host runs: note its load around the run.
    RESULT["load_average_1min"] = {"start": round(os.getloadavg()[0], 1)}
    RESULT["cpus"] = os.cpu_count()
    try:
        run(args)
        RESULT["ok"] = True
    except (SmokeFailure, subprocess.CalledProcessError) as exc:
        RESULT["ok"] = False
        RESULT["failure"] = str(exc)
        log(f"FAILED: {exc}")
    RESULT["timings_s"]["flow total"] = round(time.monotonic() - started, 1)
    RESULT["load_average_1min"]["end"] = round(os.getloadavg()[0], 1)
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(RESULT, indent=2) + "\n")
    return 0 if RESULT["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
