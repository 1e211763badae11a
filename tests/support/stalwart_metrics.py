"""Stalwart's Prometheus endpoint as the fakes serve it: the text exposition that
crates/common/src/telemetry/metrics/prometheus.rs writes (v0.12.0-v0.16.18): per event type a
`# HELP`, a `# TYPE <name> counter` and a `<name> <value>` line, the name being the event id with
every non-alphanumeric as `_`; counters at zero are left out; gauges follow. A Basic
`authorization` other than the configured one is refused (401), a disabled endpoint is a 404."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

# event id -> its description (crates/trc/src/event/description.rs)
DESCRIPTIONS = {
    "delivery.delivered": "Message delivered",
    "delivery.dsn-perm-fail": "A permanent failure delivery status notification was created",
    "delivery.dsn-temp-fail": "A temporary failure delivery status notification was created",
    "delivery.attempt-start": "Delivery attempt started",
    "smtp.connection-start": "SMTP connection started",
}


def _name(event_id: str) -> str:
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in event_id)


def exposition(counters: dict[str, int], gauges: dict[str, int] | None = None) -> str:
    lines = []
    for event_id, value in counters.items():
        if value <= 0:
            continue
        name = _name(event_id)
        lines += [
            f"# HELP {name} {DESCRIPTIONS.get(event_id, event_id)}",
            f"# TYPE {name} counter",
            f"{name} {value}",
        ]
    for gauge, value in (gauges or {"server.memory": 73400320}).items():
        name = _name(gauge)
        lines += [f"# HELP {name} {gauge}", f"# TYPE {name} gauge", f"{name} {value}"]
    return "\n".join(lines) + "\n"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class PrometheusEndpoint:
    """An enabled endpoint with these counters; `auth` (user, secret) when it requires one."""

    counters: dict[str, int] = field(
        default_factory=lambda: {"smtp.connection-start": 4, "delivery.attempt-start": 2}
    )
    auth: tuple[str, str] | None = None
    enabled: bool = True
    requests: list[str | None] = field(default_factory=list)

    def answer(self, authorization: str | None) -> tuple[int, str]:
        self.requests.append(authorization)
        if not self.enabled:
            return 404, ""
        if self.auth is not None and authorization != basic(*self.auth):
            return 401, '{"type":"about:blank","detail":"Invalid or missing credentials."}'
        return 200, exposition(self.counters)
