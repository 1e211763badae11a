"""`Instance`: a Hostwinds cloud server as a Pulumi dynamic resource.

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

# Changing any of these means another machine.
REPLACE_ON = ("location", "product", "image", "hostname", "ssh_key")
REQUIRED = ("api_key", *REPLACE_ON)
SECRET_OUTPUTS = ["api_key"]


def _outputs(props: dict[str, Any], service_id: str, instance: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: props[k] for k in REQUIRED},
        "service_id": service_id,
        "main_ip": str(instance.get("main_ip") or ""),
        "ipv6": str(instance.get("ipv6") or instance.get("main_ipv6") or ""),
        "status": "running" if str(instance.get("status", "")).upper() == "ACTIVE" else "pending",
    }


class HostwindsProvider(ResourceProvider):
    """Stateless: every call builds its client from the resource's own (secret) inputs."""

    client_url: str | None = None  # tests point it at a local server
    poll_delay: float = 10.0  # seconds between status polls while a new instance boots

    def _client(self, props: dict[str, Any]) -> HostwindsClient:
        if self.client_url:
            return HostwindsClient(str(props["api_key"]), url=self.client_url)
        return HostwindsClient(str(props["api_key"]))

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
        try:
            service_id = client.create_instance(
                location_id=client.resolve("get_locations", str(props["location"])),
                product_id=client.resolve("get_price_list", str(props["product"])),
                image=str(props["image"]),
                hostname=str(props["hostname"]),
                ssh_key=str(props["ssh_key"]),
            )
            instance = client.wait_active(service_id, delay=self.poll_delay)
        except HostwindsError as exc:
            raise Exception(str(exc)) from None  # the API's own message, no traceback noise
        return CreateResult(service_id, _outputs(props, service_id, instance))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        try:
            instance = self._client(props).get_instance(id_)
        except HostwindsError as exc:
            if "not found" in exc.api_message.lower():
                return ReadResult(None, {})  # gone: Pulumi drops it from state on refresh
            raise Exception(str(exc)) from None
        return ReadResult(id_, _outputs(props, id_, instance))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only the API key can change in place; nothing to tell Hostwinds.
        return UpdateResult({**olds, "api_key": news["api_key"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        try:
            self._client(props).terminate(id_)
        except HostwindsError as exc:
            raise Exception(str(exc)) from None


class Instance(pulumi.dynamic.Resource, module="hostwinds", name="Instance"):
    service_id: pulumi.Output[str]
    main_ip: pulumi.Output[str]
    ipv6: pulumi.Output[str]
    status: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        api_key: pulumi.Input[str],
        location: str,
        product: str,
        image: str,
        hostname: str,
        ssh_key: str,
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
                "ssh_key": ssh_key,
                "service_id": None,
                "main_ip": None,
                "ipv6": None,
                "status": None,
            },
            opts,
        )
