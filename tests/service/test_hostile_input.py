"""Hostile input against the API on real PostgreSQL, Redis and S3: streamed bodies over the
limit, hostile zips, unprocessable text, ids the database cannot hold, base models outside
what the operator allows. Each is a 4xx with a detail, never a 5xx."""

from __future__ import annotations

import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings

pytestmark = pytest.mark.services

GOOD_CSV = "text,labels\nAngela lives in Berlin,B-PER O O B-LOC\n"


@pytest.fixture(scope="module")
def limited(service_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    models = tmp_path_factory.mktemp("models")
    (models / "mini").mkdir()
    return service_settings.model_copy(
        update={
            "max_upload_bytes": 64 * 1024,
            "max_unpacked_bytes": 256 * 1024,
            "max_predict_body_bytes": 2048,
            "allowed_base_models": "bert-base-cased",
            "models_dir": models,
        }
    )


@pytest.fixture(scope="module")
def client(limited: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(limited), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def live(limited: Settings) -> Iterator[tuple[str, int]]:
    """The app under a real uvicorn, for what a test client cannot send (a chunked body)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(
        uvicorn.Config(create_app(limited), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(10)


def raw_request(address: tuple[str, int], head: bytes, chunks: Iterator[bytes]) -> tuple[int, int]:
    """Send a request by hand; (status, bytes of the body sent before the answer came)."""
    sent = 0
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(head)
        sock.settimeout(0.01)
        answer = b""
        for chunk in chunks:
            try:
                sock.sendall(chunk)
                sent += len(chunk)
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break  # the server closed the connection: it stopped reading
            if answer:
                break
        sock.settimeout(10)
        while b"\r\n" not in answer:
            more = sock.recv(65536)
            if not more:
                break
            answer += more
    return int(answer.split(b" ", 2)[1]), sent


def test_a_chunked_body_is_refused_as_it_passes_the_limit(live: tuple[str, int]) -> None:
    head = (
        b"POST /jobs/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    block = b"x" * 8192

    def chunks() -> Iterator[bytes]:
        yield b"%x\r\n%s\r\n" % (len(block), block)
        for _ in range(2000):  # 16 MB offered; the limit is 64 kB
            time.sleep(0.002)
            yield b"%x\r\n%s\r\n" % (len(block), block)

    status, sent = raw_request(live, head, chunks())
    assert status == 413
    assert sent < 2 * 1024 * 1024  # answered long before the end of the body


def test_a_declared_length_over_the_limit_is_refused_before_reading(live) -> None:
    head = (
        b"POST /datasets HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 999999999\r\n\r\n"
    )
    status, _ = raw_request(live, head, iter([b"--b\r\n"]))
    assert status == 413


def test_predict_has_its_own_smaller_limit(client: TestClient) -> None:
    r = client.post("/predict", json={"texts": ["x" * 100] * 30})
    assert r.status_code == 413 and "2048 bytes" in r.json()["detail"]
    # 3 kB is well within an upload's limit.
    r = client.post("/datasets", files={"file": ("d.csv", io.BytesIO(GOOD_CSV.encode() * 70))})
    assert r.status_code != 413


def zip_upload(members: dict[str, bytes]) -> dict:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return {"file": ("data.zip", io.BytesIO(buffer.getvalue()), "application/zip")}


def test_hostile_zips(client: TestClient) -> None:
    r = client.post("/datasets", files=zip_upload({"d.csv": b"a" * (8 << 20)}))
    assert r.status_code == 413 and "expands to" in r.json()["detail"][0]["message"]
    r = client.post("/datasets", files=zip_upload({"../d.csv": GOOD_CSV.encode()}))
    assert r.status_code == 422 and "climbs out" in r.json()["detail"][0]["message"]
    inner = zip_upload({"d.csv": GOOD_CSV.encode()})["file"][1].getvalue()
    r = client.post("/datasets", files=zip_upload({"d.csv": inner}))
    assert r.status_code == 422 and "itself an archive" in r.json()["detail"][0]["message"]
    assert client.post("/datasets", files=zip_upload({"d.csv": GOOD_CSV.encode()})).is_success


def test_text_that_cannot_be_processed_or_stored(client: TestClient) -> None:
    as_json = {"content-type": "application/json"}
    for url, body in [
        ("/predict", b'{"text": "Angela \\ud800 Merkel"}'),
        ("/predict", b'{"texts": ["fine", "\\udfff"]}'),
        ("/jobs/predict", b'{"documents": [{"text": "a \\ud83d b"}]}'),
        ("/jobs/predict", b'{"documents": [{"text": "a \\u0000 b"}]}'),
        ("/jobs/predict", b'{"documents": [{"id": "x\\u0000", "text": "a"}]}'),
        ("/jobs/predict", b'{"documents": [{"id": 123456789012345678901234567890, "text": "a"}]}'),
        ("/jobs/predict", b'{"documents": [{"id": "' + b"i" * 300 + b'", "text": "a"}]}'),
    ]:
        r = client.post(url, content=body, headers=as_json)
        assert r.status_code == 422, (url, body[:60], r.text)
    files = {"file": ("d.jsonl", io.BytesIO(b'{"id": "a", "text": "x\\u0000y"}\n'))}
    r = client.post("/jobs/predict", files=files)
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    # Bodies that are not JSON at all: invalid UTF-8, nesting deeper than any parser goes.
    for body in (b'{"text": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000):
        r = client.post("/jobs/predict", content=body, headers=as_json)
        assert 400 <= r.status_code < 500, r.text
    # A NUL or bytes that are not UTF-8 in an upload's file name are cleaned, not stored.
    body = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="d\x00\xff.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + GOOD_CSV.encode() + b"\r\n--b--\r\n"
    )
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    r = client.post("/datasets", content=body, headers=multipart)
    assert r.status_code == 201, r.text
    assert "\x00" not in r.json()["name"]


@pytest.mark.parametrize("name", ["..", "../../etc/passwd", "/", ".", "a/../../b.csv"])
def test_upload_names_that_are_paths(client: TestClient, name: str) -> None:
    r = client.post("/datasets", files={"file": (name, io.BytesIO(GOOD_CSV.encode()))})
    assert r.status_code == 201, r.text  # stored under a cleaned name, read by its content
    assert r.json()["sentences"] == 1


def test_ids_the_database_cannot_hold(client: TestClient) -> None:
    for path in ("/jobs/a%00b", "/jobs/" + "a" * 65, "/models/x%20y", "/datasets/%F0%9F%98%80"):
        assert client.get(path).status_code == 422, path
    assert client.get("/jobs", params={"offset": 10**12}).status_code == 422
    assert client.get("/jobs/" + "a" * 64).status_code == 404


def test_base_model_is_checked_at_submission(client: TestClient, limited: Settings) -> None:
    dataset_id = client.post("/datasets", files={"file": ("d.csv", io.BytesIO(GOOD_CSV.encode()))})
    dataset_id = dataset_id.json()["id"]
    outside = Path(limited.models_dir or ".").parent
    (limited.models_dir / "escape").symlink_to(outside)  # type: ignore[operator]
    for refused in ("gpt2", "/etc", "../", "mini/../..", "escape", "nope", "a\x00b"):
        r = client.post("/jobs/train", json={"dataset_id": dataset_id, "base_model": refused})
        assert r.status_code == 422, refused
        assert "not allowed" in r.json()["detail"][0]["msg"]
    for allowed, stored in [
        (None, None),
        ("default", None),
        ("bert-base-cased", "bert-base-cased"),
        ("mini", str((limited.models_dir / "mini").resolve())),  # type: ignore[operator]
        ("sentence-transformers/all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"),
    ]:
        r = client.post("/jobs/train", json={"dataset_id": dataset_id, "base_model": allowed})
        assert r.status_code == 202, (allowed, r.text)
        assert r.json()["params"]["base_model"] == stored
    # A preset names a packaged encoder, so it is accepted whatever the list says, and the
    # job shows what it will run with; a parameter given beside it wins.
    r = client.post(
        "/jobs/train",
        json={"dataset_id": dataset_id, "preset": "accurate", "learning_rate": 3e-5},
    )
    assert r.status_code == 202, r.text
    params = r.json()["params"]
    assert params["preset"] == "accurate" and params["base_model"] == "all-mpnet-base-v2"
    assert params["learning_rate"] == 3e-5 and params["casing"] is False
    r = client.post("/jobs/train", json={"dataset_id": dataset_id, "preset": "fastest"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "preset"
