"""API keys on real PostgreSQL (issue 7, point 6): hashed at rest, scopes per route, revoke
within seconds, NER_API_KEYS beside database keys, 401 before the body is read (a real
uvicorn process and a raw socket), and the `ner keys` / `ner api` commands."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.app import create_app
from shared.db import session_scope
from shared.services import keys
from shared.settings import Settings
from tests.service.conftest import ROOT, Process, free_port, settings_env, wait_http_ok
from tests.service.data import near_miss

pytestmark = pytest.mark.services

QUICK_KEY = "quick-start-key-for-tests"


@pytest.fixture(scope="module")
def tokens(svc) -> dict[str, str]:
    """One database key per scope, plus one that is revoked from the start."""
    made = {}
    with session_scope(svc.sessions) as s:
        for scope in ("predict", "train", "admin"):
            _row, made[scope] = keys.create_key(s, f"{scope} key", [scope])
        row, made["revoked"] = keys.create_key(s, "old key", ["admin"])
        keys.revoke_key(s, row.id)
    return made


@pytest.fixture(scope="module")
def keyed(service_settings: Settings) -> Settings:
    return service_settings.model_copy(update={"api_keys": QUICK_KEY, "api_key_cache_seconds": 1.0})


@pytest.fixture(scope="module")
def client(keyed: Settings, tokens: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(keyed)) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_are_held_as_hashes_only(svc, tokens: dict[str, str]) -> None:
    with svc.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM api_keys")).mappings().all()
        dump = json.dumps([{k: str(v) for k, v in r.items()} for r in rows])
    assert len(rows) == 4
    for token in tokens.values():
        assert token.startswith("ner_") and len(token) == 47
        assert token not in dump  # not the token, not its secret part
        assert token[12:] not in dump
        assert hashlib.sha256(token.encode()).hexdigest() in dump
    assert {r["prefix"] for r in rows} == {t[:12] for t in tokens.values()}


def test_missing_or_bad_key_is_401_with_a_challenge(client: TestClient, tokens) -> None:
    r = client.get("/jobs")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in r.json()["detail"]
    for bad in ("wrong", near_miss(tokens["predict"]), tokens["revoked"]):
        r = client.get("/jobs", headers=bearer(bad))
        assert r.status_code == 401, bad
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert client.get("/jobs", headers={"Authorization": tokens["train"]}).status_code == 401


def test_public_paths_need_no_key(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/docs", "/openapi.json", "/redoc", "/", "/static/app.js"):
        assert client.get(path).status_code == 200, path
    # Anyone learns up or down, nothing more.
    assert client.get("/readyz").json() == {"status": "ready"}


def test_scopes_are_enforced_per_route(client: TestClient, tokens: dict[str, str]) -> None:
    # (method, path, body) → the scopes that may call it. A permitted call may still be a
    # 404/503 (no such model, no model yet): what matters is it is not 401/403.
    routes = [
        ("POST", "/predict", {"text": "Angela lives in Berlin"}, {"predict", "admin"}),
        ("GET", "/datasets", None, {"train", "admin"}),
        ("GET", "/jobs", None, {"train", "admin"}),
        ("GET", "/jobs/nope", None, {"train", "admin"}),
        ("POST", "/jobs/train", {"dataset_id": "nope"}, {"train", "admin"}),
        ("GET", "/models", None, {"predict", "train", "admin"}),
        ("GET", "/models/nope/evaluation", None, {"predict", "train", "admin"}),
        ("POST", "/models/nope/promote", None, {"admin"}),
        ("GET", "/metrics", None, {"admin"}),
    ]
    for method, path, body, allowed in routes:
        for scope in ("predict", "train", "admin"):
            r = client.request(method, path, json=body, headers=bearer(tokens[scope]))
            if scope in allowed:
                assert r.status_code not in (401, 403), (method, path, scope, r.text)
            else:
                assert r.status_code == 403, (method, path, scope, r.text)
                assert "scope" in r.json()["detail"]


def test_readyz_details_for_admin_only(client: TestClient, tokens: dict[str, str]) -> None:
    assert client.get("/readyz", headers=bearer(tokens["train"])).json() == {"status": "ready"}
    for admin in (tokens["admin"], QUICK_KEY):
        body = client.get("/readyz", headers=bearer(admin)).json()
        assert body["checks"] == {"database": "ok", "broker": "ok", "object_store": "ok"}


def test_settings_keys_hold_every_scope(client: TestClient) -> None:
    assert client.get("/metrics", headers=bearer(QUICK_KEY)).status_code == 200
    assert client.get("/jobs", headers=bearer(QUICK_KEY)).status_code == 200
    assert client.post("/models/nope/promote", headers=bearer(QUICK_KEY)).status_code == 404


def test_revoke_takes_effect_within_seconds(client: TestClient, svc, keyed: Settings) -> None:
    with session_scope(svc.sessions) as s:
        row, token = keys.create_key(s, "short-lived", ["train"])
    assert client.get("/jobs", headers=bearer(token)).status_code == 200
    with session_scope(svc.sessions) as s:
        keys.revoke_key(s, row.id)
    start = time.monotonic()
    while client.get("/jobs", headers=bearer(token)).status_code == 200:
        assert time.monotonic() - start < keyed.api_key_cache_seconds + 2, "still accepted"
        time.sleep(0.1)
    assert client.get("/jobs", headers=bearer(token)).status_code == 401
    with session_scope(svc.sessions) as s:
        used = next(k for k in keys.list_keys(s) if k.id == row.id)
        assert used.last_used_at is not None and used.revoked_at is not None


# --- a real uvicorn process: the 401 arrives while the body is still being sent ---------


@pytest.fixture(scope="module")
def api_process(
    keyed: Settings, tokens: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    logs = tmp_path_factory.mktemp("keys-api")
    port = free_port()
    env = settings_env(keyed, NER_API_KEYS=QUICK_KEY)
    api = Process(["-m", "api", "--port", str(port)], env, logs / "api.log").start()
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", api)
        yield port
    finally:
        api.stop()


def _open_upload(port: int, extra_headers: str, first_chunk: bytes) -> socket.socket:
    """Start a POST /datasets whose body is never finished."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (
        "POST /datasets HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n" + extra_headers + "\r\n"
    )
    sock.sendall(head.encode() + first_chunk)
    return sock


