"""`ner worker` / `python -m worker`: a Celery worker consuming the training and/or
inference queues."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from shared.queue import INFERENCE_QUEUE, TRAINING_QUEUE
from shared.settings import Settings, get_settings
from worker.app import create_worker_app


def run_worker(
    queues: list[str] | None = None, loglevel: str = "INFO", settings: Settings | None = None
) -> None:
    """Run a worker in this process until SIGTERM/Ctrl-C.

    The solo pool runs tasks in this process, one at a time: a training already uses every
    core through torch's threads, and no forked child can inherit a half-loaded model.
    """
    queues = queues or [TRAINING_QUEUE, INFERENCE_QUEUE]
    unknown = set(queues) - {TRAINING_QUEUE, INFERENCE_QUEUE}
    if unknown:
        raise SystemExit(f"unknown queue(s): {', '.join(sorted(unknown))}")
    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_worker_app(settings or get_settings())
    app.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--queues={','.join(queues)}",
            "--pool=solo",
            f"--hostname=ner-{os.getpid()}@{socket.gethostname()}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m worker")
    parser.add_argument("--queues", default=f"{TRAINING_QUEUE},{INFERENCE_QUEUE}")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    run_worker([q.strip() for q in args.queues.split(",") if q.strip()])


if __name__ == "__main__":
    main()
