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
from stacks.hostwinds.provider import SECRET_OUTPUTS, HostwindsProvider, ReadyProvider
from tests.support.stack_fleet import HOSTWINDS_KEY, SSH_PUBLIC, evaluate, fleet_config, server

ROOT_PASSWORD = "root-pw-from-hostwinds"


class FakeHostwinds:
    """Answers like the Hostwinds cloud API as its docs describe it (secondary sources, see
    stacks/hostwinds/client.py and the provisioning review W1-W10): form posts, HTTP 200 even
    for errors, errors as a JSON array of results (or one object for authorisation),
    `add_instance` answering results with no service id, `terminate` an array of results."""

    def __init__(self) -> None:
        self.calls: list[dict[str, list[str]]] = []
        self.instances: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}
        self.polls_until_active = 1
        self.listed_after = 0  # get_instances calls after an order before it lists the server
        self.ptr: dict[str, str] = {}
        self.terminate_error: str | None = None

    def handle(self, form: dict[str, list[str]]) -> Any:
        self.calls.append(form)
        if form.get("API") != [HOSTWINDS_KEY]:
            return {"result": "error", "action": "Authorization", "message": "Not Authorized!"}
        action = form["action"][0]
        if action == "get_locations":
            return {"success": [{"id": 1, "name": "Dallas"}, {"id": 2, "name": "Seattle"}]}
        if action == "get_price_list":
            return {
                "success": {
                    "a": {"id": 900, "rid": 10, "name": "Unmanaged Linux 2GB"},
                    "b": {"id": 901, "rid": 11, "name": "Unmanaged Linux 4GB"},
                }
            }
        if action == "add_ssh_key":
            name = form["name"][0]
            if name in self.keys:
                return [
                    {"result": "error", "action": "Add SSH Key", "message": "Key already exists"}
                ]
            self.keys[name] = form["ssh_key"][0]
            return {"success": {"name": name}}
        if action == "add_instance":
            if form["location_id"] != ["2"] and form["location_id"] != ["1"]:
                return [{"result": "error", "action": "Add Instance",
                         "message": "Location Id is invalid.", "ERROR": "342432"}]  # fmt: skip
            if form["keys[]"][0] not in self.keys:
                return [{"result": "error", "action": "Add Instance", "message": "Invalid key"}]
            service_id = str(5000 + len(self.instances))
            self.instances[service_id] = {"form": form, "polls": 0, "lists": 0}
            return [
                {"result": "success", "action": "Invoice Paid", "message": "Invoice Paid"},
                {
                    "result": "success",
                    "action": "Add Instance",
                    "message": "Server is being Created!",
                },
            ]
        if action == "get_instances":
            listed = []
            for sid, inst in self.instances.items():
                inst["lists"] += 1
                if inst["lists"] > self.listed_after:
                    listed.append({"serviceid": int(sid), "srvrname": inst["form"]["srvrname"][0]})
            return {"success": listed}
        if action == "get_instance":
            instance = self.instances.get(form["serviceid"][0])
            if instance is None:
                return [
                    {"result": "error", "action": "Get Instance", "message": "Service not found"}
                ]
            instance["polls"] += 1
            active = instance["polls"] > self.polls_until_active
            return {
                "success": {
                    "main_ip": "203.0.113.9" if active else "",
                    "status": "ACTIVE" if active else "BUILD",
                    "password": ROOT_PASSWORD,
                    "ip_v6": "2001:db8::9",
                }
            }
        if action == "terminate":
            if self.terminate_error:
                return [{"result": "error", "action": "Terminate", "message": self.terminate_error}]
            if self.instances.pop(form["serviceid"][0], None) is None:
                return [{"result": "error", "action": "Terminate", "message": "Service not found"}]
            return [{"result": "success", "message": "Instance deleted"}]
        if action == "set_rdns":
            self.ptr[form["ip"][0]] = form["ptr"][0]
            return {"success": "rDNS updated"}
        return [{"result": "error", "action": action, "message": f"Unknown action {action}"}]


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


