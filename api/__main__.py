"""`python -m api [--host H] [--port P] [--embedded]`: what `ner api` / `ner serve` run."""

import argparse

parser = argparse.ArgumentParser(prog="python -m api")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8000)
parser.add_argument("--embedded", action="store_true", help="also run a worker (ner serve)")
args = parser.parse_args()
if args.embedded:
    from api.serve import serve

    serve(args.host, args.port)
else:
    from api.server import run_api

    run_api(args.host, args.port)
