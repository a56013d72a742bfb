"""The training job: dataset from the object store → core `train` → model registered and
maybe promoted. No ML logic here; the core does the work."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from shared import jobs, registry
from shared.db import Dataset as DatasetRow
from shared.db import Job, session_scope
from shared.model_files import fetch_model_dir
from shared.ner import (
    Dataset,
    Predictor,
    Progress,
    TrainConfig,
    TrainingCancelled,
    evaluate,
    read_dataset,
    split_dataset,
    train,
)
from shared.ner.basemodel import DEFAULT_BASE_MODEL_NAME
from shared.storage import upload_dir
from worker.context import WorkerContext
from worker.tasks import JobCancelled

log = logging.getLogger(__name__)

# Share of the job's progress bar the core's training takes; the rest is data loading,
# upload and registration.
TRAIN_SHARE = (0.05, 0.9)
# Job parameters passed on to the core's TrainConfig when given.
CONFIG_KEYS = (
    "base_model",
    "epochs",
    "seed",
    "learning_rate",
    "batch_size",
    "max_sentences",
    "patience",
)


# Loss points kept in a job's history: past this, every other point is dropped and the
# sampling stride doubles, so a long run keeps its whole curve in a few hundred points.
MAX_LOSS_POINTS = 400


class TrainingHistory:
    """Loss by step (thinned) and validation scores by epoch, for the job's curves."""

    def __init__(self) -> None:
        self.loss: list[dict[str, Any]] = []
        self.validation: list[dict[str, Any]] = []
        self.stride = 1

    def add(self, p: Progress) -> None:
        if p.stage == "training" and p.loss is not None and p.step % self.stride == 0:
            self.loss.append(
                {"step": p.step, "epoch": self._epoch(p), "loss": round(float(p.loss), 5)}
            )
            if len(self.loss) > MAX_LOSS_POINTS:
                self.loss = self.loss[::2]
                self.stride *= 2
        if p.stage == "evaluated" and p.metrics is not None:
            self.validation.append(
                {"epoch": p.epoch, **{k: p.metrics.get(k) for k in ("f1", "precision", "recall")}}
            )

    @staticmethod
    def _epoch(p: Progress) -> float:
        """Fractional epoch of a step (1.5: half-way through the second epoch)."""
        per_epoch = p.total_steps / p.epochs if p.epochs and p.total_steps else 0
        return round(p.step / per_epoch, 3) if per_epoch else float(p.epoch)

    def as_dict(self) -> dict[str, Any] | None:
        if not self.loss and not self.validation:
            return None
        return {"loss": list(self.loss), "validation": list(self.validation)}


class ProgressRecorder:
    """The core's progress callback: writes progress to the job row every few seconds and
    stops the training (TrainingCancelled) once the row says `cancelling`."""

    def __init__(self, ctx: WorkerContext, job_id: str) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.last_write = 0.0
        self.last_check = 0.0
        self.progress = 0.0
        self.history = TrainingHistory()

    def stage(self, stage: str, progress: float) -> None:
        self._write(progress=progress, stage=stage, eta=None, metrics=None)

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        self.history.add(p)
        # An epoch's validation scores are written at once: the curve gains its point.
        due = now - self.last_write >= self.ctx.settings.progress_interval_seconds
        if due or p.stage == "evaluated":
            start, end = TRAIN_SHARE
            live: dict[str, Any] = {
                k: v
                for k, v in {
                    "epoch": p.epoch,
                    "step": p.step,
                    "total_steps": p.total_steps,
                    "loss": p.loss,
                    # The core's metrics: an epoch's validation scores, then the test's.
                    ("test" if p.stage == "tested" else "validation"): p.metrics,
                }.items()
                if v is not None
            }
            live["history"] = self.history.as_dict()
            self._write(
                progress=start + (end - start) * p.fraction,
                stage=p.stage,
                eta=p.eta_seconds,
                metrics=live,
            )
        elif now - self.last_check >= self.ctx.settings.cancel_check_seconds:
            self.last_check = now
            with session_scope(self.ctx.sessions) as session:
                status = jobs.current_status(session, self.job_id)
            self._stop_if_cancelled(status)

    def _write(
        self, *, progress: float, stage: str, eta: float | None, metrics: dict[str, Any] | None
    ) -> None:
        self.last_write = self.last_check = time.monotonic()
        # Never backwards for the user, whatever order the core's stages report in.
        progress = self.progress = max(self.progress, progress)
        with session_scope(self.ctx.sessions) as session:
            status = jobs.record_progress(
                session,
                self.job_id,
                progress=progress,
                stage=stage,
                eta_seconds=eta,
                metrics=metrics,
            )
        self._stop_if_cancelled(status)

    def _stop_if_cancelled(self, status: str) -> None:
        if status != "running":
            raise TrainingCancelled(f"job {self.job_id} is {status}")


