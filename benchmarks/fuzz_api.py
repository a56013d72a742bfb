"""Fuzz the API from its own /openapi.json with schemathesis (issue 7, point 2).

Every operation gets `--examples` generated requests in each mode: positive (what the
schema allows) and negative (what it does not). Two checks must hold for every response:
no server error (5xx other than a documented 503 "try again later"), and a response that
matches the schema the API itself declares for that status. Status codes the schema does
not list are counted and reported too (`status_code_conformance`), not failed on.

    # against a throwaway stack on the real servers (scripts/services.sh env):
    python benchmarks/fuzz_api.py --examples 100
    # against any running API:
    python benchmarks/fuzz_api.py --url http://127.0.0.1:8000 --api-key KEY

Prints a summary per operation, writes benchmarks/results/fuzz_api.json, exits 1 when any
check failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from benchmarks.http_common import fresh_settings, machine, serve_in_thread, write_result

MODES = {
    "positive": schemathesis.GenerationMode.POSITIVE,
    "negative": schemathesis.GenerationMode.NEGATIVE,
}


def _failure_text(exc: BaseException) -> str:
    return " | ".join(str(exc).split("\n")[:6])[:600]


def fuzz_operation(
    operation: Any, base_url: str, mode: str, examples: int, headers: dict[str, str]
) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    undocumented: Counter[str] = Counter()
    session = requests.Session()  # keep-alive across the operation's requests

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # every example counts; no shrinking, no replay
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=MODES[mode]))
    def run(case: Any) -> None:
        try:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
        except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL, ValueError):
            # A request the HTTP client itself refuses to send (a CR in a header value).
            statuses["not sendable"] += 1
            return
        except requests.RequestException as exc:
            statuses["no answer"] += 1
            failures.append({"check": "transport", "error": _failure_text(exc)})
            return
        statuses[str(response.status_code)] += 1
        # A 503 is the documented "a dependency or the model is not there, retry": the
        # server working as designed, not an error of the server.
        checks = [("response schema", response_schema_conformance)]
        if response.status_code != 503:
            checks.insert(0, ("server error", not_a_server_error))
        for name, check in checks:
            try:
                case.validate_response(response, checks=[check])
            except (Exception, FailureGroup) as exc:
                failures.append(
                    {
                        "check": name,
                        "status": response.status_code,
                        "request": _describe(case),
                        "error": _failure_text(exc),
                    }
                )
        try:
            case.validate_response(response, checks=[status_code_conformance])
        except (Exception, FailureGroup):
            undocumented[str(response.status_code)] += 1

    try:
        run()
    except Unsatisfiable:
        # An operation without parameters has no request the schema forbids.
        return {
            "requests": 0,
            "statuses": {},
            "failures": [],
            "undocumented_statuses": {},
            "note": "no input to generate in this mode",
        }
    return {
        "requests": sum(statuses.values()),
        "statuses": dict(sorted(statuses.items())),
        "failures": failures,
        "undocumented_statuses": dict(undocumented),
    }


def _describe(case: Any) -> str:
    parts = [f"{case.method} {case.formatted_path}"]
    if case.query:
        parts.append(f"query={case.query!r}"[:200])
    if case.body is not None and not isinstance(case.body, bytes | dict):
        parts.append(f"body={case.body!r}"[:200])
    elif case.body is not None:
        parts.append(f"body={str(case.body)[:200]}")
    return " ".join(parts)


@contextmanager
def local_api() -> Iterator[str]:
    with fresh_settings() as service_settings, serve_in_thread(service_settings) as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running API (default: start one on the real servers)")
    parser.add_argument("--api-key", help="sent as Authorization: Bearer")
    parser.add_argument("--examples", type=int, default=100, help="per operation and mode")
    parser.add_argument("--modes", default="positive,negative")
    parser.add_argument("--only", help="operations whose path contains this")
    parser.add_argument("--name", default="fuzz_api", help="result file name")
    args = parser.parse_args(argv)

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    started = time.monotonic()
    host = machine()  # before the run: its load average, and the commit that ran
    results: dict[str, Any] = {}
    with nullcontext(args.url) if args.url else local_api() as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        for found in schema.get_all_operations():
            operation = found.ok()
            label = f"{operation.method.upper()} {operation.path}"
            if args.only and args.only not in operation.path:
                continue
            for mode in args.modes.split(","):
                result = fuzz_operation(operation, base_url, mode, args.examples, headers)
                results[f"{label} [{mode}]"] = result
                print(
                    f"{label:42} {mode:8} {result['requests']:4} requests  "
                    f"failures {len(result['failures']):3}  {result['statuses']}",
                    flush=True,
                )
    failures = sum(len(r["failures"]) for r in results.values())
    server_errors = sum(
        1 for r in results.values() for f in r["failures"] if f["check"] == "server error"
    )
    schema_breaks = sum(
        1 for r in results.values() for f in r["failures"] if f["check"] == "response schema"
    )
    summary = {
        "operations": len({k.rsplit(" [", 1)[0] for k in results}),
        "requests": sum(r["requests"] for r in results.values()),
        # Operations with parameters: an operation without any has one possible request.
        "min_requests_per_parameterised_operation_and_mode": min(
            (r["requests"] for r in results.values() if r["requests"] > 1), default=0
        ),
        "server_errors": server_errors,
        "schema_breaks": schema_breaks,
        "failures": failures,
        "seconds": round(time.monotonic() - started, 1),
        "schemathesis": schemathesis.__version__,
    }
    print(
        f"\n{summary['operations']} operations, {summary['requests']} requests "
        f"(at least {summary['min_requests_per_parameterised_operation_and_mode']} per "
        "operation with parameters and mode): "
        f"{server_errors} server errors, {schema_breaks} responses that break their schema, "
        f"in {summary['seconds']} s"
    )
    for label, r in results.items():
        for f in r["failures"][:3]:
            print(f"  {label}: {f}")
    path = write_result(
        args.name,
        {
            "summary": summary,
            "machine": host,
            "target": args.url or "local",
            "operations": results,
        },
    )
    print(f"written: {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