def _status_within(sock: socket.socket, seconds: float) -> tuple[int | None, float, bytes]:
    sock.settimeout(seconds)
    start = time.monotonic()
    try:
        data = sock.recv(65536)
    except TimeoutError:
        return None, time.monotonic() - start, b""
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    return status, time.monotonic() - start, data


def test_401_comes_before_the_body_is_read(api_process: int, tokens: dict[str, str]) -> None:
    # The start of a well-formed multipart upload as one chunk, then nothing more.
    part = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\ntext,labels\n" + b"Angela lives here,B-PER O O\n" * 30
    )
    chunk = f"{len(part):x}\r\n".encode() + part + b"\r\n"
    cases = {
        "chunked": "Transfer-Encoding: chunked\r\n",
        "declared 10 GiB": f"Content-Length: {10 * 2**30}\r\n",
    }
    for name, headers in cases.items():
        sock = _open_upload(api_process, headers, chunk)
        with sock:
            status, seconds, data = _status_within(sock, 5)
            assert status == 401, (name, data)
            assert seconds < 2, (name, seconds)
            assert b"connection: close" in data.lower()
            assert b"www-authenticate: bearer" in data.lower()
    # The contrast: with a valid key the server does wait for that body (no answer yet), so
    # the 401 above was decided without it.
    with _open_upload(
        api_process,
        f"Transfer-Encoding: chunked\r\nAuthorization: Bearer {tokens['train']}\r\n",
        chunk,
    ) as sock:
        status, _seconds, _data = _status_within(sock, 1.5)
        assert status is None


# --- the commands ---------------------------------------------------------------------


