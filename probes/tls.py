"""Certificates served on 443/465/993: trusted chain, hostname covered, not near expiry. On
v0.16+ the certificates Stalwart itself manages (`x:Certificate/get`, `notValidAfter`) are judged
beside the handshake by the same thresholds (`managed` in the result's data)."""

from datetime import datetime
from typing import Any

from probes.net import TlsObservation
from probes.types import Check, CheckResult, Status, Thresholds, worst


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
        entry: dict[str, Any] = {"port": o.port, "verified": o.verified, "error": o.error}
        if o.certificate is not None:
            left = (o.certificate.not_after - now).total_seconds() / 86400
            days_left.append(left)
            entry |= {
                "not_after": o.certificate.not_after.isoformat(),
                "days_left": round(left, 2),
                "subject": o.certificate.subject,
                "names": list(o.certificate.names),
            }
        ports.append(entry)
        if not o.handshake:
            # Nothing to judge: the mail_server check reports the dead port.
            statuses.append(Status.UNKNOWN)
            problems.append(f"{o.port}: no certificate read ({o.error})")
        elif not o.verified:
            statuses.append(Status.CRITICAL)
            problems.append(f"{o.port}: {o.error}")
        else:
            assert o.certificate is not None
            left = (o.certificate.not_after - now).total_seconds() / 86400
            if left <= t.tls_critical_days:
                statuses.append(Status.CRITICAL)
                problems.append(f"{o.port}: expires in {left:.1f} days")
            elif left <= t.tls_warning_days:
                statuses.append(Status.WARNING)
                problems.append(f"{o.port}: expires in {left:.1f} days")
            else:
                statuses.append(Status.OK)
    managed_data = []
    for cert in managed or []:
        try:
            after = datetime.fromisoformat(str(cert["notValidAfter"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            continue
        left = (after - now).total_seconds() / 86400
        days_left.append(left)
        managed_data.append(
            {"id": cert.get("id"), "not_after": after.isoformat(), "days_left": round(left, 2)}
        )
        if left <= t.tls_critical_days:
            statuses.append(Status.CRITICAL)
            problems.append(f"managed certificate {cert.get('id')}: expires in {left:.1f} days")
        elif left <= t.tls_warning_days:
            statuses.append(Status.WARNING)
            problems.append(f"managed certificate {cert.get('id')}: expires in {left:.1f} days")
    status = worst(statuses)
    if status is Status.UNKNOWN and any(s is Status.OK for s in statuses):
        # Some ports judged fine, the rest unreadable: report what was judged.
        status = Status.OK
    soonest = min(days_left) if days_left else None
    if problems:
        detail = "; ".join(problems)
    else:
        detail = f"valid on {', '.join(str(o.port) for o in observations)}"
        if soonest is not None:
            detail += f", first expiry in {soonest:.0f} days"
    return CheckResult(
        Check.TLS,
        status,
        detail,
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