PROPS = {
    "api_key": HOSTWINDS_KEY,
    "location": "Seattle",
    "product": "2GB",
    "image": "Ubuntu 24.04",
    "hostname": "mx1.mail.example.net",
    "ssh_key_name": "penguinmails-ws1",
    "ssh_public_key": SSH_PUBLIC,
}


def provider(url: str) -> HostwindsProvider:
    p = HostwindsProvider()
    p.client_url, p.poll_delay = url, 0
    return p


def ready_provider(url: str) -> ReadyProvider:
    p = ReadyProvider()
    p.client_url, p.poll_delay = url, 0
    return p


def test_error_answered_with_http_200_raises_the_api_message(
    api: tuple[FakeHostwinds, str],
) -> None:
    _, url = api
    with pytest.raises(HostwindsError) as err:
        client(url, key="wrong").call("get_locations")
    assert "Not Authorized!" in str(err.value)
    assert err.value.permanent
    assert "wrong" not in str(err.value) and "wrong" not in repr(client(url, key="wrong"))
    with pytest.raises(HostwindsError) as err:
        client(url).call("add_instance", [("location_id", "7"), ("keys[]", "x")])
    assert "Location Id is invalid." in str(err.value) and err.value.permanent


def test_resolve_ids_by_name_or_digits_and_rid_for_plans(api: tuple[FakeHostwinds, str]) -> None:
    _, url = api
    c = client(url)
    assert c.resolve("get_locations", "seattle") == "2"
    assert c.resolve("get_price_list", "4GB") == "11"  # the rid, not the id (901)
    assert c.resolve("get_price_list", "42") == "42"
    with pytest.raises(HostwindsError) as err:
        c.resolve("get_locations", "Tokyo")
    assert "Dallas" in str(err.value) and "Seattle" in str(err.value)


def test_root_password_never_leaves_the_client(api: tuple[FakeHostwinds, str]) -> None:
    fake, url = api
    fake.instances["77"] = {"polls": 5, "lists": 0}
    instance = client(url).get_instance("77")
    assert instance["main_ip"] == "203.0.113.9"
    assert ROOT_PASSWORD not in json.dumps(instance)


def test_order_registers_the_workspace_key_and_records_the_id_found_by_name(
    api: tuple[FakeHostwinds, str],
) -> None:
    fake, url = api
    fake.listed_after = 2  # the new server shows in get_instances only on the third look
    created = provider(url).create(dict(PROPS))
    assert created.id == "5000" and created.outs is not None
    assert created.outs["service_id"] == "5000"
    assert fake.keys == {"penguinmails-ws1": SSH_PUBLIC}
    [order] = [c for c in fake.calls if c["action"] == ["add_instance"]]
    assert order["location_id"] == ["2"] and order["rid"] == ["10"]
    assert order["srvrname"] == ["mx1.mail.example.net"] and order["keys[]"] == ["penguinmails-ws1"]
    # Create returned without waiting for the machine: no get_instance poll yet.
    assert not [c for c in fake.calls if c["action"] == ["get_instance"]]


def test_a_lost_order_is_adopted_by_name_never_bought_twice(api: tuple[FakeHostwinds, str]) -> None:
    fake, url = api
    fake.listed_after = 100  # not listed within this run
    p = provider(url)
    p.find_attempts = 2
    with pytest.raises(Exception, match="the next run adopts it by that name"):
        p.create(dict(PROPS))
    assert len(fake.instances) == 1
    fake.listed_after = 0
    again = p.create(dict(PROPS))
    assert again.id == "5000"
    assert len([c for c in fake.calls if c["action"] == ["add_instance"]]) == 1
    assert len(fake.instances) == 1


