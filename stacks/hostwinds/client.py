"""A small client for the Hostwinds cloud API (stdlib only: it runs inside the Pulumi program).

`POST https://clients.hostwinds.com/cloud/api.php`, form-encoded, `action=<name>&API=<key>`. The
API answers HTTP 200 on errors too, so every reply's body is checked and its own message raised.
The HTTP exchange sits behind `Transport` so tests can talk to a local server or a fake class.

No official document could be read (developers.hostwinds.com); the shapes follow the secondary
sources in /work/shared/reference/provisioning-review.md (W1-W10): errors are a JSON array
`[{"result": "error", "action": ..., "message": ..., "ERROR": ...}]` or one such object (the
authorisation error `{"result": "error", "message": "Not Authorized!"}`); `add_instance` answers
an array of results (`Invoice Paid`, `Server is being Created!`) with no service id, so the new
server is found by its `srvrname` in `get_instances`; `terminate` (param `serviceid`) answers
`[{"result": "success", "message": "Instance deleted"}]`; `get_price_list` entries carry both
`id` and `rid`, and `add_instance` takes the `rid`; the instance object's IPv6 key is `ip_v6`.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, Protocol

API_URL = "https://clients.hostwinds.com/cloud/api.php"
# Action names, kept in one place to correct (docs/stacks.md facts table says where each is from).
TERMINATE_ACTION = "terminate"  # server-management doc (secondary)
LIST_ACTION = "get_instances"  # server-management doc (secondary)
ADD_KEY_ACTION = "add_ssh_key"  # a public terracurl example; parameters unconfirmed
# Keys of a get_instance reply that must never leave this module (state, logs, errors).
SECRET_FIELDS = frozenset({"password", "root_password", "rootpassword", "pass", "vnc_password"})


class HostwindsError(Exception):
    """The API refused a call; the message is the API's own."""

    def __init__(self, action: str, message: str, *, permanent: bool = False) -> None:
        super().__init__(f"hostwinds {action}: {message}")
        self.action = action
        self.api_message = message
        self.permanent = permanent


class Transport(Protocol):
    def post(self, url: str, form: Sequence[tuple[str, str]], timeout: float) -> tuple[int, bytes]:
        """Send the form; return (HTTP status, body). Raise OSError on network failure."""
        ...


class UrllibTransport:
    def post(self, url: str, form: Sequence[tuple[str, str]], timeout: float) -> tuple[int, bytes]:
        data = urllib.parse.urlencode(list(form)).encode()
        request = urllib.request.Request(url, data=data, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read() or b"")


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items() if str(k).lower() not in SECRET_FIELDS}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return value


