"""A short schemathesis run over /openapi.json (the long one is benchmarks/fuzz_api.py):
every operation, positive and negative inputs, on the real database, broker and S3 server.
No server error, no response that breaks the schema the API declares for it."""

from __future__ import annotations

import pytest
import schemathesis

from benchmarks.fuzz_api import fuzz_operation
from benchmarks.http_common import serve_in_thread
from shared.settings import Settings

pytestmark = pytest.mark.services

EXAMPLES = 15  # per operation and mode: about 20 s on 2 cores


def test_no_server_error_and_no_schema_break(service_settings: Settings) -> None:
    failures = []
    requests = 0
    with serve_in_thread(service_settings) as base_url:
        schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        operations = [found.ok() for found in schema.get_all_operations()]
        assert len(operations) >= 15
        for operation in operations:
            for mode in ("positive", "negative"):
                result = fuzz_operation(operation, base_url, mode, EXAMPLES, {})
                requests += result["requests"]
                failures += [(operation.path, mode, f) for f in result["failures"]]
    assert requests > 15 * EXAMPLES
    assert failures == []
