"""The Hostwinds dynamic provider and its HTTP client, against a small Hostwinds-like HTTP server
on loopback (the real API is a boundary we cannot reach)."""

import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from stacks.hostwinds.client import HostwindsClient, HostwindsError
from stacks.hostwinds.provider import SECRET_OUTPUTS, HostwindsProvider
from tests.support.stack_fleet import HOSTWINDS_KEY, evaluate, fleet_config, server

ROOT_PASSWORD = "root-pw-from-hostwinds"


class FakeHostwinds:
    """Answers like the Hostwinds cloud API: form posts, HTTP 200 even for errors."""

    def __init__(self) -> None:
        self.calls: list[dict[str, list[str]]] = []
        self.instances: dict[str, dict[str, Any]] = {}
        self.polls_until_active = 1

    def handle(self, form: dict[str, list[str]]) -> Any:
        self.calls.append(form)
        if form.get("API") != [HOSTWINDS_KEY]:
            return {"result": "error", "message": "Invalid API key or IP address not allowed"}
        action = form["action"][0]
        if action == "get_locations":
            return {"success": [{"id": 1, "name": "Dallas"}, {"id": 2, "name": "Seattle"}]}
        if action == "get_price_list":
            return {
                "success": {
                    "10": {"name": "Unmanaged Linux 2GB"},
                    "11": {"name": "Unmanaged Linux 4GB"},
                }
            }
        if action == "add_instance":
            service_id = str(5000 + len(self.instances))
            self.instances[service_id] = {"form": form, "polls": 0}
            return {"success": {"serviceid": [int(service_id)]}}
        if action == "get_instance":
            instance = self.instances.get(form["serviceid"][0])
            if instance is None:
                return {"error": "Service not found"}
            instance["polls"] += 1
            active = instance["polls"] > self.polls_until_active
            return {
                "success": {
                    "main_ip": "203.0.113.9" if active else "",
                    "status": "ACTIVE" if active else "PENDING",
                    "password": ROOT_PASSWORD,
                    "ipv6": "2001:db8::9",
                }
            }
        if action == "terminate_instance":
            if self.instances.pop(form["serviceid"][0], None) is None:
                return {"error": "Service not found"}
            return {"success": "terminated"}
        return {"error": f"unknown action {action}"}


@pytest.fixture
def api() -> Iterator[tuple[FakeHostwinds, str]]:
    fake = FakeHostwinds()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            form = urllib.parse.parse_qs(self.rfile.read(length).decode())
            body = json.dumps(fake.handle(form)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{httpd.server_address[1]}/cloud/api.php"
    finally:
        httpd.shutdown()
        httpd.server_close()


def client(url: str, key: str = HOSTWINDS_KEY) -> HostwindsClient:
    return HostwindsClient(key, url=url, sleep=lambda _: None)


def test_error_answered_with_http_200_raises_the_api_message(
    api: tuple[FakeHostwinds, str],
) -> None:
    _, url = api
    with pytest.raises(HostwindsError) as err:
        client(url, key="wrong").call("get_locations")
    assert "Invalid API key or IP address not allowed" in str(err.value)
    assert err.value.permanent
    assert "wrong" not in str(err.value) and "wrong" not in repr(client(url, key="wrong"))


def test_resolve_ids_by_name_or_digits(api: tuple[FakeHostwinds, str]) -> None:
    _, url = api
    c = client(url)
    assert c.resolve("get_locations", "seattle") == "2"
    assert c.resolve("get_price_list", "4GB") == "11"
    assert c.resolve("get_price_list", "42") == "42"
    with pytest.raises(HostwindsError) as err:
        c.resolve("get_locations", "Tokyo")
    assert "Dallas" in str(err.value) and "Seattle" in str(err.value)


def test_root_password_never_leaves_the_client(api: tuple[FakeHostwinds, str]) -> None:
    fake, url = api
    fake.instances["77"] = {"polls": 5}
    instance = client(url).get_instance("77")
    assert instance["main_ip"] == "203.0.113.9"
    assert ROOT_PASSWORD not in json.dumps(instance)


def test_provider_create_read_delete(api: tuple[FakeHostwinds, str]) -> None:
    fake, url = api
    provider = HostwindsProvider()
    provider.client_url = url
    provider.poll_delay = 0
    props = {
        "api_key": HOSTWINDS_KEY,
        "location": "Seattle",
        "product": "2GB",
        "image": "Ubuntu 24.04",
        "hostname": "mx1.mail.example.net",
        "ssh_key": "penguinmails",
    }
    created = provider.create(props)
    assert created.outs is not None
    assert created.outs["main_ip"] == "203.0.113.9"
    assert created.outs["status"] == "running"
    assert ROOT_PASSWORD not in json.dumps(created.outs)
    [order] = [c for c in fake.calls if c["action"] == ["add_instance"]]
    assert order["location_id"] == ["2"] and order["rid"] == ["10"]
    assert order["srvrname"] == ["mx1.mail.example.net"] and order["keys[]"] == ["penguinmails"]

    read = provider.read(created.id, created.outs)
    assert read.id == created.id and read.outs is not None
    assert read.outs["ipv6"] == "2001:db8::9"

    provider.delete(created.id, created.outs)
    assert created.id not in fake.instances
    gone = provider.read(created.id, created.outs)
    assert gone.id is None


def test_provider_surfaces_the_api_error_on_create(api: tuple[FakeHostwinds, str]) -> None:
    _, url = api
    provider = HostwindsProvider()
    provider.client_url = url
    props = {"api_key": "wrong", "location": "Seattle", "product": "2GB", "image": "x",
             "hostname": "h.example.net", "ssh_key": "k"}  # fmt: skip
    with pytest.raises(Exception, match="Invalid API key or IP address not allowed"):
        provider.create(props)


def test_diff_replaces_on_machine_inputs_only() -> None:
    provider = HostwindsProvider()
    old = {"api_key": "a", "location": "Seattle", "product": "2GB", "image": "x",
           "hostname": "h.example.net", "ssh_key": "k"}  # fmt: skip
    assert provider.diff("1", old, dict(old)).changes is False
    rotated = provider.diff("1", old, {**old, "api_key": "b"})
    assert rotated.changes is True and rotated.replaces == []
    moved = provider.diff("1", old, {**old, "location": "Dallas"})
    assert moved.replaces == ["location"]


def test_program_declares_the_instance_with_a_secret_key() -> None:
    run = evaluate(fleet_config(servers=(server("hw", provider="hostwinds", region="us-west"),)))
    [instance] = run.recorder.of_type("pulumi-python:dynamic/hostwinds:Instance")
    assert instance.is_secret("api_key")
    assert instance.input("api_key") == HOSTWINDS_KEY
    assert instance.input("location") == "Seattle"
    assert instance.input("product") == "2GB"
    assert instance.input("hostname") == "hw.mail.example.net"
    assert SECRET_OUTPUTS == ["api_key"]
    assert run.outputs["servers"]["hw"]["ipv4"].startswith("203.0.113.")
