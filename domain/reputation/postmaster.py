"""Google Postmaster Tools **v2** client (the optional `google_postmaster` connector).

Every path, field and enum here is from the v2 discovery document, read in
googleapis/google-api-python-client `googleapiclient/discovery_cache/documents/
gmailpostmastertools.v2.json` (revision 20260512):

- `POST v2/domainStats:batchQuery` (`domainStats.batchQuery`): `{"requests": [<QueryDomainStats
  Request>, ... at most 100]}` -> `{"results": [{"response": <QueryDomainStatsResponse>} |
  {"error": <Status {code, message}>}, ...]}`, in request order. A domain the caller may not read
  answers PERMISSION_DENIED in its own result, so one unregistered domain does not fail the rest.
- `POST v2/{parent=domains/*}/domainStats:query` (`domains.domainStats.query`): the same request
  for one domain, used for the pages after the first (`nextPageToken` -> `pageToken`).
- QueryDomainStatsRequest: `parent` ("domains/{domain}"), `metricDefinitions[]` (`name` ours,
  `baseMetric.standardMetric`, `filter`), `timeQuery.dateRanges.dateRanges[]` (`start`/`end`
  Dates {year, month, day}), `aggregationGranularity` DAILY|OVERALL, `pageSize` (max 200,
  default 10). DomainStat: `metric` (our `name`), `date`, `value` (StatisticValue: `doubleValue`,
  `floatValue`, `intValue` as a string, ...).
- `SPAM_RATE` takes no filter; `AUTH_SUCCESS_RATE` must be filtered `auth_type = "spf"|"dkim"|
  "dmarc"` (the enum's description), so it is asked three times.
- `GET v2/{name=domains/*/complianceStatus}` (`domains.getComplianceStatus`) ->
  DomainComplianceStatus `{name, complianceData, subdomainComplianceData}`, each
  DomainComplianceData `{domainId, rowData[{requirement, status: {status:
  COMPLIANT|NEEDS_WORK|STATE_UNSPECIFIED}}], ...}`; the subdomain's own data is used when
  Google has it.
- Both methods need only `https://www.googleapis.com/auth/postmaster.traffic.readonly`
  (`domains.list` would need `postmaster.domain`, so it is not called).

v1's reputation fields (`domainReputation`, `ipReputations`, `userReportedSpamRatio`) do not exist
in v2 and are never read."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import httpx

from domain.reputation.clients import ConnectorError, Endpoint, request, to_json

SCOPE = "https://www.googleapis.com/auth/postmaster.traffic.readonly"
REQUIREMENTS = (
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
# Our metric name -> (standardMetric, filter).
METRICS = {
    "spam_rate": ("SPAM_RATE", ""),
    "auth_spf": ("AUTH_SUCCESS_RATE", 'auth_type = "spf"'),
    "auth_dkim": ("AUTH_SUCCESS_RATE", 'auth_type = "dkim"'),
    "auth_dmarc": ("AUTH_SUCCESS_RATE", 'auth_type = "dmarc"'),
}
BATCH = 100  # "A maximum of 100 requests can be included in a single batch."
PAGE_SIZE = 200  # the documented maximum: 4 metrics x 8 days fit one page
MAX_PAGES = 20


def _date(d: date) -> dict[str, int]:
    return {"year": d.year, "month": d.month, "day": d.day}


def query(domain: str, today: date) -> dict[str, Any]:
    """The QueryDomainStatsRequest for one domain: the last 7 days, DAILY."""
    definitions = []
    for name, (metric, flt) in METRICS.items():
        definition: dict[str, Any] = {"name": name, "baseMetric": {"standardMetric": metric}}
        if flt:
            definition["filter"] = flt
        definitions.append(definition)
    return {
        "parent": f"domains/{domain}",
        "metricDefinitions": definitions,
        "timeQuery": {
            "dateRanges": {
                "dateRanges": [{"start": _date(today - timedelta(days=7)), "end": _date(today)}]
            }
        },
        "aggregationGranularity": "DAILY",
        "pageSize": PAGE_SIZE,
    }


def _ratio(value: Any) -> float | None:
    if not isinstance(value, dict):
        return None
    number = value.get("doubleValue", value.get("floatValue"))
    if isinstance(number, bool) or not isinstance(number, int | float):
        return None
    return float(number) if 0.0 <= number <= 1.0 else None


def _day(d: Any) -> tuple[int, int, int]:
    if not isinstance(d, dict):
        return (0, 0, 0)
    parts = (d.get("year", 0), d.get("month", 0), d.get("day", 0))
    return parts if all(isinstance(p, int) for p in parts) else (0, 0, 0)


def stats(rows: Iterable[Any]) -> dict[str, float | None]:
    """The newest day's value of each metric (None: absent or malformed), and
    `auth_success_rate`: the weakest of SPF, DKIM and DMARC that came back."""
    newest: dict[str, tuple[tuple[int, int, int], float | None]] = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("metric") not in METRICS:
            continue
        key = _day(row.get("date"))
        if row["metric"] not in newest or key >= newest[row["metric"]][0]:
            newest[row["metric"]] = (key, _ratio(row.get("value")))
    out = {m: newest[m][1] if m in newest else None for m in METRICS}
    auth = [v for m, v in out.items() if m.startswith("auth_") and v is not None]
    out["auth_success_rate"] = min(auth) if auth else None
    return out


def compliance(body: dict[str, Any]) -> dict[str, str] | None:
    data = body.get("subdomainComplianceData") or body.get("complianceData")
    rows = data.get("rowData") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        return None
    out: dict[str, str] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        status = row.get("status")
        verdict = status.get("status") if isinstance(status, dict) else None
        if row.get("requirement") in REQUIREMENTS and verdict in COMPLIANCE:
            out[row["requirement"]] = verdict
    return out or None


def _rows(client: httpx.Client, domain: str, first: dict[str, Any], today: date) -> list[Any]:
    rows = list(first.get("domainStats") or [])
    token = first.get("nextPageToken")
    for _ in range(MAX_PAGES):
        if not isinstance(token, str) or not token:
            break
        body = {**query(domain, today), "pageToken": token}
        page = to_json(
            request(client, f"/v2/domains/{domain}/domainStats:query", method="POST", json=body)
        )
        rows += page.get("domainStats") or []
        token = page.get("nextPageToken")
    return rows


def fetch(
    endpoint: Endpoint, access_token: str, domains: Iterable[str], today: date
) -> dict[str, dict[str, Any]]:
    """Figures per domain of `domains` that Postmaster reports for this token: spam_rate,
    auth_spf/auth_dkim/auth_dmarc and auth_success_rate (ratios 0..1) and compliance
    ({requirement: COMPLIANT|NEEDS_WORK}). A domain the token may not read is left out."""
    wanted = sorted({d.lower() for d in domains})
    out: dict[str, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer {access_token}"}
    with httpx.Client(base_url=endpoint.base_url, timeout=endpoint.timeout, headers=headers) as c:
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            body = {"requests": [query(d, today) for d in chunk]}
            reply = to_json(request(c, "/v2/domainStats:batchQuery", method="POST", json=body))
            results = reply.get("results")
            if not isinstance(results, list) or len(results) != len(chunk):
                raise ConnectorError("batchQuery answered a different number of results")
            for domain, result in zip(chunk, results, strict=True):
                response = result.get("response") if isinstance(result, dict) else None
                if not isinstance(response, dict):
                    continue  # PERMISSION_DENIED and the like: no data for this domain
                figures: dict[str, Any] = stats(_rows(c, domain, response, today))
                status = request(c, f"/v2/domains/{domain}/complianceStatus", missing_ok=True)
                figures["compliance"] = compliance(to_json(status)) if status else None
                out[domain] = figures
    return out
