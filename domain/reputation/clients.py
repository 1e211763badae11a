"""Small httpx clients for the optional reputation connectors. The base URL is a setting
(`postmaster_base_url`, `snds_base_url`) so tests point them at loopback fakes. Each returns
`{subject: figures}` where a figure that could not be read is None: unknown, never clean.
Google Postmaster Tools v2 is in domain/reputation/postmaster.py (shapes from its discovery
document); SNDS is here.

Microsoft SNDS automated data access: `/snds/data.aspx?key=<key>` (shared/reference/sending.md
4.2), a CSV row per IP per day in this order: IP, activity start, activity end, RCPT commands,
DATA commands, message recipients, filter result (GREEN/YELLOW/RED), complaint rate (e.g.
"< 0.1%"), trap message start, trap message end, trap hits, sample HELO, sample MAIL FROM,
comments. Microsoft publishes no machine-readable schema; an independent client of the live
feed, undersfx/sndslib `sndslib/sndslib.py` (`search_ip_status`, `resumo`), reads the same
order (filter result at index 6, complaint rate 7, trap hits 10) from CRLF-separated rows, and
this parser agrees with it. Only the first 11 columns are required: the sample and comment
columns may be missing or empty."""

from __future__ import annotations

import csv
import io
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

FILTER_RESULTS = ("GREEN", "YELLOW", "RED")
SNDS_COLUMNS = 11  # IP .. trap hits: the columns read


def _redact(record: logging.LogRecord) -> bool:
    """httpx logs each request's URL at INFO; SNDS carries its key in the query string."""
    if isinstance(record.args, tuple):
        record.args = tuple(
            a.copy_set_param("key", "[redacted]")
            if isinstance(a, httpx.URL) and "key" in a.params
            else a
            for a in record.args
        )
    return True


logging.getLogger("httpx").addFilter(_redact)


class ConnectorError(Exception):
    """The provider refused (auth) or could not be reached; the message holds no secret."""


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    timeout: float


def request(
    client: httpx.Client, url: str, *, missing_ok: bool = False, **kw: Any
) -> httpx.Response | None:
    """One request; a refusal or failure is a ConnectorError naming only the status. With
    `missing_ok`, 403 and 404 (this subject is not readable) are None instead."""
    try:
        response = client.request(kw.pop("method", "GET"), url, **kw)
    except httpx.HTTPError as exc:
        raise ConnectorError(f"request failed: {type(exc).__name__}") from None
    if missing_ok and response.status_code in (403, 404):
        return None
    if response.status_code in (401, 403):
        raise ConnectorError(f"credentials refused (HTTP {response.status_code})")
    if response.status_code >= 400:
        raise ConnectorError(f"HTTP {response.status_code}")
    return response


def to_json(response: httpx.Response | None) -> dict[str, Any]:
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _complaint_rate(text: str) -> float | None:
    """SNDS writes e.g. "< 0.1%" or "0.4%": the rate as a ratio; "< x%" counts as below x."""
    raw = text.strip().removesuffix("%").strip()
    below = raw.startswith("<")
    try:
        value = float(raw.lstrip("<").strip()) / 100
    except ValueError:
        return None
    if not 0.0 <= value <= 1.0:
        return None
    return value / 2 if below else value


def _trap_hits(text: str) -> int | None:
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


def snds(endpoint: Endpoint, key: str, ips: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Figures per IP of `ips` from the day SNDS gives without `date=` (the latest; a later
    row for the same IP wins): filter_result
    (GREEN/YELLOW/RED), complaint_rate (ratio) and trap_hits."""
    wanted = {str(ipaddress.ip_address(ip)) for ip in ips}
    with httpx.Client(base_url=endpoint.base_url, timeout=endpoint.timeout) as c:
        response = request(c, "/snds/data.aspx", params={"key": key})
        text = response.text if response is not None else ""
    out: dict[str, dict[str, Any]] = {}
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        try:
            ip = str(ipaddress.ip_address(row[0].strip()))
        except ValueError:
            continue
        if ip not in wanted:
            continue
        if len(row) < SNDS_COLUMNS:
            out.setdefault(ip, {"filter_result": None, "complaint_rate": None, "trap_hits": None})
            continue
        colour = row[6].strip().upper()
        out[ip] = {
            "filter_result": colour if colour in FILTER_RESULTS else None,
            "complaint_rate": _complaint_rate(row[7]),
            "trap_hits": _trap_hits(row[10]),
            "activity_end": row[2].strip()[:64],
        }
    return out
