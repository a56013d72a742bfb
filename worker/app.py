"""The worker's Celery app. `celery -A worker.app worker -Q training,inference` runs it too."""

from __future__ import annotations

import threading

from celery.signals import worker_ready, worker_shutdown

from shared.queue import make_celery
from shared.settings import get_settings

celery_app = make_celery(get_settings())
# Registers the tasks on this app.
celery_app.conf.include = ["worker.tasks"]

_stop_recovery: threading.Event | None = None


@worker_ready.connect
def _start_recovery(sender: object = None, **_: object) -> None:
    """Once consuming, look for jobs a dead worker left `running` (worker.recovery)."""
    global _stop_recovery
    from worker.context import get_context
    from worker.recovery import start_recovery_thread

    _stop_recovery = start_recovery_thread(get_context(), celery_app)


@worker_shutdown.connect
def _stop_recovery_thread(sender: object = None, **_: object) -> None:
    if _stop_recovery is not None:
        _stop_recovery.set()
