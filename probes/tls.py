"""Certificates served on 443/465/993: trusted chain, hostname covered, not near expiry. On
v0.16+ the certificates Stalwart itself manages (`x:Certificate/get`, `notValidAfter`) are judged
beside the handshake by the same thresholds (`managed` in the result's data)."""

from datetime import datetime
from typing import Any

from probes.net import TlsObservation
from probes.types import Check, CheckResult, Status, Thresholds, worst


def _days_left(after: datetime, now: datetime) -> float:
    return (after - now).total_seconds() / 86400


def _expiry_status(left: float, t: Thresholds) -> Status:
    """OK, WARNING or CRITICAL for a certificate with `left` days to run."""
    if left <= t.tls_critical_days:
        return Status.CRITICAL
    if left <= t.tls_warning_days:
        return Status.WARNING
    return Status.OK


def _port_entry(o: TlsObservation, now: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {"port": o.port, "verified": o.verified, "error": o.error}
    if o.certificate is not None:
        # Read even when the chain is not trusted, so an expired or self-signed one still shows.
        left = _days_left(o.certificate.not_after, now)
        entry |= {
            "not_after": o.certificate.not_after.isoformat(),
            "days_left": round(left, 2),
            "subject": o.certificate.subject,
            "names": list(o.certificate.names),
        }
    return entry


def _judge_port(o: TlsObservation, t: Thresholds, now: datetime) -> tuple[Status, str | None]:
    """The port's status and, unless OK, the problem to report."""
    if not o.handshake:
        # Nothing to judge: the mail_server check reports the dead port.
        return Status.UNKNOWN, f"{o.port}: no certificate read ({o.error})"
    if not o.verified:
        return Status.CRITICAL, f"{o.port}: {o.error}"
    assert o.certificate is not None
    left = _days_left(o.certificate.not_after, now)
    status = _expiry_status(left, t)
    return status, None if status is Status.OK else f"{o.port}: expires in {left:.1f} days"


def _managed_expiry(cert: dict[str, Any]) -> datetime | None:
    """The certificate's notValidAfter, or None when missing or unparseable (it is skipped)."""
    try:
        return datetime.fromisoformat(str(cert["notValidAfter"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None


def _judge_managed(
    managed: list[dict[str, Any]],
    t: Thresholds,
    now: datetime,
    statuses: list[Status],
    problems: list[str],
    days_left: list[float],
) -> list[dict[str, Any]]:
    """Judge Stalwart's own certificates, appending to the ports' lists; returns their data."""
    managed_data = []
    for cert in managed:
        after = _managed_expiry(cert)
        if after is None:
            continue
        left = _days_left(after, now)
        days_left.append(left)
        managed_data.append(
            {"id": cert.get("id"), "not_after": after.isoformat(), "days_left": round(left, 2)}
        )
        # A managed certificate that is fine adds no status: only the ports decide OK.
        status = _expiry_status(left, t)
        if status is not Status.OK:
            statuses.append(status)
            problems.append(f"managed certificate {cert.get('id')}: expires in {left:.1f} days")
    return managed_data


def _overall(statuses: list[Status]) -> Status:
    status = worst(statuses)
    if status is Status.UNKNOWN and any(s is Status.OK for s in statuses):
        # Some ports judged fine, the rest unreadable: report what was judged.
        return Status.OK
    return status


def _detail(problems: list[str], observations: list[TlsObservation], soonest: float | None) -> str:
    if problems:
        return "; ".join(problems)
    detail = f"valid on {', '.join(str(o.port) for o in observations)}"
    if soonest is not None:
        detail += f", first expiry in {soonest:.0f} days"
    return detail


def evaluate(
    observations: list[TlsObservation],
    t: Thresholds,
    now: datetime,
    managed: list[dict[str, Any]] | None = None,
) -> CheckResult:
    ports: list[dict[str, Any]] = []
    statuses: list[Status] = []
    problems: list[str] = []
    days_left: list[float] = []
    for o in observations:
        ports.append(_port_entry(o, now))
        if o.certificate is not None:
            days_left.append(_days_left(o.certificate.not_after, now))
        status, problem = _judge_port(o, t, now)
        statuses.append(status)
        if problem is not None:
            problems.append(problem)
    managed_data = _judge_managed(managed or [], t, now, statuses, problems, days_left)
    soonest = min(days_left) if days_left else None
    return CheckResult(
        Check.TLS,
        _overall(statuses),
        _detail(problems, observations, soonest),
        value=round(soonest, 2) if soonest is not None else None,
        data={"ports": ports, **({"managed": managed_data} if managed is not None else {})},
    )


def earliest_expiry(result: CheckResult) -> datetime | None:
    dates = [
        datetime.fromisoformat(p["not_after"])
        for p in result.data.get("ports", [])
        if p.get("not_after")
    ]
    return min(dates) if dates else None