def test_ready_polls_then_reports_addresses_and_the_ptr(api: tuple[FakeHostwinds, str]) -> None:
    fake, url = api
    created = provider(url).create(dict(PROPS))
    props = {"api_key": HOSTWINDS_KEY, "service_id": created.id, "hostname": PROPS["hostname"],
             "rdns_action": ""}  # fmt: skip
    ready = ready_provider(url).create(dict(props))
    assert ready.outs is not None
    assert ready.outs["main_ip"] == "203.0.113.9" and ready.outs["ipv6"] == "2001:db8::9"
    assert ready.outs["status"] == "running"
    assert ready.outs["ptr"].startswith("not set: Hostwinds documents no rDNS API action")
    assert ROOT_PASSWORD not in json.dumps(ready.outs)
    with_rdns = ready_provider(url).create({**props, "rdns_action": "set_rdns"})
    assert with_rdns.outs is not None and with_rdns.outs["ptr"] == "set"
    assert fake.ptr == {"203.0.113.9": PROPS["hostname"], "2001:db8::9": PROPS["hostname"]}


def test_ready_timing_out_leaves_the_order_in_state(api: tuple[FakeHostwinds, str]) -> None:
    fake, url = api
    fake.polls_until_active = 1000
    created = provider(url).create(dict(PROPS))
    p = ready_provider(url)
    p.poll_attempts = 3
    with pytest.raises(Exception, match="did not become ACTIVE"):
        p.create({"api_key": HOSTWINDS_KEY, "service_id": created.id, "hostname": "h"})
    assert created.id in fake.instances  # the order is the Instance's: the next run polls again


def test_terminate_uses_the_real_action_and_checks_a_not_found_twice(
    api: tuple[FakeHostwinds, str],
) -> None:
    fake, url = api
    p = provider(url)
    created = p.create(dict(PROPS))
    assert created.outs is not None
    fake.terminate_error = "Service not found"  # a lie: the server is still there
    with pytest.raises(Exception, match="Service not found"):
        p.delete(created.id, created.outs)
    assert created.id in fake.instances
    fake.terminate_error = None
    p.delete(created.id, created.outs)
    assert created.id not in fake.instances
    assert [c["action"] for c in fake.calls if c["action"][0].startswith("term")] == [
        ["terminate"],
        ["terminate"],
    ]
    p.delete(created.id, created.outs)  # already gone (a second lookup agrees): done
    assert p.read(created.id, created.outs).id is None


def test_provider_surfaces_the_api_error_on_create(api: tuple[FakeHostwinds, str]) -> None:
    _, url = api
    with pytest.raises(Exception, match="Not Authorized!"):
        provider(url).create({**PROPS, "api_key": "wrong"})


def test_diff_replaces_on_machine_inputs_only() -> None:
    p = HostwindsProvider()
    old = dict(PROPS, api_key="a")
    assert p.diff("1", old, dict(old)).changes is False
    rotated = p.diff("1", old, {**old, "api_key": "b"})
    assert rotated.changes is True and rotated.replaces == []
    moved = p.diff("1", old, {**old, "location": "Dallas"})
    assert moved.replaces == ["location"]


def test_program_declares_the_instance_with_the_workspace_key() -> None:
    config = fleet_config(servers=(server("hw", provider="hostwinds", region="us-west"),))
    run = evaluate(config)
    [instance] = run.recorder.of_type("pulumi-python:dynamic/hostwinds:Instance")
    assert instance.is_secret("api_key")
    assert instance.input("api_key") == HOSTWINDS_KEY
    assert instance.input("location") == "Seattle"
    assert instance.input("product") == "2GB"
    assert instance.input("hostname") == "hw.mail.example.net"
    assert instance.input("ssh_public_key") == SSH_PUBLIC == config.ssh_public_key
    assert instance.input("ssh_key_name") == f"penguinmails-{config.workspace_id}"
    [ready] = run.recorder.of_type("pulumi-python:dynamic/hostwinds:Ready")
    assert ready.is_secret("api_key")
    assert SECRET_OUTPUTS == ["api_key"]
    assert run.outputs["servers"]["hw"]["ipv4"].startswith("203.0.113.")
