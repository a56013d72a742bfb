"""The load generator's own HTTP client (benchmarks/raw_http.py) reads what the API answers,
keeps its connection, and reconnects when the API closes it: a load figure is only as good
as the client that counts it."""

from __future__ import annotations

import asyncio
import json

import pytest

from benchmarks.http_common import serve_in_thread
from benchmarks.raw_http import RawConnection
from shared.settings import Settings

pytestmark = pytest.mark.services


def test_the_load_client_reads_every_answer_and_goes_on_after_a_refusal(
    service_settings: Settings,
) -> None:
    bodies = [
        b'{"text": "Anna Smith flew to Paris ."}',  # no model in production yet: 503
        b'{"text": 42}',  # the wrong type: 422
        b'{"text": "' + b"word " * 1_000_000 + b'"}',  # 5 MB, over the 4 MB limit: 413
        b'{"text": "Anna Smith flew to Paris ."}',  # the client goes on after that
    ]

    async def send_all(base: str) -> list[tuple[int, dict]]:
        answers = []
        async with RawConnection(base) as conn:
            for body in bodies:
                status, raw = await conn.send(
                    conn.request_bytes("POST", "/predict", body, "application/json")
                )
                answers.append((status, json.loads(raw)))
        return answers

    with serve_in_thread(service_settings) as base:
        answers = asyncio.run(send_all(base))
    assert [status for status, _ in answers] == [503, 422, 413, 503]
    assert all("detail" in answer for _, answer in answers)
