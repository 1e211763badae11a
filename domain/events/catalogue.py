"""Every event type, declared once: its name (`family.action`, lowercase, dotted), what it means,
what its subject is, and an example of its message and data. Emitters pass these constants to
`domain.events.service.record` (which takes an `EventType`, never a string), so a type that is
not here cannot be emitted; `GET /api/v1/event-types` and docs/events.md list them; webhook
subscriptions and event filters are checked against them (`pattern_problem`).

A subscription pattern is an exact type (`health.alert`), a family (`dns.*`, only for a family
that exists) or `*` (every type)."""

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

ALL_PATTERN = "*"
NAME_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"


@dataclass(frozen=True, eq=False)  # one object per type: compared and hashed by identity
class EventType:
    name: str
    description: str
    subject: str | None  # subject_type of the event: inbox, vps, operation, webhook
    message: str  # an example message
    data: dict[str, Any] = field(default_factory=dict)  # an example of `data`
    workspace: bool = True  # the event belongs to a workspace (workspace_id set)
    # False: never fanned out to subscribers; sent only to the endpoint it was made for.
    fan_out: bool = True

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    def __str__(self) -> str:
        return self.name


INBOX_READY = EventType(
    "inbox.ready",
    "An inbox can send: every required DNS record of it verifies (it went from dns_pending to "
    "ready). Comes with `dns.verified`.",
    "inbox",
    "inbox sales@acme.example is ready",
    {"email_address": "sales@acme.example"},
)
INBOX_DELETED = EventType(
    "inbox.deleted",
    "An inbox marked for deletion left the mail server; it is gone from the API.",
    "inbox",
    "inbox sales@acme.example deleted",
    {"email_address": "sales@acme.example"},
)
DNS_VERIFIED = EventType(
    "dns.verified",
    "Every required DNS record of an inbox verifies against live DNS; the inbox became ready.",
    "inbox",
    "all DNS records of sales@acme.example are verified; the inbox is ready",
    {"email_address": "sales@acme.example"},
)
DNS_REGRESSED = EventType(
    "dns.regressed",
    "A ready inbox's DNS no longer verifies (`data.records`: the failing ones), or its records "
    "changed and must be published again (`data.reason`: `records_changed`); the inbox is "
    "back to dns_pending.",
    "inbox",
    "DNS of sales@acme.example no longer verifies: dkim missing",
    {
        "email_address": "sales@acme.example",
        "records": [{"purpose": "dkim", "status": "missing", "detail": "NXDOMAIN"}],
    },
)
DNS_PUBLISH_FAILED = EventType(
    "dns.publish_failed",
    "A run could not publish some records of a mail domain through its DNS connection: the DNS "
    "service refused or could not be reached (`error`), or the zone holds something we must not "
    "replace (`conflict`, e.g. a foreign MX). `data.records` lists which and what the service "
    "said; the next run tries them again. One event per domain per run that newly failed.",
    "operation",
    "could not publish 1 DNS record of acme.example: mx conflict",
    {
        "domain": "acme.example",
        "records": [
            {
                "purpose": "mx",
                "status": "conflict",
                "detail": "acme.example already has MX 10 aspmx.l.google.com.: mail to the "
                "domain, replies to this inbox included, goes there and never reaches "
                "10 mail.acme.example.; remove it, or set the domain's mx_policy to replace",
            }
        ],
    },
)
SERVER_READY = EventType(
    "server.ready",
    "A server the fleet was building (or had failed to build) is up and has its address.",
    "vps",
    "server mail-1.acme.example is ready at 203.0.113.10",
    {"operation_id": "5b0c3f9e-3a4f-4a38-9f43-0d1f6f0a8c11"},
)
SERVER_DELETED = EventType(
    "server.deleted",
    "A server marked for deletion left the stack; it is gone from the API.",
    "vps",
    "server mail-1.acme.example deleted",
)
OPERATION_FAILED = EventType(
    "operation.failed",
    "An operation (a run of the workspace's stack) failed for good: not transient, or out of "
    "attempts. The servers it was building are failed (`data.servers_failed`) and so are the "
    "inboxes waiting on them.",
    "operation",
    "up of the fleet failed: hcloud: server limit reached",
    {"servers_failed": ["mail-1.acme.example"]},
)
HEALTH_ALERT = EventType(
    "health.alert",
    "A health check of a server went to warning or critical (one event per server per sweep, "
    "listing every check that changed).",
    "vps",
    "mail-1 (mail-1.acme.example) needs attention: disk critical: 9.5% free",
    {
        "vps_id": "0d5e2c1a-77b2-4c8e-9a5e-6c1b9f3e2d10",
        "hostname": "mail-1.acme.example",
        "checks": [
            {
                "check": "disk",
                "status": "critical",
                "previous": "ok",
                "detail": "9.5% free",
                "value": 9.5,
            }
        ],
    },
)
HEALTH_RECOVERED = EventType(
    "health.recovered",
    "Checks that had alerted are ok again.",
    "vps",
    "mail-1 (mail-1.acme.example) recovered: disk ok: 41.0% free",
    {
        "vps_id": "0d5e2c1a-77b2-4c8e-9a5e-6c1b9f3e2d10",
        "hostname": "mail-1.acme.example",
        "checks": [
            {
                "check": "disk",
                "status": "ok",
                "previous": "critical",
                "detail": "41.0% free",
                "value": 41.0,
            }
        ],
    },
)
MAIL_SERVER_RESTARTED = EventType(
    "mail_server.restarted",
    "POST /vps/{id}/mail-server/restart restarted the mail server.",
    "vps",
    "mail-1: systemctl restart stalwart: done",
    {"vps_id": "0d5e2c1a-77b2-4c8e-9a5e-6c1b9f3e2d10", "simulated": False, "outcome": "restarted"},
)
MAIL_SERVER_RESTART_FAILED = EventType(
    "mail_server.restart_failed",
    "POST /vps/{id}/mail-server/restart could not restart the mail server (the message says why).",
    "vps",
    "mail-1: systemctl restart stalwart exited 1: Unit stalwart.service not found.",
    {"vps_id": "0d5e2c1a-77b2-4c8e-9a5e-6c1b9f3e2d10", "simulated": False, "outcome": "failed"},
)
WEBHOOK_DISABLED = EventType(
    "webhook.disabled",
    "A webhook endpoint was disabled after too many consecutive failed deliveries; "
    "`PATCH /webhooks/{id}` with `active: true` turns it back on.",
    "webhook",
    "Webhook 9a1f... disabled after 50 consecutive failed delivery attempts; last error: HTTP 500",
    {"consecutive_failures": 50, "last_error": "HTTP 500"},
    workspace=False,
)
WEBHOOK_PING = EventType(
    "webhook.ping",
    "A test delivery made by POST /webhooks/{id}/test. Sent only to that endpoint, whatever "
    "it subscribes to; never to the tenant's other endpoints.",
    "webhook",
    "test delivery to webhook 9a1f...",
    {"webhook_id": "9a1f0e4c-2b6d-4a7e-8c3f-5d2e1b0a9c87"},
    workspace=False,
    fan_out=False,
)

