"""Several API processes on one port (`ner api --workers N`).

Python runs one thread at a time in a process, so one API process keeps only about 1.3 of
2 cores busy under concurrent `/predict` calls; one process per core uses them all.

Each process listens on a socket of its own (`SO_REUSEPORT`), and the kernel spreads new
connections evenly across them. uvicorn's own `--workers` hands every process one shared
socket instead, and whichever process wakes first accepts every connection then waiting:
a burst of keep-alive clients (a load balancer's pool, a benchmark's 16 clients) can all
land on one process while the other idles (16 clients measured 491 req/s that way, 663
with the connections split evenly; docs/benchmarks.md). This parent only starts the
processes, replaces one that dies, and stops them all on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from collections import deque
from multiprocessing.process import BaseProcess

import uvicorn

log = logging.getLogger(__name__)

# More deaths than this per process within the window is a crash loop (a broken setting,
# the port taken by someone else...): starting them again would only fail again.
MAX_RESTARTS_PER_PROCESS = 3
RESTART_WINDOW_SECONDS = 60.0
STOP_SECONDS = 30.0


def supported() -> bool:
    """Whether this system spreads connections over sockets sharing a port (Linux does)."""
    return hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port that other processes of this user may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _serve(config: uvicorn.Config) -> None:
    """One API process (spawned): its own socket, then uvicorn until SIGTERM."""
    config.configure_logging()  # not carried over by spawn
    uvicorn.Server(config).run(sockets=[listening_socket(config.host, config.port)])


def serve(config: uvicorn.Config, workers: int) -> int:
    """Run `workers` processes of `config` (an app factory given by its import string)
    until SIGTERM or Ctrl-C; the exit status: 0 after such a stop, 1 when the processes
    kept exiting."""
    # The port is checked here, once, so that a taken port is one clear error.
    try:
        listening_socket(config.host, config.port).close()
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror or exc)
        return 1
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked threads
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def start() -> BaseProcess:
        process = context.Process(target=_serve, args=(config,), name="ner-api")
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    deaths: deque[float] = deque()
    status = 0
    while not stop.wait(0.5):
        for i, process in enumerate(processes):
            if process.is_alive():
                continue
            now = time.monotonic()
            deaths.append(now)
            while deaths[0] < now - RESTART_WINDOW_SECONDS:
                deaths.popleft()
            if len(deaths) > MAX_RESTARTS_PER_PROCESS * workers:
                log.error(
                    "API processes keep exiting (%d in %.0f s; the last: %s): stopping",
                    len(deaths),
                    RESTART_WINDOW_SECONDS,
                    process.exitcode,
                )
                status = 1
                stop.set()
                break
            code = process.exitcode
            log.warning("API process %s exited (%s): starting another", process.pid, code)
            processes[i] = start()
    for process in processes:
        if process.is_alive():
            process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    return status
