"""The Celery application's configuration, shared by the API (which only sends tasks by
name) and the worker (which registers them). Importing this pulls in no task code and no
torch."""

from __future__ import annotations

from typing import Any

from celery import Celery

from shared.settings import Settings

TRAIN_TASK = "ner.train"
PREDICT_BULK_TASK = "ner.predict_bulk"
TRAINING_QUEUE = "training"
INFERENCE_QUEUE = "inference"
QUEUE_OF_TASK = {TRAIN_TASK: TRAINING_QUEUE, PREDICT_BULK_TASK: INFERENCE_QUEUE}
TASK_OF_JOB_TYPE = {"train": TRAIN_TASK, "predict": PREDICT_BULK_TASK}


def broker_transport_options(settings: Settings) -> dict[str, object]:
    if settings.is_embedded_broker:
        # kombu's filesystem transport: one folder both ways, so the API process and the
        # worker process exchange messages through it.
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
            # Broadcast (pidbox) exchanges; kombu's default is ./control in the working dir.
            "control_folder": str(folder / "control"),
        }
    # Redis hands an unacknowledged message to another worker after visibility_timeout:
    # it must be longer than the longest training, or a running job is delivered twice.
    return {"visibility_timeout": settings.broker_visibility_timeout}


def make_celery(settings: Settings, name: str = "ner") -> Celery:
    """A Celery app that sends (the API) or runs (worker.app) the tasks, from settings."""
    app = Celery(name, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def celery_config(settings: Settings) -> dict[str, Any]:
    return dict(
        broker_url=settings.broker_url,
        broker_transport_options=broker_transport_options(settings),
        broker_connection_retry_on_startup=True,
        # Job state lives in the jobs table; no result backend.
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_routes={name: {"queue": queue} for name, queue in QUEUE_OF_TASK.items()},
        task_default_queue=INFERENCE_QUEUE,
        # A task is acknowledged when it ends, and handed back when its worker dies, so a
        # job is never lost; the tasks are idempotent, so a second delivery is harmless.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message at a time: a training takes minutes, and a prefetched one would wait
        # behind it on this worker while another worker sits idle.
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        # The core's progress bars write to stderr: log them as INFO, not as warnings.
        worker_redirect_stdouts_level="INFO",
        worker_send_task_events=False,
        # The API must not hang on a broker that is down; it answers 503 instead.
        broker_connection_timeout=5,
    )


def send_task(app: Celery, task_name: str, job_id: str) -> None:
    """Send a task by name with the job id only. Called by the outbox after the job's row
    is committed (shared/services/outbox.py), never directly by a route or a task."""
    app.send_task(
        task_name,
        args=[job_id],
        queue=QUEUE_OF_TASK[task_name],
        retry=True,
        # A broker that is down is the outbox sweeper's to retry: do not hold a request long.
        retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5},
    )