INBOX_WARMUP_STARTED = EventType(
    "inbox.warmup_started",
    "Warmup was enabled for an inbox: its ramp starts at day 1 (`data.daily_limit`: the first "
    "step). See docs/warmup.md.",
    "inbox",
    "warmup of sales@acme.example started at 5 a day",
    {"day": 1, "daily_limit": 5, "target": 50},
)
INBOX_WARMUP_ADVANCED = EventType(
    "inbox.warmup_advanced",
    "A clean ramp day passed: the inbox's ramp moved to the next day and step.",
    "inbox",
    "warmup of sales@acme.example is at day 4: 11 a day",
    {"from_day": 3, "day": 4, "daily_limit": 11, "target": 50},
)
INBOX_WARMUP_PAUSED = EventType(
    "inbox.warmup_paused",
    "The day was not clean (`data.reason`: `blocklist`, `server_critical` or `dns`): the ramp "
    "is frozen on its day and the cap drops to the policy's floor.",
    "inbox",
    "warmup of sales@acme.example paused on day 6: blocklist",
    {"day": 6, "reason": "blocklist"},
)
INBOX_WARMUP_RESUMED = EventType(
    "inbox.warmup_resumed",
    "The cause of a pause stayed clear for the policy's `clear_seconds`: the ramp resumes on the "
    "day it paused, from that day's beginning.",
    "inbox",
    "warmup of sales@acme.example resumed on day 6",
    {"day": 6, "daily_limit": 15, "cleared": "blocklist"},
)
INBOX_WARMUP_COMPLETED = EventType(
    "inbox.warmup_completed",
    "The ramp reached the inbox's daily_send_limit.",
    "inbox",
    "warmup of sales@acme.example completed at 50 a day",
    {"day": 24, "daily_limit": 50},
)
INBOX_LIMIT_CHANGED = EventType(
    "inbox.limit_changed",
    "The inbox's effective daily cap (what the mail server enforces) changed; a stack run "
    "applies it. `data.limited_by`: which bound decides it.",
    "inbox",
    "daily cap of sales@acme.example is now 7 (was 5)",
    {"from": 5, "to": 7, "limited_by": "warmup"},
)
ALL: tuple[EventType, ...] = (
    INBOX_READY,
    INBOX_DELETED,
    INBOX_WARMUP_STARTED,
    INBOX_WARMUP_ADVANCED,
    INBOX_WARMUP_PAUSED,
    INBOX_WARMUP_RESUMED,
    INBOX_WARMUP_COMPLETED,
    INBOX_LIMIT_CHANGED,
    DNS_VERIFIED,
    DNS_REGRESSED,
    DNS_PUBLISH_FAILED,
    SERVER_READY,
    SERVER_DELETED,
    OPERATION_FAILED,
    HEALTH_ALERT,
    HEALTH_RECOVERED,
    MAIL_SERVER_RESTARTED,
    MAIL_SERVER_RESTART_FAILED,
    WEBHOOK_DISABLED,
    WEBHOOK_PING,
)
BY_NAME: dict[str, EventType] = {t.name: t for t in ALL}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(t.family for t in ALL))
# Types only ever sent to one endpoint (by name, for the fan-out's SQL).
NOT_FANNED_OUT: tuple[str, ...] = tuple(t.name for t in ALL if not t.fan_out)