class HostwindsClient:
    def __init__(
        self,
        api_key: str,
        *,
        url: str = API_URL,
        transport: Transport | None = None,
        timeout: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_key = api_key
        self.url = url
        self.transport = transport or UrllibTransport()
        self.timeout = timeout
        self._sleep = sleep

    def __repr__(self) -> str:  # never show the key
        return f"HostwindsClient(url={self.url!r})"

    def call(self, action: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        form = [("action", action), ("API", self._api_key), *params]
        try:
            status, body = self.transport.post(self.url, form, self.timeout)
        except OSError as exc:
            raise HostwindsError(action, f"cannot reach the API: {exc}") from None
        try:
            reply = json.loads(body or b"null")
        except ValueError:
            snippet = body[:200].decode("utf-8", "replace")
            raise HostwindsError(action, f"HTTP {status}, not JSON: {snippet!r}") from None
        if isinstance(reply, list):
            # An array of results: any error in it is the call's error.
            results = [r for r in reply if isinstance(r, dict)]
            for result in results:
                error = _error_message(result)
                if error is not None:
                    raise HostwindsError(action, error, permanent=_is_permanent(error))
            if status >= 400 or not results:
                raise HostwindsError(action, f"HTTP {status}, unexpected reply")
            return _redact(results)
        if not isinstance(reply, dict):
            raise HostwindsError(action, f"HTTP {status}, unexpected reply")
        error = _error_message(reply)
        if error is not None:
            raise HostwindsError(action, error, permanent=_is_permanent(error))
        if status >= 400:
            raise HostwindsError(action, f"HTTP {status}")
        if "success" in reply:
            return _redact(reply["success"])
        if str(reply.get("result", "")).lower() == "success":
            return _redact(reply)
        raise HostwindsError(action, f"no result in reply (keys: {', '.join(sorted(reply))})")

    # The calls the provider makes ----------------------------------------------------------

    def resolve(self, action: str, wanted: str) -> str:
        """An id from a listing (`get_locations`, `get_price_list`): an all-digit `wanted` is
        taken as the id itself; otherwise the entry whose name contains it (case-insensitive).
        A price-list entry's `rid` is what `add_instance` takes (W7), so it wins over `id`."""
        if wanted.isdigit():
            return wanted
        entries = _entries(self.call(action))
        matches = [e for e in entries if wanted.lower() in _name(e).lower()]
        if not matches:
            names = ", ".join(sorted({_name(e) for e in entries})) or "none"
            raise HostwindsError(
                action, f"nothing named like {wanted!r}; have: {names}", permanent=True
            )
        return _id(matches[0], prefer="rid" if action == "get_price_list" else "id")

    def register_key(self, name: str, public_key: str) -> None:
        """The workspace's own SSH public key under `name`; an existing one is kept."""
        try:
            self.call(ADD_KEY_ACTION, [("name", name), ("ssh_key", public_key)])
        except HostwindsError as exc:
            if "exist" not in exc.api_message.lower():
                raise

    def find_instance(self, hostname: str) -> str | None:
        """The service id of the instance named `hostname` (`srvrname`), if there is one."""
        found = []
        for entry in _entries(self.call(LIST_ACTION)):
            names = {str(entry.get(k, "")).lower() for k in ("srvrname", "hostname", "name")}
            if hostname.lower() in names:
                found.append(_service_id(entry))
        if len(found) > 1:
            raise HostwindsError(
                LIST_ACTION,
                f"{len(found)} instances are named {hostname} ({', '.join(found)}); "
                "terminate the extra ones in the Hostwinds panel",
                permanent=True,
            )
        return found[0] if found else None

    def order_instance(
        self, *, location_id: str, product_id: str, image: str, hostname: str, ssh_key: str
    ) -> None:
        """Order (and pay for) one instance. The reply carries no service id (W4)."""
        self.call(
            "add_instance",
            [
                ("template", image),
                ("rid", product_id),
                ("location_id", location_id),
                ("qty", "1"),
                ("keys[]", ssh_key),
                ("srvrname", hostname),
                ("billingcycle", "monthly"),
            ],
        )

    def get_instance(self, service_id: str) -> dict[str, Any]:
        reply = self.call("get_instance", [("serviceid", service_id)])
        if not isinstance(reply, dict):
            raise HostwindsError("get_instance", f"unexpected reply {reply!r}")
        return reply

    def wait_active(
        self, service_id: str, *, attempts: int = 90, delay: float = 10.0
    ) -> dict[str, Any]:
        for _ in range(attempts):
            instance = self.get_instance(service_id)
            if str(instance.get("status", "")).upper() == "ACTIVE" and instance.get("main_ip"):
                return instance
            self._sleep(delay)
        raise HostwindsError("get_instance", f"instance {service_id} did not become ACTIVE")

    def terminate(self, service_id: str) -> None:
        """Terminate; an error is success only if a second lookup says the server is gone."""
        try:
            self.call(TERMINATE_ACTION, [("serviceid", service_id)])
        except HostwindsError as exc:
            if not self.is_gone(service_id):
                raise exc from None

    def is_gone(self, service_id: str) -> bool:
        try:
            instance = self.get_instance(service_id)
        except HostwindsError as exc:
            return "not found" in exc.api_message.lower()
        return str(instance.get("status", "")).lower() in ("terminated", "cancelled", "deleted")

    def set_rdns(self, action: str, service_id: str, ip: str, ptr: str) -> None:
        self.call(action, [("serviceid", service_id), ("ip", ip), ("ptr", ptr)])


def _error_message(reply: dict[str, Any]) -> str | None:
    if reply.get("error"):
        return str(reply["error"])
    if str(reply.get("result", "")).lower() in ("error", "failed", "failure"):
        return str(reply.get("message") or reply.get("msg") or "unspecified error")
    return None


def _is_permanent(message: str) -> bool:
    lowered = message.lower()
    return any(
        w in lowered
        for w in (
            "invalid",
            "not allowed",
            "unauthorized",
            "not authorized",
            "denied",
            "ip address",
        )
    )


def _entries(listing: Any) -> list[dict[str, Any]]:
    if isinstance(listing, dict):
        listing = [
            {"id": k, **v} if isinstance(v, dict) else {"id": k, "name": str(v)}
            for k, v in listing.items()
        ]
    return [e for e in listing if isinstance(e, dict)] if isinstance(listing, list) else []


def _name(entry: dict[str, Any]) -> str:
    for key in ("name", "location", "title", "description"):
        if entry.get(key):
            return str(entry[key])
    return ""


def _id(entry: dict[str, Any], prefer: str = "id") -> str:
    for key in (prefer, "id", "location_id", "rid", "pid"):
        if entry.get(key) not in (None, ""):
            return str(entry[key])
    raise HostwindsError("resolve", f"entry without an id: {entry!r}")


def _service_id(reply: Any) -> str:
    if isinstance(reply, list) and reply:
        return _service_id(reply[0])
    if isinstance(reply, dict):
        for key in ("serviceid", "service_id", "id", "sid"):
            if key in reply:
                return _service_id(reply[key])
    if isinstance(reply, int | str) and str(reply).isdigit():
        return str(reply)
    raise HostwindsError("add_instance", f"no service id in reply {reply!r}")
