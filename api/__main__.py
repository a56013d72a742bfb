"""`python -m api [--host H] [--port P] [--insecure]`: what `ner api` runs (migrate, then serve)."""

import argparse

from api.server import run_api

parser = argparse.ArgumentParser(prog="python -m api")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--insecure", action="store_true")
args = parser.parse_args()
run_api(args.host, args.port, insecure=args.insecure)
