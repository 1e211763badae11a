"""Cloudflare's and Hetzner's DNS APIs as small in-memory fakes behind `requests`' transport
(`BaseAdapter`, mounted on the backend's session): no network, no patching. Replies follow the
providers' documented shapes (Cloudflare v4 envelopes `{"success", "errors", "messages",
"result", "result_info"}`; Hetzner Cloud `{"zone"}`, `{"rrset"}`, `{"action"}` and
`{"error": {"code", "message"}}`). Every request is recorded for the shape assertions."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class _Fake(BaseAdapter):
    token: str
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:  # type: ignore[override]
        url = urlsplit(request.url or "")
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = json.loads(request.body) if request.body else None
        seen = Seen(request.method or "", url.path, params, body, dict(request.headers))
        self.requests.append(seen)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            status, payload = self.unauthorized()
        else:
            status, payload = self.handle(seen)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass

    def unauthorized(self) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def handle(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError


@dataclass
class FakeCloudflare(_Fake):
    """`zones`: name -> list of record dicts as the API returns them."""

    zones: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def zone_id(self, name: str) -> str:
        return f"{abs(hash(name)) % 10**32:032x}"

    @staticmethod
    def envelope(result: Any, info: dict[str, int] | None = None) -> dict[str, Any]:
        out = {"success": True, "errors": [], "messages": [], "result": result}
        if info is not None:
            out["result_info"] = info
        return out

    def unauthorized(self) -> tuple[int, dict[str, Any]]:
        return 403, {
            "success": False,
            "errors": [{"code": 10000, "message": "Authentication error"}],
            "messages": [],
            "result": None,
        }

    def handle(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        parts = seen.path.removeprefix("/client/v4").strip("/").split("/")
        if parts == ["zones"] and seen.method == "GET":
            found = [
                {"id": self.zone_id(z), "name": z, "status": "active"}
                for z in self.zones
                if z == seen.params.get("name")
            ]
            info = {
                "page": 1,
                "per_page": 20,
                "count": len(found),
                "total_count": len(found),
                "total_pages": 1,
            }
            return 200, self.envelope(found, info)
        zone = next((z for z in self.zones if self.zone_id(z) == parts[1]), None)
        if zone is None or parts[2:3] != ["dns_records"]:
            return 404, {
                "success": False,
                "errors": [{"code": 7003, "message": "Could not route"}],
                "messages": [],
                "result": None,
            }
        records = self.zones[zone]
        if seen.method == "GET":
            found = [
                r
                for r in records
                if r["type"] == seen.params.get("type", r["type"])
                and r["name"] == seen.params.get("name", r["name"])
            ]
            info = {
                "page": 1,
                "per_page": 100,
                "count": len(found),
                "total_count": len(found),
                "total_pages": 1,
            }
            return 200, self.envelope(found, info)
        if seen.method == "POST":
            record = {
                "id": f"{next(self._ids):032x}",
                "zone_id": parts[1],
                "zone_name": zone,
                **seen.body,
            }
            records.append(record)
            return 200, self.envelope(record)
        if seen.method == "DELETE":
            self.zones[zone] = [r for r in records if r["id"] != parts[3]]
            return 200, self.envelope({"id": parts[3]})
        return 405, {"success": False, "errors": [{"code": 10405, "message": "Method not allowed"}]}

    def values(self, zone: str, name: str, rtype: str) -> list[str]:
        out = []
        for r in self.zones[zone]:
            if r["name"] == name and r["type"] == rtype:
                out.append(f"{r['priority']} {r['content']}" if rtype == "MX" else r["content"])
        return sorted(out)


@dataclass
class FakeHetzner(_Fake):
    """`zones`: name -> {(relative name, type): [record values as the API holds them]}."""

    zones: dict[str, dict[tuple[str, str], list[str]]] = field(default_factory=dict)

    def unauthorized(self) -> tuple[int, dict[str, Any]]:
        return 401, {"error": {"code": "unauthorized", "message": "unable to authenticate"}}

    def action(self, command: str) -> dict[str, Any]:
        return {
            "action": {
                "id": next(self._ids),
                "command": command,
                "status": "success",
                "progress": 100,
                "error": None,
            }
        }

    def handle(self, seen: Seen) -> tuple[int, dict[str, Any]]:
        parts = seen.path.removeprefix("/v1").strip("/").split("/")
        missing = (404, {"error": {"code": "not_found", "message": "zone not found"}})
        if parts[0] != "zones" or len(parts) < 2 or parts[1] not in self.zones:
            return missing
        zone, rrsets = parts[1], self.zones[parts[1]]
        if len(parts) == 2:
            return 200, {
                "zone": {
                    "id": abs(hash(zone)) % 10**6,
                    "name": zone,
                    "mode": "primary",
                    "ttl": 3600,
                    "status": "ok",
                }
            }
        name, rtype = parts[3], parts[4]
        if len(parts) == 5 and seen.method == "GET":
            values = rrsets.get((name, rtype))
            if not values:
                return 404, {"error": {"code": "not_found", "message": "rrset not found"}}
            return 200, {
                "rrset": {
                    "id": f"{name}/{rtype}",
                    "name": name,
                    "type": rtype,
                    "ttl": 3600,
                    "records": [{"value": v, "comment": None} for v in values],
                }
            }
        command = parts[-1]
        given = [r["value"] for r in seen.body["records"]]
        values = rrsets.setdefault((name, rtype), [])
        if command == "add_records":
            values.extend(v for v in given if v not in values)
        elif command == "remove_records":
            rrsets[(name, rtype)] = [v for v in values if v not in given]
        return 201, self.action(command)
