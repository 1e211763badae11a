"""Request body limit (`api.limits`): 413 `payload_too_large` in the one error shape, before the
body is read when Content-Length says so, and as soon as a chunked body passes the limit."""

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.app import create_app
from tests.support.factories import create_tenant
from tests.support.fixtures import OverrideSettings
from tests.support.ports import free_port

LIMIT = 1_048_576  # the default


def _padded(payload: dict[str, object], size: int) -> bytes:
    """`payload` as JSON, padded with trailing whitespace (valid JSON) to exactly `size` bytes."""
    raw = json.dumps(payload).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def _assert_413(body: dict[str, object], limit: int = LIMIT) -> None:
    assert body == {
        "error": {
            "code": "payload_too_large",
            "message": f"request body is larger than {limit} bytes",
            "field": "body",
            "details": [{"limit_bytes": limit}],
        }
    }


def test_a_body_over_the_limit_is_413_and_nothing_is_created(
    client: TestClient, session: Session
) -> None:
    tenant = create_tenant(session)
    r = client.post(
        "/api/v1/workspaces",
        content=_padded({"name": "too-big"}, LIMIT + 1),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    _assert_413(r.json())
    listed = client.get("/api/v1/workspaces", headers=tenant.headers).json()
    assert listed["total"] == 0


def test_a_body_of_exactly_the_limit_is_served(client: TestClient, session: Session) -> None:
    tenant = create_tenant(session)
    r = client.post(
        "/api/v1/workspaces",
        content=_padded({"name": "just-fits"}, LIMIT),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 201, r.text


def test_the_limit_is_a_setting(
    client: TestClient, session: Session, override_settings: OverrideSettings
) -> None:
    tenant = create_tenant(session)
    override_settings(max_body_bytes=200)
    r = client.post(
        "/api/v1/workspaces",
        content=_padded({"name": "small"}, 201),
        headers={**tenant.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    _assert_413(r.json(), 200)
    r = client.post("/api/v1/workspaces", json={"name": "small"}, headers=tenant.headers)
    assert r.status_code == 201, r.text


def test_413_is_documented_in_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    create = spec["paths"]["/api/v1/workspaces"]["post"]["responses"]
    assert "413" in create and "503" in create


# A real server: the TestClient hands the app the whole body at once, uvicorn streams it.


@pytest.fixture
def server(database_url: str) -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not srv.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield port
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response with a Content-Length (bounded by the socket timeout)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return status, headers, body


def test_content_length_over_the_limit_is_answered_before_any_body_is_sent(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/workspaces HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nContent-Length: 209715200\r\n\r\n"
        )  # 200 MB announced, not one byte of it sent
        status, headers, body = _response(sock)
    assert status == 413
    assert headers["connection"] == "close"
    _assert_413(json.loads(body))


def test_a_chunked_body_is_cut_off_once_over_the_limit(server: int) -> None:
    chunk = b" " * 65536
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/workspaces HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(LIMIT // len(chunk) + 1):  # one chunk past the limit, and no final chunk
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # The body never ends: the answer can only come from counting what was streamed.
        status, _, body = _response(sock)
    assert status == 413
    _assert_413(json.loads(body))


def test_a_chunked_body_under_the_limit_reaches_the_application(server: int) -> None:
    payload = _padded({"name": "streamed"}, LIMIT - 10)
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/workspaces HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for start in range(0, len(payload), 65536):
            part = payload[start : start + 65536]
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        sock.sendall(b"0\r\n\r\n")
        status, _, body = _response(sock)
    assert status == 401, body  # read and parsed in full, then refused for the missing key
