"""Bulk speed end to end: a bulk job and `ner predict` on JSONL against the stock pipeline.

The goal (issue): a bulk job of 10,000 documents (words/s from submission to the last
result stored) and `ner predict` on JSONL each reach >= 5x the words/s of
`transformers.pipeline("token-classification", aggregation_strategy="simple",
batch_size=32)`, same model and texts, same machine, with F1 within 0.3.

Texts: `--documents` N documents (ids d1..dN), the CoNLL-2003 validation sentences'
texts, cycled (3,250 sentences) until there are N. Words: the sentences' words.

- baseline: the stock pipeline in this process, timed over the first
  `--baseline-documents` texts (words/s is a rate: a prefix measures it; 0 = all N),
  after an untimed pass over the validation sentences that warms it up and gives its F1.
- cli: `ner predict --model MODEL < docs.jsonl > out.jsonl` in a subprocess, timed end
  to end: process start, imports, model load, reading stdin, tagging, writing stdout.
  The time to its first output line (load + the first 256 documents) is reported too.
- service: one `POST /jobs/predict` of the N documents to a RUNNING service whose
  production model is MODEL (registered: see --register), timed from just before the
  request is sent until a poll of `GET /jobs/{id}` (every --poll s) sees it finished;
  the job ends after its last chunk of results is stored, so this includes the upload,
  validation and storing of the documents, the queue, the worker's run (the model
  download and load too when the worker has not loaded it yet: --warmup-documents runs a
  small job first so it has, as on a service in use; 0 times a cold worker) and every
  result write. The server's own created_at → finished_at is reported beside it. Then the
  results are paged back (`GET /jobs/{id}/results?offset=&limit=1000`), checked (N
  results, every id once) and scored.

Each round runs baseline, cli, baseline, service (the parts asked for); each part's
ratio is against the baseline timed just before it. F1 (seqeval, as speed.py) is on the
validation sentences (ids d1..d3250) for the pipeline and each part.

CLI part only (no servers needed):

    python benchmarks/bulk_speed.py --part cli --model runs/conll

Service part: the real servers, the API and a worker (each its own terminal or &):

    scripts/services.sh start
    source <(scripts/services.sh env)          # NER_DATABASE_URL, NER_BROKER_URL, ...
    ner api --port 8000                         # applies the migrations, then serves
    ner worker                                  # in another shell with the same env
    # with keys configured, a key with the train scope (admin also gets /readyz's
    # details: the served backend):  ner keys create --name bench --scopes admin
    python benchmarks/bulk_speed.py --part service --model runs/conll \\
        --url http://127.0.0.1:8000 --api-key "$TOKEN" --register runs/conll

`--register DIR` (needs the same NER_* environment) uploads DIR to the object store and
registers and promotes it through the service layer before the benchmark; leave it out
when the model is already the production model. Both parts, the full run:

    benchmarks/run-prioritised.sh python benchmarks/bulk_speed.py --model runs/conll \\
        --url http://127.0.0.1:8000 --api-key "$TOKEN" [--register runs/conll]

Writes benchmarks/results/<--name>.json (machine, CPU flags, backends, rounds) and prints
one summary JSON line on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, entities_to_tags, machine, write_result
from shared.ner import read_dataset, score
from shared.ner.formats import Sentence

# The `ner` installed beside this Python, so the script works without an activated venv.
_beside = Path(sys.executable).with_name("ner")
NER = str(_beside) if _beside.exists() else "ner"
GOAL_RATIO = 5.0
GOAL_F1_POINTS = 0.3
RESULTS_PAGE = 1000  # the results route's largest page
FINISHED = {"succeeded", "failed", "cancelled"}


def log(message: str) -> None:
    print(f"[bulk_speed {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- texts and scoring ------------------------------------------------------------------


class Corpus:
    """N documents cycled from the validation sentences; the first pass is scored."""

    def __init__(self, path: str, n: int) -> None:
        self.sentences: list[Sentence] = read_dataset(path).sentences
        if not self.sentences:
            raise SystemExit(f"{path}: no sentences")
        count = len(self.sentences)
        self.ids = [f"d{i + 1}" for i in range(n)]
        self.texts = [self.sentences[i % count].text for i in range(n)]
        self.word_counts = [len(self.sentences[i % count].words) for i in range(n)]
        self.words = sum(self.word_counts)
        # Scored: one pass over the validation sentences (or the first N, if fewer).
        self.scored = min(n, count)

    def f1(self, entities_by_id: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        gold, predicted, missing = [], [], 0
        for i in range(self.scored):
            sentence = self.sentences[i]
            ents = entities_by_id.get(self.ids[i])
            if ents is None:
                missing += 1
                ents = []
            gold.append(sentence.tags)
            predicted.append(entities_to_tags(sentence, ents))
        scores = score(gold, predicted)
        return {
            "f1": scores["f1"],
            "precision": scores["precision"],
            "recall": scores["recall"],
            "sentences": self.scored,
            "missing_documents": missing,
        }


# -- the stock pipeline -----------------------------------------------------------------


class Baseline:
    def __init__(self, model: str, corpus: Corpus, documents: int) -> None:
        from transformers import pipeline
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        self.pipe = pipeline(
            "token-classification",
            model=model,
            aggregation_strategy="simple",
            batch_size=32,
            device=-1,
        )
        self.corpus = corpus
        self.documents = min(documents, len(corpus.texts)) if documents > 0 else len(corpus.texts)
        self.words = sum(corpus.word_counts[: self.documents])

    def warm_and_score(self) -> tuple[dict[str, Any], float]:
        """Untimed as a rate (first calls allocate and pick kernels): the F1 pass."""
        texts = self.corpus.texts[: self.corpus.scored]
        t0 = time.perf_counter()
        outputs = self.pipe(texts)
        seconds = time.perf_counter() - t0
        by_id = {self.corpus.ids[i]: list(ents) for i, ents in enumerate(_as_lists(outputs, texts))}
        return self.corpus.f1(by_id), seconds

    def timed(self) -> dict[str, Any]:
        texts = self.corpus.texts[: self.documents]
        t0 = time.perf_counter()
        self.pipe(texts)
        seconds = time.perf_counter() - t0
        return {
            "documents": self.documents,
            "words": self.words,
            "seconds": round(seconds, 3),
            "words_per_second": round(self.words / seconds, 1),
        }


def _as_lists(outputs: Any, texts: list[str]) -> list[list[dict[str, Any]]]:
    # One text gives a flat list of entities; several give a list per text.
    if len(texts) == 1 and (not outputs or isinstance(outputs[0], dict)):
        return [outputs]
    return list(outputs)


# -- ner predict ------------------------------------------------------------------------


def write_jsonl(corpus: Corpus, path: Path) -> int:
    with path.open("w", encoding="utf-8") as f:
        for doc_id, text in zip(corpus.ids, corpus.texts, strict=True):
            f.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=False) + "\n")
    return path.stat().st_size


def run_cli(model: str, extra: list[str], jsonl: Path, work: Path, corpus: Corpus) -> dict:
    out_path, err_path = work / "out.jsonl", work / "cli-stderr.txt"
    cmd = [NER, "predict", "--model", model, *extra]
    log(f"$ {' '.join(cmd)} < {jsonl} > {out_path}")
    first_line: float | None = None
    with jsonl.open("rb") as fin, out_path.open("wb") as fout, err_path.open("wb") as ferr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=fin, stdout=subprocess.PIPE, stderr=ferr)
        assert proc.stdout is not None
        for line in proc.stdout:
            if first_line is None:
                first_line = time.perf_counter() - t0
            fout.write(line)
        rc = proc.wait()
        seconds = time.perf_counter() - t0
    if rc != 0:
        tail = err_path.read_text(errors="replace")[-2000:]
        raise SystemExit(f"ner predict exited {rc}:\n{tail}")
    by_id: dict[str, list[dict[str, Any]]] = {}
    lines = 0
    for raw in out_path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            obj = json.loads(raw)
            by_id[str(obj["id"])] = obj["entities"]
            lines += 1
    missing = sum(1 for doc_id in corpus.ids if doc_id not in by_id)
    return {
        "command": " ".join(cmd) + " < docs.jsonl > out.jsonl",
        "seconds": round(seconds, 3),
        "seconds_to_first_output_line": round(first_line, 3) if first_line else None,
        "words_per_second": round(corpus.words / seconds, 1),
        "output_lines": lines,
        "distinct_ids": len(by_id),
        "missing_ids": missing,
        "all_documents_back": lines == len(corpus.ids) and missing == 0,
        "accuracy": corpus.f1(by_id),
    }


# -- the service ------------------------------------------------------------------------


class Service:
    def __init__(self, url: str, api_key: str | None, poll: float) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=600)
        self.poll = poll

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params=params or None)
        if r.status_code != 200:
            raise SystemExit(f"GET {path}: {r.status_code} {r.text[:500]}")
        return r.json()

    def describe(self) -> dict[str, Any]:
        """The production model, the backend /predict serves with (admin key), its serving."""
        ready = self.client.get("/readyz").json()
        info: dict[str, Any] = {
            "readyz_status": ready.get("status"),
            "api_model_version": ready.get("model_version"),
            # onnx-int8, onnx-fp32, torch-...: what the API process loaded (admin key or no
            # keys configured; the worker loads the same model with the same rule).
            "api_model_backend": ready.get("model_backend"),
        }
        models = self.get("/models", limit=100)
        production = [m for m in models.get("items", []) if m.get("stage") == "production"]
        if not production:
            raise SystemExit("the service has no production model: register one (--register)")
        info["production_version"] = production[0]["version"]
        serving = production[0].get("serving") or {}
        info["production_serving"] = serving.get("serve")
        return info

    def submit(self, corpus: Corpus, n: int, form: str) -> tuple[str, float]:
        docs = zip(corpus.ids[:n], corpus.texts[:n], strict=True)
        if form == "jsonl":
            body = "".join(
                json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in docs
            ).encode()
            t0 = time.perf_counter()
            r = self.client.post(
                "/jobs/predict", files={"file": ("docs.jsonl", body, "application/x-ndjson")}
            )
        else:
            body = json.dumps(
                {"documents": [{"id": i, "text": t} for i, t in docs]}, ensure_ascii=False
            ).encode()
            t0 = time.perf_counter()
            r = self.client.post(
                "/jobs/predict", content=body, headers={"content-type": "application/json"}
            )
        if r.status_code != 202:
            raise SystemExit(f"POST /jobs/predict: {r.status_code} {r.text[:1000]}")
        return r.json()["id"], t0

    def wait(self, job_id: str, t0: float) -> tuple[dict[str, Any], float, int]:
        polls = 0
        while True:
            job = self.get(f"/jobs/{job_id}")
            polls += 1
            if job["status"] in FINISHED:
                return job, time.perf_counter() - t0, polls
            time.sleep(self.poll)

    def results(self, job_id: str) -> tuple[list[dict[str, Any]], int]:
        items: list[dict[str, Any]] = []
        total = 0
        offset = 0
        while True:
            page = self.get(f"/jobs/{job_id}/results", offset=offset, limit=RESULTS_PAGE)
            total = page["total"]
            items.extend(page["items"])
            offset += len(page["items"])
            if not page["items"] or offset >= total:
                return items, total

    def run_job(self, corpus: Corpus, form: str) -> dict[str, Any]:
        n = len(corpus.ids)
        submit_start = time.perf_counter()
        job_id, t0 = self.submit(corpus, n, form)
        accepted = time.perf_counter() - t0
        log(f"job {job_id}: {n} documents accepted in {accepted:.2f} s; polling")
        job, seconds, polls = self.wait(job_id, t0)
        log(f"job {job_id}: {job['status']} after {seconds:.2f} s")
        if job["status"] != "succeeded":
            raise SystemExit(f"job {job_id} ended {job['status']}: {job.get('error')}")
        t1 = time.perf_counter()
        items, total = self.results(job_id)
        fetch = time.perf_counter() - t1
        by_id = {str(item["document_id"]): item["entities"] for item in items}
        missing = sum(1 for doc_id in corpus.ids if doc_id not in by_id)
        in_order = [item["index"] for item in items] == list(range(len(items)))
        created, started, finished = (
            _when(job.get(k)) for k in ("created_at", "started_at", "finished_at")
        )
        return {
            "job_id": job_id,
            "submit_form": form,
            "request_body_built_seconds": round(t0 - submit_start, 3),
            "seconds": round(seconds, 3),
            "words_per_second": round(corpus.words / seconds, 1),
            "submit_answered_seconds": round(accepted, 3),
            "polls": polls,
            "poll_interval_seconds": self.poll,
            "server_seconds_created_to_finished": _span(created, finished),
            "server_seconds_queued": _span(created, started),
            "server_seconds_started_to_finished": _span(started, finished),
            "job_metrics": job.get("metrics"),
            "model_version": job.get("model_version"),
            "results_total": total,
            "results_fetched": len(items),
            "results_fetch_seconds": round(fetch, 3),
            "distinct_ids": len(by_id),
            "missing_ids": missing,
            "results_in_input_order": in_order,
            "all_documents_back": total == n and len(items) == n and missing == 0,
            "accuracy": corpus.f1(by_id),
        }

    def warm_up(self, corpus: Corpus, n: int, form: str) -> dict[str, Any]:
        job_id, t0 = self.submit(corpus, n, form)
        job, seconds, _ = self.wait(job_id, t0)
        if job["status"] != "succeeded":
            raise SystemExit(f"warm-up job {job_id} ended {job['status']}: {job.get('error')}")
        log(f"warm-up job {job_id}: {n} documents in {seconds:.2f} s")
        return {"job_id": job_id, "documents": n, "seconds": round(seconds, 3)}


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _span(a: datetime | None, b: datetime | None) -> float | None:
    return round((b - a).total_seconds(), 3) if a and b else None


def register(model_dir: Path, version: str | None, *, promote: bool = True) -> dict[str, Any]:
    """Upload `model_dir`, register it and (unless told not to) promote it, with the NER_*
    environment's servers (a fresh local S3 server's bucket is made)."""
    from shared.db import session_scope
    from shared.migrate import upgrade_to_head
    from shared.ner.onnx_model import serving_report
    from shared.services import registry
    from shared.services.context import Services
    from shared.settings import Settings
    from shared.storage import upload_dir

    if not (model_dir / "config.json").is_file():
        raise SystemExit(f"{model_dir}: not a model directory (no config.json)")
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # embedded mode: SQLite there
    upgrade_to_head(settings.database_url)
    if version is None:
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", model_dir.resolve().name)[:30]
        version = f"bench-{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    services = Services.from_settings(settings)
    try:
        ensure = getattr(services.store, "ensure_bucket", None)
        if ensure is not None:
            ensure()  # a fresh local S3 server has no bucket yet
        t0 = time.perf_counter()
        manifest_key, manifest_sha = upload_dir(services.store, f"models/{version}", model_dir)
        uploaded = time.perf_counter() - t0
        metrics_file = model_dir / "metrics.json"
        training_file = model_dir / "training.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        training = json.loads(training_file.read_text()) if training_file.is_file() else {}
        serving = serving_report(model_dir)
        candidate = registry.Candidate(
            version=version,
            job_id=None,
            base_model=str(training.get("base_model") or "unknown")[:512],
            labels=registry.labels_of_model_dir(model_dir),
            metrics=metrics,
            manifest_key=manifest_key,
            manifest_sha256=manifest_sha,
            test_data_key=None,
            serving=serving,
        )
        with session_scope(services.sessions) as session:
            registry.register(session, candidate)
            if promote:
                registry.promote(session, version)
    finally:
        services.close()
    log(f"registered {'and promoted ' if promote else ''}{version} (upload {uploaded:.1f} s)")
    return {
        "version": version,
        "model_dir": str(model_dir),
        "upload_seconds": round(uploaded, 2),
        "serving": serving["serve"] if serving else None,
    }


def wait_for_api_model(service: Service, version: str, seconds: float = 60) -> None:
    """The API polls the registry every few seconds: wait until it serves `version` (only
    visible with an admin key or no keys; otherwise a short pause)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = service.client.get("/readyz").json()
        if "model_version" not in ready:
            time.sleep(5)
            return
        if ready["model_version"] == version:
            return
        time.sleep(0.5)
    log(f"the API did not switch to {version} within {seconds:.0f} s (continuing)")


