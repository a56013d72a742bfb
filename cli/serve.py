"""`ner serve`: the whole service on one machine — API in this process, a Celery worker in a
child process — with the embedded defaults (SQLite, kombu's filesystem transport, a local
object directory under ./var) unless NER_* variables name real servers. Same code paths as
a deployment."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading

import uvicorn

from api.app import create_app
from api.server import configure_logging, migrate_or_exit, refuse_open_listener
from shared.queue import INFERENCE_QUEUE, TRAINING_QUEUE
from shared.settings import get_settings

log = logging.getLogger(__name__)
WORKER_STOP_SECONDS = 15


class WorkerProcess:
    """The worker child, restarted if it dies while the API is up."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self._watch: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watch = threading.Thread(target=self._watchdog, name="worker-watchdog", daemon=True)
        self._watch.start()

    def _spawn(self) -> None:
        cmd = [sys.executable, "-m", "worker", "--queues", f"{TRAINING_QUEUE},{INFERENCE_QUEUE}"]
        # Own session: a Ctrl-C at the terminal reaches only the API, which then stops the
        # worker itself, in order.
        self.proc = subprocess.Popen(cmd, start_new_session=True)
        log.info("worker started (pid %d)", self.proc.pid)

    def _watchdog(self) -> None:
        while not self.stopping.wait(2.0):
            if self.proc is not None and self.proc.poll() is not None:
                log.warning("worker exited with code %s; starting a new one", self.proc.returncode)
                self._spawn()

    def stop(self) -> None:
        self.stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        log.info("stopping the worker (pid %d)", proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            # Mid-training: the job is re-queued from its stale heartbeat at the next start.
            log.warning("worker still busy after %ds; killing it", WORKER_STOP_SECONDS)
            proc.kill()
            proc.wait()


def serve(host: str = "127.0.0.1", port: int = 8000, *, insecure: bool = False) -> None:
    """Migrate, start the worker process, serve the API; stop both on Ctrl-C or SIGTERM."""
    configure_logging()
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate_or_exit(settings)
    # After the migration: keys made with `ner keys create` count too.
    refuse_open_listener(host, settings, insecure=insecure)
    worker = WorkerProcess()
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again with the
    # handlers it found installed: these turn it into an exception, so the worker is
    # stopped below and the command exits 0 instead of dying by the signal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise_stop)
    worker.start()
    try:
        log.info("serving on http://%s:%d (docs at /docs); Ctrl-C stops", host, port)
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=False)
    except _Stop:
        pass
    finally:
        worker.stop()
    log.info("stopped")


class _Stop(Exception):
    """A stop signal arrived."""


def _raise_stop(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)
