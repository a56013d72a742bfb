"""Fixtures for the page tests: the service stack of tests/service (real PostgreSQL, Redis,
S3 server, API and worker processes, a tiny random base model), with an API key, and a
headless Chromium driven by Playwright.

The browser is the OS's own (Debian's `chromium` package; NER_CHROMIUM overrides the path):
Playwright's browser download is never used.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import (  # noqa: F401 - fixtures and the skip hook, shared
    broker_url,
    database_url,
    pytest_collection_modifyitems,
    running_stack,
    service_settings,
    services,
    settings_env,
    storage_url,
    tiny_base_model,
    train_csv,
)

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
API_KEY = "ui-test-key"
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def chromium_path() -> str | None:
    for candidate in (os.environ.get("NER_CHROMIUM"), "/usr/bin/chromium", "chromium"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@pytest.fixture(scope="module")
def ui_stack(service_settings, tiny_base_model: Path, tmp_path_factory) -> Iterator[dict]:  # noqa: F811
    """API and worker processes with an API key configured (the page must send it)."""
    logs = tmp_path_factory.mktemp("ui-logs")
    env = settings_env(service_settings, NER_BASE_MODEL=str(tiny_base_model), NER_API_KEYS=API_KEY)
    with running_stack(env, logs) as stack:
        yield stack


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium: apt-get install chromium (or set NER_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser, ui_stack: dict, tmp_path_factory) -> Iterator[object]:
    """One tab for the whole module (the tests build on each other, like a user would).
    bypass_csp lets the tests inject axe-core into a page whose CSP allows only its own
    scripts."""
    context = browser.new_context(
        base_url=ui_stack["base"],
        viewport=VIEWPORTS["desktop"],
        bypass_csp=True,
        accept_downloads=True,
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"console: {msg.text}")
            # The browser logs every non-2xx answer; the tests provoke 401, 404, 422 and 503.
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    page.js_errors = errors  # type: ignore[attr-defined]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield page
    context.close()
