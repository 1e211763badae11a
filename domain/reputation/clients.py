"""Small httpx clients for the optional reputation connectors. The base URL is a setting
(`postmaster_base_url`, `snds_base_url`) so tests point them at loopback fakes. Each returns
`{subject: figures}` where a figure that could not be read is None: unknown, never clean.

Sources (the project's reference, shared/reference/sending.md):
- 4.1 Google Postmaster Tools **v2**: `domains.list` (a Domain has `verificationState` and
  `permission`), `domains.getComplianceStatus` (requirements SPF, DKIM, SPF_AND_DKIM,
  DMARC_POLICY, DMARC_ALIGNMENT, MESSAGE_FORMATTING, DNS_RECORDS, ENCRYPTION,
  USER_REPORTED_SPAM_RATE, ONE_CLICK_UNSUBSCRIBE, HONOR_UNSUBSCRIBE, each COMPLIANT or
  NEEDS_WORK) and `domains.domainStats.query` with the metrics `SPAM_RATE` and
  `AUTH_SUCCESS_RATE`, granularity DAILY. v1's reputation fields (`domainReputation`,
  `ipReputations`, `userReportedSpamRatio`...) are gone with v2 and are never read. The
  reference names the methods, metrics and enums; the JSON nesting used here (`domains[]`,
  `complianceData.rowData[].requirement/status.status`, `domainStats[].metric/date/value.
  doubleValue`) follows the v2 REST resources and should be checked against the discovery doc
  before the connector is turned on against Google.
- 4.2 Microsoft SNDS automated data access: `/snds/data.aspx?key=<key>`, a CSV row per IP per
  day in the documented order: IP, activity start, activity end, RCPT commands, DATA
  commands, message recipients, filter result (GREEN/YELLOW/RED), complaint rate (e.g.
  "< 0.1%"), trap message start, trap message end, trap hits, sample HELO, sample MAIL FROM,
  comments."""

from __future__ import annotations

import csv
import io
import ipaddress
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx

POSTMASTER_REQUIREMENTS = (
    "SPF",
    "DKIM",
    "SPF_AND_DKIM",
    "DMARC_POLICY",
    "DMARC_ALIGNMENT",
    "MESSAGE_FORMATTING",
    "DNS_RECORDS",
    "ENCRYPTION",
    "USER_REPORTED_SPAM_RATE",
    "ONE_CLICK_UNSUBSCRIBE",
    "HONOR_UNSUBSCRIBE",
)
COMPLIANCE = ("COMPLIANT", "NEEDS_WORK")
METRICS = {"spam_rate": "SPAM_RATE", "auth_success_rate": "AUTH_SUCCESS_RATE"}
FILTER_RESULTS = ("GREEN", "YELLOW", "RED")
SNDS_COLUMNS = 14


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


def _get(client: httpx.Client, url: str, **kw: Any) -> httpx.Response:
    try:
        response = client.request(kw.pop("method", "GET"), url, **kw)
    except httpx.HTTPError as exc:
        raise ConnectorError(f"request failed: {type(exc).__name__}") from None
    if response.status_code in (401, 403):
        raise ConnectorError(f"credentials refused (HTTP {response.status_code})")
    if response.status_code >= 400:
        raise ConnectorError(f"HTTP {response.status_code}")
    return response


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _ratio(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0.0 <= value <= 1.0 else None


def _stats(body: dict[str, Any]) -> dict[str, float | None]:
    """The newest DAILY value of each metric; anything malformed is None."""
    newest: dict[str, tuple[tuple[int, int, int], float | None]] = {}
    rows = body.get("domainStats")
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict) or row.get("metric") not in METRICS:
            continue
        d = row.get("date")
        key = (
            (d.get("year", 0), d.get("month", 0), d.get("day", 0))
            if isinstance(d, dict)
            else (0, 0, 0)
        )
        value = row.get("value")
        number = _ratio(value.get("doubleValue")) if isinstance(value, dict) else None
        if row["metric"] not in newest or key >= newest[row["metric"]][0]:
            newest[row["metric"]] = (key, number)
    return {m: newest[m][1] if m in newest else None for m in METRICS}


def _compliance(body: dict[str, Any]) -> dict[str, str] | None:
    data = body.get("complianceData")
    rows = data.get("rowData") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return None
    out: dict[str, str] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        status = row.get("status")
        verdict = status.get("status") if isinstance(status, dict) else None
        if row.get("requirement") in POSTMASTER_REQUIREMENTS and verdict in COMPLIANCE:
            out[row["requirement"]] = verdict
    return out or None


def postmaster(
    endpoint: Endpoint, access_token: str, domains: Iterable[str], today: date
) -> dict[str, dict[str, Any]]:
    """Figures per verified domain of `domains`: spam_rate, auth_success_rate (ratios 0..1)
    and compliance ({requirement: COMPLIANT|NEEDS_WORK})."""
    wanted = {d.lower() for d in domains}
    out: dict[str, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer {access_token}"}
    with httpx.Client(base_url=endpoint.base_url, timeout=endpoint.timeout, headers=headers) as c:
        listed: list[str] = []
        token: str | None = None
        for _ in range(100):  # domains.list pages
            page = _json(_get(c, "/v2/domains", params={"pageToken": token} if token else None))
            for d in page.get("domains") or []:
                name = d.get("name") if isinstance(d, dict) else None
                if isinstance(name, str) and d.get("verificationState") == "VERIFIED":
                    listed.append(name.removeprefix("domains/").lower())
            token = page.get("nextPageToken") or None
            if not isinstance(token, str):
                break
        start = today - timedelta(days=7)
        for domain in sorted(wanted & set(listed)):
            query = {
                "metricDefinitions": [
                    {"name": name, "baseMetric": {"standardMetric": metric}}
                    for name, metric in METRICS.items()
                ],
                "timeQuery": {
                    "dateRanges": [
                        {
                            "start": {"year": start.year, "month": start.month, "day": start.day},
                            "end": {"year": today.year, "month": today.month, "day": today.day},
                        }
                    ]
                },
                "aggregationGranularity": "DAILY",
            }
            stats = _json(
                _get(c, f"/v2/domains/{domain}/domainStats:query", method="POST", json=query)
            )
            compliance = _json(_get(c, f"/v2/domains/{domain}/complianceStatus"))
            out[domain] = {**_stats(stats), "compliance": _compliance(compliance)}
    return out


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
        text = _get(c, "/snds/data.aspx", params={"key": key}).text
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