def run_training(ctx: WorkerContext, job_id: str) -> None:
    with session_scope(ctx.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None  # claimed just before
        existing = registry.model_for_job(session, job_id)
        if existing is not None:
            # A redelivery after the model was registered: record the end, train nothing.
            jobs.finish(
                session,
                job_id,
                "succeeded",
                metrics=existing.metrics,
                model_version=existing.version,
            )
            return
        params = dict(job.params or {})
        version = registry.version_for_job(job)
        dataset_id = job.dataset_id
        wanted = {"train": dataset_id}
        for name in ("validation", "test"):
            if params.get(f"{name}_dataset_id"):
                wanted[name] = params[f"{name}_dataset_id"]
        sources: dict[str, tuple[str, str, bool]] = {}
        for name, wanted_id in wanted.items():
            row = session.get(DatasetRow, wanted_id)
            if row is None:
                raise LookupError(f"{name} dataset {wanted_id} no longer exists")
            sources[name] = (row.object_key, row.format, row.skip_invalid)

    recorder = ProgressRecorder(ctx, job_id)
    recorder.stage("loading data", 0.01)
    work = Path(tempfile.mkdtemp(prefix=f"train-{job_id}-", dir=_work_dir(ctx)))
    try:
        data = {name: _load(ctx, work, *source) for name, source in sources.items()}
        seed = int(params.get("seed", 42))
        train_ds, validation, test = _splits(data, seed)
        test_key = (
            f"dataset:{params['test_dataset_id']}"
            if "test" in data
            else f"split:{dataset_id}:seed={seed}"
        )
        if params.get("base_model") is None and ctx.settings.base_model:
            params["base_model"] = ctx.settings.base_model
        config = TrainConfig(**{k: params[k] for k in CONFIG_KEYS if params.get(k) is not None})
        recorder.stage("training", TRAIN_SHARE[0])
        try:
            result = train(
                train_ds,
                work / "model",
                config,
                validation=validation,
                test=test,
                callback=recorder,
            )
        except TrainingCancelled as exc:
            raise JobCancelled(str(exc)) from exc

        recorder.stage("uploading model", 0.92)
        manifest_key, manifest_sha = upload_dir(ctx.store, f"models/{version}", result.model_dir)
        labels = registry.labels_of_model_dir(result.model_dir)
        recorder.stage("comparing with production", 0.96)
        production_f1 = _production_f1_on(ctx, test, test_key)
        f1 = float(result.metrics.get("f1", 0.0))
        with session_scope(ctx.sessions) as session:
            registry.register(
                session,
                version=version,
                job_id=job_id,
                base_model=params.get("base_model") or DEFAULT_BASE_MODEL_NAME,
                labels=labels,
                metrics=result.metrics,
                manifest_key=manifest_key,
                manifest_sha256=manifest_sha,
                test_data_key=test_key,
            )
            if registry.beats(f1, production_f1):
                registry.promote(session, version)
                log.info("model %s promoted (f1 %.4f vs %s)", version, f1, production_f1)
            metrics = dict(result.metrics)
            if result.validation_metrics is not None:
                metrics["validation"] = result.validation_metrics
            metrics["history"] = recorder.history.as_dict()
            jobs.finish(session, job_id, "succeeded", metrics=metrics, model_version=version)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _work_dir(ctx: WorkerContext) -> Path:
    path = (ctx.settings.data_dir / "work").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load(ctx: WorkerContext, work: Path, key: str, fmt: str, skip_invalid: bool) -> Dataset:
    """The stored upload, read as it was validated (same format, same skip_invalid)."""
    local = work / "data" / key.rsplit("/", 1)[-1]
    ctx.store.get_file(key, local)
    return read_dataset(local, format=fmt, skip_invalid=skip_invalid)


def _splits(data: dict[str, Dataset], seed: int) -> tuple[Dataset, Dataset, Dataset]:
    """The given validation/test sets; a seeded 80/10/10 split fills in what is missing."""
    if "validation" in data and "test" in data:
        return data["train"], data["validation"], data["test"]
    train_part, validation, test = split_dataset(data["train"], seed)
    return train_part, data.get("validation", validation), data.get("test", test)


def _production_f1_on(ctx: WorkerContext, test: Dataset, test_key: str) -> float | None:
    """The production model's F1 on this job's test data (None: no production model).

    Stored metrics answer when they were computed on the same test data; otherwise the
    production model is scored on it here, so the comparison is always like for like.
    """
    with session_scope(ctx.sessions) as session:
        prod = registry.production_model(session)
        if prod is None:
            return None
        if prod.test_data_key == test_key:
            return float(prod.metrics.get("f1", 0.0))
        version, key, sha = prod.version, prod.manifest_key, prod.manifest_sha256
    model_dir = fetch_model_dir(ctx.store, ctx.settings.model_cache_dir, version, key, sha)
    return float(evaluate(Predictor.load(model_dir), test).get("f1", 0.0))
