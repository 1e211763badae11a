"""Hetzner's Cloud DNS API (`https://api.hetzner.cloud/v1/zones`, the one that replaced
dns.hetzner.com): zones by name, RRsets by relative name and type, records added and removed with
the RRset actions (`add_records`, `remove_records`), each an action we wait for. Our own small
client (lexicon's hetzner provider speaks the same API but through module-level `requests`
calls whose transport cannot be given a fake)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import requests

from dnspublish.backends import Changed, PublishError, txt_join, txt_rdata
from dnspublish.http import JsonApi

API = "https://api.hetzner.cloud/v1"


class HetznerBackend:
    def __init__(
        self,
        token: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        base: str = API,
        action_poll: float = 0.5,
    ) -> None:
        self.api = JsonApi(base, token, name="Hetzner Cloud DNS", timeout=timeout, session=session)
        self.description = "Hetzner Cloud DNS"
        self.action_poll = action_poll

    def find_zone(self, fqdn: str) -> str:
        labels = fqdn.rstrip(".").lower().split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            found = self.api.call(
                "GET", f"/zones/{candidate}", what=f"finding {candidate}", ok_missing=True
            )
            if found is not None:
                return candidate
        raise PublishError(f"Hetzner Cloud DNS has no zone holding {fqdn} for this token")

    @staticmethod
    def _relative(zone: str, fqdn: str) -> str:
        fqdn = fqdn.rstrip(".").lower()
        return "@" if fqdn == zone else fqdn[: -len(zone) - 1]

    def read(self, zone: str, fqdn: str, rtype: str) -> list[str]:
        name = self._relative(zone, fqdn)
        found = self.api.call(
            "GET",
            f"/zones/{zone}/rrsets/{name}/{rtype}",
            what=f"reading {rtype} {fqdn}",
            ok_missing=True,
        )
        if found is None:
            return []
        rrset = found.get("rrset") or {}
        values = [str(r.get("value", "")) for r in rrset.get("records", [])]
        return [txt_join(v) if rtype == "TXT" else v for v in values]

    def _wait(self, payload: dict[str, Any] | None, what: str) -> None:
        action = (payload or {}).get("action") or {}
        deadline = time.monotonic() + 60
        while action.get("status") == "running" and time.monotonic() < deadline:
            time.sleep(self.action_poll)
            got = self.api.call("GET", f"/zones/actions/{action['id']}", what=what)
            action = (got or {}).get("action") or {}
        if action.get("status") not in ("success", None):
            error = action.get("error") or {}
            raise PublishError(
                f"{what}: Hetzner Cloud DNS action {action.get('status')}: "
                f"{error.get('message', '')}"
            )

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
        if expect is not None and sorted(self.read(zone, fqdn, rtype)) != sorted(expect):
            raise Changed(f"{rtype} {fqdn} changed while we wrote it")
        url = f"/zones/{zone}/rrsets/{self._relative(zone, fqdn)}/{rtype}/actions"

        def records(values: Sequence[str]) -> list[dict[str, str]]:
            return [{"value": txt_rdata(v) if rtype == "TXT" else v} for v in values]

        if remove:
            what = f"removing {rtype} {fqdn}"
            self._wait(
                self.api.call(
                    "POST", f"{url}/remove_records", body={"records": records(remove)}, what=what
                ),
                what,
            )
        if add:
            what = f"adding {rtype} {fqdn}"
            self._wait(
                self.api.call(
                    "POST",
                    f"{url}/add_records",
                    body={"ttl": ttl, "records": records(add)},
                    what=what,
                ),
                what,
            )
