"""`python -m api [--host H] [--port P] [--insecure] [--workers N]`: what `ner api` runs
(migrate, then serve)."""

import argparse

from api.server import run_api, workers_argument

parser = argparse.ArgumentParser(prog="python -m api")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--insecure", action="store_true")
parser.add_argument(
    "--workers", type=workers_argument, help="API processes (default: NER_API_WORKERS, 1)"
)
args = parser.parse_args()
run_api(args.host, args.port, insecure=args.insecure, workers=args.workers)
