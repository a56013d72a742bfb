"""The training run of a job: datasets from the object store → the core's `train` → model
uploaded, registered and maybe promoted. No ML logic here; the core does the work, with
the same split policy and defaults as `ner train`."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from shared.db import Dataset as DatasetRow
from shared.db import session_scope
from shared.ner import (
    Dataset,
    Progress,
    TrainConfig,
    TrainingCancelled,
    evaluate,
    plan_splits,
    read_dataset,
    train,
)
from shared.ner.basemodel import DEFAULT_BASE_MODEL_NAME
from shared.ner.onnx_model import serving_report
from shared.services import jobs, registry
from shared.services.context import Services
from shared.services.execution import FINAL_WRITE_PATIENCE, JobCancelled, JobRun, is_transient
from shared.services.jobs import LostClaim
from shared.services.models import ModelRef
from shared.states import JobStatus
from shared.storage import (
    MANIFEST_NAME,
    ChecksumMismatch,
    ObjectNotFound,
    download_dir,
    upload_dir,
)

log = logging.getLogger(__name__)

# Share of the job's progress bar the core's training takes; the rest is data loading,
# upload and registration.
TRAIN_SHARE = (0.05, 0.9)


# Loss points a job keeps: a long run is thinned (every other point dropped) to stay under.
MAX_LOSS_POINTS = 400


class TrainingHistory:
    """The curves a job shows while it trains: loss by step, thinned to at most
    `max_points` (every other point dropped, and the sampling step doubled, when full), and
    validation scores by epoch; with a final fit, its own loss curve thinned the same way."""

    def __init__(self, max_points: int = MAX_LOSS_POINTS) -> None:
        self.max_points = max_points
        self.validation: list[dict[str, float]] = []
        # Loss points by curve: "loss" (the run that chooses the epochs) and "final_fit"
        # (training again on training + validation data, its steps counted from 1 again).
        self._curves: dict[str, list[dict[str, float]]] = {"loss": [], "final_fit": []}
        self._every = {"loss": 1, "final_fit": 1}

    def add(self, p: Progress) -> None:
        curve = {"training": "loss", "final fit": "final_fit"}.get(p.stage)
        if curve is not None and p.loss is not None:
            if p.step % self._every[curve]:
                return
            point: dict[str, float] = {"step": p.step}
            if curve == "loss":  # (a final fit's steps are not the chosen epochs' steps)
                steps_per_epoch = p.total_steps / max(p.epochs, 1)
                epoch = p.step / steps_per_epoch if steps_per_epoch else float(p.epoch)
                point["epoch"] = round(epoch, 3)
            point["loss"] = round(p.loss, 5)
            points = self._curves[curve]
            points.append(point)
            if len(points) > self.max_points:
                self._curves[curve] = points[::2]
                self._every[curve] *= 2
        elif p.stage == "evaluated" and p.metrics is not None:
            self.validation.append(
                {"epoch": p.epoch, **{k: p.metrics[k] for k in ("f1", "precision", "recall")}}
            )

    def as_dict(self) -> dict[str, Any] | None:
        """The curves so far; None before anything was reported."""
        loss, final_fit = self._curves["loss"], self._curves["final_fit"]
        if not loss and not self.validation:
            return None
        curves: dict[str, Any] = {"loss": list(loss), "validation": list(self.validation)}
        if final_fit:
            curves["final_fit"] = list(final_fit)
        return curves


class ProgressRecorder:
    """The core's progress callback: writes progress and the training history to the job
    row every few seconds (and at each epoch's validation), and stops the training
    (TrainingCancelled) once the row says `cancelling`.

    A database that is briefly away does not stop the training: the write is skipped (the
    next one carries the same information) and the run goes on. A lost claim does stop it.
    """

    def __init__(self, run: JobRun) -> None:
        self.run = run
        self.settings = run.services.settings
        self.last_write = 0.0
        self.last_check = 0.0
        self.progress = 0.0
        self.history = TrainingHistory()

    def stage(self, stage: str, progress: float) -> None:
        """A stage outside the core's training (loading, uploading): JobCancelled on cancel."""
        status = self._write(progress=progress, stage=stage, eta=None, metrics=None)
        if status is not None:
            self.run.stop_if_cancelled(status)

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        self.history.add(p)
        status: JobStatus | None = None
        if now - self.last_write >= self.settings.progress_interval_seconds or p.stage in (
            "evaluated",
            "tested",
        ):
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
            status = self._write(
                progress=start + (end - start) * p.fraction,
                stage=p.stage,
                eta=p.eta_seconds,
                metrics=live,
            )
        elif now - self.last_check >= self.settings.cancel_check_seconds:
            self.last_check = now
            status = self._quietly(self.run.status)
        if status is not None and status != JobStatus.running:
            raise TrainingCancelled(f"job {self.run.job_id} is {status}")

    def _write(
        self, *, progress: float, stage: str, eta: float | None, metrics: dict[str, Any] | None
    ) -> JobStatus | None:
        self.last_write = self.last_check = time.monotonic()
        # Never backwards for the user, whatever order the core's stages report in.
        progress = self.progress = max(self.progress, progress)
        history = self.history.as_dict()
        return self._quietly(
            lambda: self.run.progress(
                progress=progress,
                stage=stage,
                eta_seconds=eta,
                metrics=metrics,
                history=history,
            )
        )

    def _quietly(self, write: Callable[[], JobStatus]) -> JobStatus | None:
        """The write's result, or None when the database is away (logged, not fatal)."""
        try:
            return write()
        except SQLAlchemyError as exc:
            if not is_transient(exc):
                raise
            log.warning("job %s: progress not written (%s); training goes on", self.run.job_id, exc)
            return None


def run_training(run: JobRun) -> None:
    ctx, job_id = run.services, run.job_id
    with session_scope(ctx.sessions) as session:
        job = jobs.get_job(session, job_id)
        existing = registry.model_for_job(session, job_id)
        if existing is not None:
            # A redelivery after the model was registered: record the end, train nothing.
            jobs.finish(
                session,
                job_id,
                JobStatus.succeeded,
                attempt=run.attempt,
                metrics=existing.metrics,
                model_version=existing.version,
            )
            return
        params = dict(job.params or {})
        version = registry.version_for_job(job, run.attempt)
        wanted = {"train": job.dataset_id}
        for name in ("validation", "test"):
            if params.get(f"{name}_dataset_id"):
                wanted[name] = params[f"{name}_dataset_id"]
        sources: dict[str, tuple[str, str, bool]] = {}
        for name, wanted_id in wanted.items():
            row = session.get(DatasetRow, wanted_id)
            if row is None:
                raise LookupError(f"{name} dataset {wanted_id} no longer exists")
            sources[name] = (row.object_key, row.format, row.skip_invalid)
    config = job_config(params, ctx.settings.base_model)

    recorder = ProgressRecorder(run)
    recorder.stage("loading data", 0.01)
    work = Path(tempfile.mkdtemp(prefix=f"train-{job_id}-", dir=_work_dir(ctx)))
    uploaded: str | None = None
    checkpoints = Checkpoints(run, work / "checkpoint")
    try:
        data = {name: _load(ctx, work, *source) for name, source in sources.items()}
        resumed = checkpoints.fetch()
        recorder.stage("resuming" if resumed else "training", TRAIN_SHARE[0])
        try:
            result = train(
                data["train"],
                work / "model",
                config,
                validation=data.get("validation"),
                test=data.get("test"),
                callback=recorder,
                checkpoint_dir=checkpoints.folder,
                checkpoint_seconds=ctx.settings.checkpoint_seconds,
                on_checkpoint=checkpoints.upload,
            )
        except TrainingCancelled as exc:
            raise JobCancelled(str(exc)) from exc
        test_key = _test_data_key(wanted, result.test_source, config.seed)

        recorder.stage("uploading model", 0.92)
        uploaded = f"models/{version}"
        manifest_key, manifest_sha = upload_dir(ctx.store, uploaded, result.model_dir)
        labels = registry.labels_of_model_dir(result.model_dir)
        recorder.stage("comparing with production", 0.96)
        candidate = registry.Candidate(
            version=version,
            job_id=job_id,
            base_model=config.base_model or DEFAULT_BASE_MODEL_NAME,
            labels=labels,
            metrics=result.metrics,
            manifest_key=manifest_key,
            manifest_sha256=manifest_sha,
            test_data_key=test_key,
            serving=serving_report(result.model_dir),
        )
        metrics = dict(result.metrics)
        if result.validation_metrics is not None:
            metrics["validation"] = result.validation_metrics
        _register(run, data, config.seed, candidate, metrics)
        checkpoints.discard()
    except (JobCancelled, LostClaim) as exc:
        if uploaded is not None:
            _delete_prefix(ctx, uploaded)  # nobody will serve it
        if isinstance(exc, JobCancelled):
            checkpoints.discard()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Checkpoints:
    """A training job's checkpoint in the object store (`checkpoints/<job id>/`, a folder
    with a sha256 manifest written last): fetched when a new attempt starts, so a worker
    killed mid-training costs at most one checkpoint interval, and uploaded while this
    attempt still holds the job."""

    def __init__(self, run: JobRun, folder: Path) -> None:
        self.run = run
        self.folder = folder
        self.prefix = f"checkpoints/{run.job_id}"

    def fetch(self) -> bool:
        """Download the job's last checkpoint, if any; False when training starts afresh."""
        store = self.run.services.store
        manifest = f"{self.prefix}/{MANIFEST_NAME}"
        try:
            raw = store.get_bytes(manifest)
        except ObjectNotFound:
            return False
        try:
            download_dir(store, manifest, hashlib.sha256(raw).hexdigest(), self.folder)
        except ChecksumMismatch as exc:
            # Half-overwritten by a superseded attempt: start afresh rather than from it.
            log.warning(
                "job %s: checkpoint unusable (%s); training from the start", self.run.job_id, exc
            )
            shutil.rmtree(self.folder, ignore_errors=True)
            return False
        log.info("job %s: resuming from its checkpoint", self.run.job_id)
        return True

    def upload(self, folder: Path) -> None:
        """Upload the checkpoint just written. Skipped (training goes on, the next one is
        uploaded) while the database or the store is away; LostClaim when another attempt
        holds the job, so a superseded worker never overwrites its successor's state."""
        try:
            self.run.status()
            upload_dir(self.run.services.store, self.prefix, folder)
        except (SQLAlchemyError, BotoCoreError, OSError) as exc:
            if isinstance(exc, SQLAlchemyError) and not is_transient(exc):
                raise
            log.warning(
                "job %s: checkpoint not uploaded (%s); training goes on", self.run.job_id, exc
            )

    def discard(self) -> None:
        _delete_prefix(self.run.services, self.prefix)


def _register(
    run: JobRun,
    data: dict[str, Dataset],
    seed: int,
    candidate: registry.Candidate,
    metrics: dict[str, Any],
) -> None:
    """Register the model, promote it when it beats production on the same test data, and
    end the job: one transaction, under the registry's lock, only while this attempt holds
    the job. When production changed while this job scored it, the new production model is
    scored and the decision made again."""
    ctx = run.services
    against: registry.Scored | None = None
    for _ in range(5):
        against = _production_score(ctx, data, seed, candidate.test_data_key, against)

        def decide(session: Session, against: registry.Scored | None = against) -> bool:
            if jobs.current_status(session, run.job_id, run.attempt) != JobStatus.running:
                raise JobCancelled(f"job {run.job_id} was cancelled")
            outcome = registry.register_and_decide(session, candidate, against)
            if outcome is None:
                return False  # production changed: score the new one
            jobs.finish(
                session,
                run.job_id,
                JobStatus.succeeded,
                attempt=run.attempt,
                metrics=metrics,
                model_version=candidate.version,
            )
            return True

        if run.write(decide, within=FINAL_WRITE_PATIENCE):
            return
    raise RuntimeError("production kept changing while this model was compared with it")


def _production_score(
    ctx: Services,
    data: dict[str, Dataset],
    seed: int,
    test_key: str | None,
    previous: registry.Scored | None,
) -> registry.Scored | None:
    """The production model's F1 on this job's test data (None: no production model).

    Stored metrics answer when they were computed on the same test data; otherwise the
    production model is scored here on the test data the new model was scored on (the
    same `plan_splits` decision the core's training made), so the comparison is like for like.
    """
    with session_scope(ctx.sessions) as session:
        prod = registry.production_model(session)
        if prod is None:
            return None
        if previous is not None and previous.version == prod.version:
            return previous
        if prod.test_data_key == test_key:
            return registry.Scored(prod.version, float(prod.metrics.get("f1", 0.0)))
        ref = ModelRef.of(prod)
    test = plan_splits(data["train"], data.get("validation"), data.get("test"), seed).test
    return registry.Scored(ref.version, float(evaluate(ctx.models.predictor(ref), test)["f1"]))


def _delete_prefix(ctx: Services, prefix: str) -> None:
    try:
        for key in ctx.store.list(prefix + "/"):
            ctx.store.delete(key)
    except OSError as exc:
        log.warning("could not remove %s: %s", prefix, exc)


def job_config(params: dict[str, Any], default_base_model: str | None) -> TrainConfig:
    """The job's TrainConfig from its stored parameters (the API validated them against the
    same declaration); the deployment's NER_BASE_MODEL fills in an unnamed base model."""
    fields = {k: v for k, v in params.items() if k in TrainConfig.model_fields}
    if fields.get("base_model") is None and default_base_model:
        fields["base_model"] = default_base_model
    return TrainConfig.model_validate(fields)


def _test_data_key(wanted: dict[str, str | None], source: str, seed: int) -> str:
    """Names the data the reported scores come from: promotion compares F1 only on equal keys."""
    if source in ("test", "validation") and wanted.get(source):
        return f"dataset:{wanted[source]}"
    return f"split:{wanted['train']}:seed={seed}"


def _work_dir(ctx: Services) -> Path:
    path = (ctx.settings.data_dir / "work").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load(ctx: Services, work: Path, key: str, fmt: str, skip_invalid: bool) -> Dataset:
    """The stored upload, read as it was validated (same format, same skip_invalid)."""
    local = work / "data" / key.rsplit("/", 1)[-1]
    ctx.store.get_file(key, local)
    return read_dataset(local, format=fmt, skip_invalid=skip_invalid)