def ner(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_keys_commands(keyed: Settings, svc) -> None:
    env = settings_env(keyed)
    made = ner("keys", "create", "--name", "nightly job", "--scopes", "train,predict", env=env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ner_") and "\n" not in token  # the token alone on stdout
    assert "only this once" in made.stderr

    listed = ner("keys", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert token not in listed.stdout and token[12:] not in listed.stdout
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    mine = next(r for r in rows if r["name"] == "nightly job")
    assert mine["scopes"] == ["predict", "train"] and mine["prefix"] == token[:12]
    assert mine["revoked_at"] is None
    table = ner("keys", "list", env=env)
    assert "nightly job" in table.stdout and token not in table.stdout

    with TestClient(create_app(keyed)) as c:
        assert c.get("/jobs", headers=bearer(token)).status_code == 200
        revoked = ner("keys", "revoke", mine["id"], env=env)
        assert revoked.returncode == 0 and mine["id"] in revoked.stdout
        time.sleep(keyed.api_key_cache_seconds + 0.2)
        assert c.get("/jobs", headers=bearer(token)).status_code == 401
    rows = [json.loads(x) for x in ner("keys", "list", "--json", env=env).stdout.splitlines()]
    assert next(r for r in rows if r["id"] == mine["id"])["revoked_at"] is not None

    bad = ner("keys", "create", "--name", "x", "--scopes", "root", env=env)
    assert bad.returncode == 2 and "unknown scope" in bad.stderr and "Traceback" not in bad.stderr
    unknown = ner("keys", "revoke", "nope", env=env)
    assert unknown.returncode == 2 and "not found" in unknown.stderr


def test_api_refuses_an_open_address_without_keys(keyed: Settings, tmp_path: Path) -> None:
    # A database with no keys and no NER_API_KEYS: authentication would be off.
    env = settings_env(keyed, NER_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    refused = ner("api", "--host", "0.0.0.0", "--port", str(free_port()), env=env)
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0" in refused.stderr
    assert "ner keys create" in refused.stderr and "--insecure" in refused.stderr
    assert "Traceback" not in refused.stderr
    # `ner serve` follows the same rule.
    refused = ner("serve", "--host", "0.0.0.0", "--port", str(free_port()), env=env)
    assert refused.returncode == 2 and "refusing" in refused.stderr


# --- the per-process cache: revocation within the TTL, and a database outage ----------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_resolver_cache_and_database_outage(svc, keyed: Settings) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from shared.errors import Unavailable

    clock = Clock()
    resolver = keys.KeyResolver(svc.sessions, keyed, clock=clock)
    with session_scope(svc.sessions) as s:
        row, token = keys.create_key(s, "cached", ["predict"])
    unseen = keys.new_token()
    assert resolver.peek(token) is keys.MISS  # nothing known yet: the database decides
    caller = resolver.authenticate(token)
    assert caller is not None and caller.scopes == {"predict"} and caller.key_id == row.id
    assert resolver.peek(token) == caller  # then memory answers, no query
    assert resolver.authenticate(QUICK_KEY) is keys.SETTINGS_KEY
    assert resolver.authenticate(None) is None and resolver.authenticate(unseen) is None

    with session_scope(svc.sessions) as s:
        keys.revoke_key(s, row.id)
    assert resolver.authenticate(token) == caller  # within the TTL: still known
    clock.now += keyed.api_key_cache_seconds
    assert resolver.authenticate(token) is None  # past it: revoked

    # The database goes away: what was learnt in the last minute stands, nothing new is
    # let in, and once that is old the answer is 503, never "allowed".
    with session_scope(svc.sessions) as s:
        _row2, live = keys.create_key(s, "live", ["train"])
    assert resolver.authenticate(live) is not None
    down = create_engine("postgresql+psycopg://ner:ner@127.0.0.1:1/ner")
    resolver.sessions = sessionmaker(down)
    clock.now += keyed.api_key_cache_seconds + 1
    assert resolver.authenticate(live) is not None
    with pytest.raises(Unavailable):
        resolver.authenticate(keys.new_token())
    clock.now += keys.STALE_IF_ERROR_SECONDS
    with pytest.raises(Unavailable):
        resolver.authenticate(live)
    assert resolver.authenticate(QUICK_KEY) is keys.SETTINGS_KEY  # no database needed
    down.dispose()


def test_no_keys_anywhere_means_open_and_revoking_the_last_key_does_not(
    service_settings: Settings, tmp_path: Path
) -> None:
    from shared.db import make_engine, make_session_factory
    from shared.migrate import upgrade_to_head

    url = f"sqlite:///{tmp_path / 'keys.sqlite3'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    settings = service_settings.model_copy(update={"api_keys": ""})
    clock = Clock()
    resolver = keys.KeyResolver(sessions, settings, clock=clock)
    assert resolver.authenticate(None) is keys.OPEN  # as before this issue: no auth
    with session_scope(sessions) as s:
        row, _token = keys.create_key(s, "only", ["admin"])
    clock.now += settings.api_key_cache_seconds
    assert resolver.authenticate(None) is None  # a key exists: authentication is on
    with session_scope(sessions) as s:
        keys.revoke_key(s, row.id)
    clock.now += settings.api_key_cache_seconds
    assert resolver.authenticate(None) is None  # and stays on: fail closed
    engine.dispose()
