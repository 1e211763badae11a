"""Cloudflare's DNS API (v4), record by record: `GET /zones?name=`, `GET/POST
/zones/{id}/dns_records`, `DELETE /zones/{id}/dns_records/{record}` with an API token (Bearer).
Our own small client rather than lexicon's cloudflare provider, which puts an MX's priority into
`content` where the API wants a `priority` field; MX and SRV are sent the way the API documents
them. No prerequisites over HTTP: a conditional change re-reads first (`Changed` if it moved)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests

from dnspublish.backends import Changed, PublishError, txt_join
from dnspublish.http import JsonApi

API = "https://api.cloudflare.com/client/v4"


class CloudflareBackend:
    def __init__(
        self,
        token: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        base: str = API,
    ) -> None:
        self.api = JsonApi(base, token, name="Cloudflare", timeout=timeout, session=session)
        self.description = "Cloudflare"
        self._zones: dict[str, str] = {}

    def _zone_id(self, zone: str) -> str:
        if zone not in self._zones:
            payload = self.api.call("GET", "/zones", params={"name": zone}, what=f"finding {zone}")
            found = [z for z in (payload or {}).get("result", []) if z.get("name") == zone]
            if not found:
                raise PublishError(f"Cloudflare has no zone {zone} for this token")
            self._zones[zone] = str(found[0]["id"])
        return self._zones[zone]

    def find_zone(self, fqdn: str) -> str:
        labels = fqdn.rstrip(".").lower().split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            try:
                self._zone_id(candidate)
                return candidate
            except PublishError as exc:
                if "has no zone" not in str(exc):
                    raise
        raise PublishError(f"Cloudflare has no zone holding {fqdn} for this token")

    def _records(self, zone: str, fqdn: str, rtype: str) -> list[dict[str, Any]]:
        payload = self.api.call(
            "GET",
            f"/zones/{self._zone_id(zone)}/dns_records",
            params={"type": rtype, "name": fqdn, "per_page": 100},
            what=f"reading {rtype} {fqdn}",
        )
        return list((payload or {}).get("result", []))

    @staticmethod
    def _value(record: dict[str, Any]) -> str:
        rtype, content = record.get("type"), str(record.get("content", ""))
        if rtype == "TXT":
            return txt_join(content)
        if rtype == "MX":
            return f"{record.get('priority', 0)} {content.rstrip('.')}."
        if rtype == "SRV":
            data = record.get("data") or {}
            if data:
                return (
                    f"{data.get('priority', 0)} {data.get('weight', 0)} {data.get('port', 0)} "
                    f"{str(data.get('target', '')).rstrip('.')}."
                )
            return f"{record.get('priority', 0)} {content.rstrip('.')}."
        return content

    def read(self, zone: str, fqdn: str, rtype: str) -> list[str]:
        return [self._value(r) for r in self._records(zone, fqdn, rtype)]

    @staticmethod
    def _body(fqdn: str, rtype: str, ttl: int, value: str) -> dict[str, Any]:
        body: dict[str, Any] = {"type": rtype, "name": fqdn, "ttl": ttl, "proxied": False}
        if rtype == "MX":
            priority, host = value.split(None, 1)
            body.update(content=host.rstrip("."), priority=int(priority))
        elif rtype == "SRV":
            priority, weight, port, target = value.split()
            body.pop("proxied")
            body["data"] = {
                "priority": int(priority),
                "weight": int(weight),
                "port": int(port),
                "target": target.rstrip("."),
            }
        elif rtype == "TXT":
            body.update(content=value)
            body.pop("proxied")
        else:
            body.update(content=value.rstrip(".") if rtype in ("PTR", "CNAME") else value)
        if rtype not in ("A", "AAAA", "CNAME"):
            body.pop("proxied", None)
        return body

    def change(
        self,
        zone: str,
        fqdn: str,
        rtype: str,
        ttl: int,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        expect: Sequence[str] | None = None,
    ) -> None:
        records = self._records(zone, fqdn, rtype)
        if expect is not None and sorted(self._value(r) for r in records) != sorted(expect):
            raise Changed(f"{rtype} {fqdn} changed while we wrote it")
        zone_id = self._zone_id(zone)
        for value in remove:
            for record in records:
                if self._value(record) == value:
                    self.api.call(
                        "DELETE",
                        f"/zones/{zone_id}/dns_records/{record['id']}",
                        what=f"deleting {rtype} {fqdn}",
                        ok_missing=True,
                    )
        for value in add:
            self.api.call(
                "POST",
                f"/zones/{zone_id}/dns_records",
                body=self._body(fqdn, rtype, ttl, value),
                what=f"creating {rtype} {fqdn}",
            )