# -- main -------------------------------------------------------------------------------


def cli_backend(model: str) -> str:
    from shared.ner.onnx_model import serving_report

    report = serving_report(model)
    serve = report.get("serve") if report else None
    return f"onnx-{serve}" if serve else "torch"


def summarise(kind: str, rounds: list[dict[str, Any]], pipeline_f1: float) -> dict[str, Any]:
    runs = [r[kind] for r in rounds if kind in r]
    ratios = [r[kind]["ratio"] for r in rounds if kind in r]
    f1 = runs[0]["accuracy"]["f1"]
    gap = round((f1 - pipeline_f1) * 100, 2)
    ratio = statistics.median(ratios)
    return {
        "words_per_second_median": round(statistics.median(r["words_per_second"] for r in runs)),
        "ratio_median": round(ratio, 2),
        "ratio_min": round(min(ratios), 2),
        "f1": f1,
        "f1_minus_pipeline_points": gap,
        "all_documents_back": all(r["all_documents_back"] for r in runs),
        "meets_goal": {
            "ratio": ratio >= GOAL_RATIO,
            # Ours may be better than the pipeline by any amount; not worse by over 0.3.
            "f1_not_below_pipeline_by_over_0_3": gap >= -GOAL_F1_POINTS,
            "f1_within_0_3_either_way": abs(gap) <= GOAL_F1_POINTS,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["cli", "service", "both"], default="both")
    parser.add_argument("--model", help="model directory (default: --register's)")
    parser.add_argument("--data", default=str(SHARED_DATA / "conll2003" / "valid.txt"))
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument(
        "--baseline-documents",
        type=int,
        default=2000,
        help="the pipeline is timed on this prefix of the texts (0: all)",
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--cli-arg",
        action="append",
        default=[],
        help="passed on to `ner predict` (repeat; e.g. --cli-arg=--batch-size=128)",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", help="sent as Authorization: Bearer (train scope)")
    parser.add_argument("--register", metavar="MODEL_DIR", help="upload, register, promote")
    parser.add_argument("--version", help="the version --register gives (default bench-...)")
    parser.add_argument("--submit", choices=["json", "jsonl"], default="json")
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between job polls")
    parser.add_argument(
        "--warmup-documents",
        type=int,
        default=32,
        help="a small job first, so the worker has the model loaded (0: time a cold worker)",
    )
    parser.add_argument("--name", default="bulk-speed")
    parser.add_argument("--note", default="", help="how the machine was loaded, etc.")
    args = parser.parse_args(argv)
    model = args.model or args.register
    if not model:
        parser.error("--model (or --register) is required")
    if args.documents < 1 or args.rounds < 1:
        parser.error("--documents and --rounds must be at least 1")
    parts = ["cli", "service"] if args.part == "both" else [args.part]

    start_machine = machine()
    result: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]),
        "machine": start_machine,
        "note": args.note,
        "model": model,
        "goal": f">= {GOAL_RATIO:g}x the pipeline's words/s, F1 within {GOAL_F1_POINTS} points",
    }

    service: Service | None = None
    if "service" in parts:
        service = Service(args.url, args.api_key, args.poll)
        if args.register:
            result["registered"] = register(Path(args.register), args.version)
            wait_for_api_model(service, result["registered"]["version"])
        result["service"] = {"url": args.url, **service.describe()}
        log(f"service: {result['service']}")

    corpus = Corpus(args.data, args.documents)
    result["texts"] = {
        "source": args.data,
        "documents": len(corpus.ids),
        "words": corpus.words,
        "cycled_from_sentences": len(corpus.sentences),
        "scored_sentences": corpus.scored,
    }
    log(f"{len(corpus.ids)} documents, {corpus.words} words; loading the pipeline")

    baseline = Baseline(model, corpus, args.baseline_documents)
    pipeline_acc, pass_seconds = baseline.warm_and_score()
    log(f"pipeline F1 {pipeline_acc['f1']} ({pass_seconds:.1f} s untimed pass)")
    result["pipeline"] = {
        "call": 'pipeline("token-classification", aggregation_strategy="simple", '
        "batch_size=32, device=-1)",
        "timed_on": f"the first {baseline.documents} of the {len(corpus.ids)} texts "
        f"({baseline.words} words); words/s is a rate, so the ratio compares rates",
        "accuracy": pipeline_acc,
    }
    if "cli" in parts:
        result["cli"] = {"backend": cli_backend(model), "extra_args": args.cli_arg}

    rounds: list[dict[str, Any]] = []
    warmup: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="bulk-speed-") as tmp:
        work = Path(tmp)
        jsonl = work / "docs.jsonl"
        if "cli" in parts:
            result["cli"]["input_bytes"] = write_jsonl(corpus, jsonl)
        for r in range(args.rounds):
            this: dict[str, Any] = {}
            for part in parts:
                base = baseline.timed()
                log(f"round {r + 1}: pipeline {base['words_per_second']:,.0f} w/s")
                if part == "cli":
                    measured = run_cli(model, args.cli_arg, jsonl, work, corpus)
                else:
                    assert service is not None
                    if warmup is None and args.warmup_documents > 0:
                        n = min(args.warmup_documents, len(corpus.ids))
                        warmup = service.warm_up(corpus, n, args.submit)
                        result["service"]["warmup_job"] = warmup
                    measured = service.run_job(corpus, args.submit)
                measured["baseline"] = base
                measured["ratio"] = round(
                    measured["words_per_second"] / base["words_per_second"], 3
                )
                log(
                    f"round {r + 1}: {part} {measured['words_per_second']:,.0f} w/s in "
                    f"{measured['seconds']:.1f} s, ratio {measured['ratio']:.2f}, "
                    f"F1 {measured['accuracy']['f1']}"
                )
                this[part] = measured
            rounds.append(this)
    result["rounds"] = rounds

    summary: dict[str, Any] = {
        "documents": len(corpus.ids),
        "words": corpus.words,
        "pipeline_words_per_second_median": round(
            statistics.median(r[p]["baseline"]["words_per_second"] for r in rounds for p in r)
        ),
        "pipeline_f1": pipeline_acc["f1"],
    }
    for part in parts:
        summary[part] = summarise(part, rounds, pipeline_acc["f1"])
    if "cli" in parts:
        summary["cli"]["backend"] = result["cli"]["backend"]
    if "service" in parts:
        summary["service"]["backend_api"] = result["service"]["api_model_backend"]
        summary["service"]["serving"] = result["service"]["production_serving"]
    result["summary"] = summary
    path = write_result(args.name, result)
    log(f"wrote {path}")
    print(json.dumps({"name": args.name, "machine_cpu": start_machine["cpu"], **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