# The names before every type followed `family.action` (migration 0009 renamed stored rows).
RENAMED: dict[str, str] = {
    "dns_verified": DNS_VERIFIED.name,
    "dns_regressed": DNS_REGRESSED.name,
    "server_ready": SERVER_READY.name,
    "server_deleted": SERVER_DELETED.name,
    "inbox_deleted": INBOX_DELETED.name,
    "operation_failed": OPERATION_FAILED.name,
}


def pattern_problem(pattern: str, *, allow_all: bool = True) -> str | None:
    """Why `pattern` names no type of the catalogue, or None when it does."""
    if pattern == ALL_PATTERN and allow_all:
        return None
    if pattern.endswith(".*"):
        family = pattern[:-2]
        if family in FAMILIES:
            return None
        return f"unknown event family {family!r} in {pattern!r}; families: {', '.join(FAMILIES)}"
    if pattern in BY_NAME:
        return None
    hint = f" (now {RENAMED[pattern]!r})" if pattern in RENAMED else ""
    return f"unknown event type {pattern!r}{hint}; see GET /api/v1/event-types"


EXAMPLE_EVENT_ID = uuid.UUID("3f6c2a9e-8d41-4b7a-9e05-1c2d3e4f5a6b")
EXAMPLE_WORKSPACE_ID = uuid.UUID("7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e")
EXAMPLE_SUBJECT_ID = uuid.UUID("0d5e2c1a-77b2-4c8e-9a5e-6c1b9f3e2d10")


def example_body(t: EventType) -> dict[str, Any]:
    """The JSON body a receiver gets for an event of type `t` (the shape of
    `domain.webhooks.schemas.event_body`), with example values."""
    return {
        "id": str(EXAMPLE_EVENT_ID),
        "type": t.name,
        "created_at": "2026-12-01T09:30:00+00:00",
        "workspace_id": str(EXAMPLE_WORKSPACE_ID) if t.workspace else None,
        "workspace_name": "outbound-eu" if t.workspace else None,
        "subject": {"type": t.subject, "id": str(EXAMPLE_SUBJECT_ID) if t.subject else None},
        "message": t.message,
        "data": t.data,
    }


def markdown() -> str:
    """The catalogue as docs/events.md shows it: a table, then each type's `data` example (a test
    keeps the page equal to this; regenerate with
    `python -c 'from domain.events.catalogue import markdown; print(markdown())'`)."""
    rows = ["| type | subject | meaning |", "|---|---|---|"]
    for t in ALL:
        rows.append(f"| `{t.name}` | {t.subject or '-'} | {t.description} |")
    for t in ALL:
        rows += ["", f"### `{t.name}`", "", "```json"]
        rows.append(json.dumps({"message": t.message, "data": t.data}, indent=2))
        rows.append("```")
    return "\n".join(rows)
