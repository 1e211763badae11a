"""A Hostwinds cloud server as two Pulumi dynamic resources, so that a paid order is never left
outside Pulumi's state:

- `Instance` orders the server and returns as soon as it has the service id. `add_instance`
  answers with no id (W4 in the provisioning review), so the id is found a second way, by the
  server's name in `get_instances`; and before ordering, an instance already carrying that name
  (an earlier order whose run failed after paying) is adopted instead of buying another. The
  workspace's own SSH public key is registered first (`add_ssh_key`), and the order trusts it.
- `Ready` polls `get_instance` until the server is ACTIVE with an address (a failed or timed-out
  poll leaves the `Instance` in state: the next run polls again, it never re-orders), then sets
  the PTR through the rDNS action when one is configured (`catalog.hostwinds.rdns_action`; none
  is documented publicly), else reports a warning in its `ptr` output.

The API key is an input (so a later delete can authenticate) and is listed in
`additional_secret_outputs`, so Pulumi encrypts it in state like any secret; the root password a
`get_instance` reply carries is dropped by the client before anything is returned.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from stacks.hostwinds.client import HostwindsClient, HostwindsError

# Changing any of these means another machine (the key is trusted at order time only).
REPLACE_ON = ("location", "product", "image", "hostname", "ssh_key_name", "ssh_public_key")
REQUIRED = ("api_key", *REPLACE_ON)
SECRET_OUTPUTS = ["api_key"]


def _fail(exc: HostwindsError) -> Exception:
    return Exception(str(exc))  # the API's own message, no traceback noise


class _Base(ResourceProvider):
    client_url: str | None = None  # tests point it at a local server
    poll_delay: float = 10.0  # seconds between polls
    find_attempts: int = 6  # get_instances lookups after an order before giving up for this run
    poll_attempts: int = 90

    def _client(self, props: dict[str, Any]) -> HostwindsClient:
        if self.client_url:
            return HostwindsClient(str(props["api_key"]), url=self.client_url)
        return HostwindsClient(str(props["api_key"]))


class HostwindsProvider(_Base):
    """Stateless: every call builds its client from the resource's own (secret) inputs."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = [
            CheckFailure(key, f"{key} is required")
            for key in REQUIRED
            if not isinstance(news.get(key), str) or not news[key]
        ]
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in REPLACE_ON if olds.get(k) != news.get(k)]
        changed = bool(replaces) or olds.get("api_key") != news.get("api_key")
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self._client(props)
        hostname = str(props["hostname"])
        try:
            service_id = client.find_instance(hostname)
            if service_id is None:
                client.register_key(str(props["ssh_key_name"]), str(props["ssh_public_key"]))
                client.order_instance(
                    location_id=client.resolve("get_locations", str(props["location"])),
                    product_id=client.resolve("get_price_list", str(props["product"])),
                    image=str(props["image"]),
                    hostname=hostname,
                    ssh_key=str(props["ssh_key_name"]),
                )
                for attempt in range(self.find_attempts):
                    service_id = client.find_instance(hostname)
                    if service_id is not None:
                        break
                    if attempt + 1 < self.find_attempts:
                        client._sleep(self.poll_delay)
            if service_id is None:
                raise HostwindsError(
                    "add_instance",
                    f"ordered {hostname}, but get_instances does not list it yet; the next run "
                    "adopts it by that name instead of ordering again",
                )
        except HostwindsError as exc:
            raise _fail(exc) from None
        return CreateResult(
            service_id, {**{k: props[k] for k in REQUIRED}, "service_id": service_id}
        )

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = self._client(props)
        try:
            if client.is_gone(id_):
                return ReadResult(None, {})  # gone: Pulumi drops it from state on refresh
        except HostwindsError as exc:
            raise _fail(exc) from None
        return ReadResult(id_, {**props, "service_id": id_})

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only the API key can change in place; nothing to tell Hostwinds.
        return UpdateResult({**olds, "api_key": news["api_key"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            self._client(props).terminate(id_)
        except HostwindsError as exc:
            raise _fail(exc) from None


def ready_outputs(
    client: HostwindsClient, props: dict[str, Any], instance: dict[str, Any]
) -> dict[str, Any]:
    ipv4 = str(instance.get("main_ip") or "")
    ipv6 = str(instance.get("ip_v6") or "")
    action = str(props.get("rdns_action") or "")
    hostname = str(props["hostname"])
    if action:
        for ip in (ipv4, ipv6):
            if ip:
                client.set_rdns(action, str(props["service_id"]), ip, hostname)
        ptr = "set"
    else:
        ptr = (
            f"not set: Hostwinds documents no rDNS API action; set the PTR of {ipv4} to "
            f"{hostname} in the Hostwinds panel (Gmail rejects mail without it: 550-5.7.25), or "
            "name the action in catalog.hostwinds.rdns_action"
        )
    return {
        "api_key": props["api_key"],
        "service_id": props["service_id"],
        "hostname": hostname,
        "rdns_action": action,
        "main_ip": ipv4,
        "ipv6": ipv6,
        "status": "running" if str(instance.get("status", "")).upper() == "ACTIVE" else "pending",
        "ptr": ptr,
    }


class ReadyProvider(_Base):
    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [
            k for k in ("service_id", "hostname", "rdns_action") if olds.get(k) != news.get(k)
        ]
        changed = bool(replaces) or olds.get("api_key") != news.get("api_key")
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = self._client(props)
        try:
            instance = client.wait_active(
                str(props["service_id"]), attempts=self.poll_attempts, delay=self.poll_delay
            )
            outs = ready_outputs(client, props, instance)
        except HostwindsError as exc:
            raise _fail(exc) from None
        return CreateResult(f"ready-{props['service_id']}", outs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            instance = self._client(props).get_instance(str(props["service_id"]))
        except HostwindsError as exc:
            if "not found" in exc.api_message.lower():
                return ReadResult(None, {})
            raise _fail(exc) from None
        return ReadResult(
            id_,
            {
                **props,
                "main_ip": str(instance.get("main_ip") or ""),
                "ipv6": str(instance.get("ip_v6") or ""),
            },
        )

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**olds, "api_key": news["api_key"]})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None  # nothing to undo: the Instance's delete terminates the server


class Instance(pulumi.dynamic.Resource, module="hostwinds", name="Instance"):
    service_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        api_key: pulumi.Input[str],
        location: str,
        product: str,
        image: str,
        hostname: str,
        ssh_key_name: str,
        ssh_public_key: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        )
        super().__init__(
            HostwindsProvider(),
            name,
            {
                "api_key": pulumi.Output.secret(api_key),
                "location": location,
                "product": product,
                "image": image,
                "hostname": hostname,
                "ssh_key_name": ssh_key_name,
                "ssh_public_key": ssh_public_key,
                "service_id": None,
            },
            opts,
        )


class Ready(pulumi.dynamic.Resource, module="hostwinds", name="Ready"):
    main_ip: pulumi.Output[str]
    ipv6: pulumi.Output[str]
    status: pulumi.Output[str]
    ptr: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        api_key: pulumi.Input[str],
        service_id: pulumi.Input[str],
        hostname: str,
        rdns_action: str = "",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        )
        super().__init__(
            ReadyProvider(),
            name,
            {
                "api_key": pulumi.Output.secret(api_key),
                "service_id": service_id,
                "hostname": hostname,
                "rdns_action": rdns_action,
                "main_ip": None,
                "ipv6": None,
                "status": None,
                "ptr": None,
            },
            opts,
        )
