"""DNS records as resources of the workspace's stack: `Record`, a Pulumi dynamic resource per
record value we publish, with record-level ownership (we own values, never the customer's
RRsets). `pulumi preview` lists each record beside the servers; removing the last inbox of a
domain removes its resources, and their delete takes out exactly what their create added.

The provider never fails a run for what a DNS service says: a refused TSIG key or an
unreachable server is the record's `status: error` with the service's words in `detail`, and the
rest of the stack goes on. A record whose last outcome was not `published` is tried again by the
next run (`diff` reports a change). The publishing itself is `dnspublish` (a pure library);
`apply` and `remove` here are also what the sandbox engine calls, so sandbox workspaces publish
for real."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

from dnspublish import spf
from dnspublish.backends import PublishError, Unreachable, txt_join
from dnspublish.connect import backend_for
from dnspublish.publish import Want, publish_record, remove_record
from stacks.config import DnsConnectionSpec, DnsRecordSpec, FleetConfig

TYPE = "pulumi-python:dynamic/dns:Record"
SECRET_OUTPUTS = ["credentials"]
SETTLED = ("published", "manual")
OUTCOME_KEYS = ("status", "detail", "zone_found", "published_at", "owned")


def inputs(record: DnsRecordSpec, connection: DnsConnectionSpec) -> dict[str, Any]:
    """The resource's inputs; `credentials` is secret."""
    return {
        "connection_id": connection.id,
        "kind": connection.kind,
        "settings": dict(connection.settings),
        "credentials": dict(connection.credentials),
        "domain": record.domain,
        "zone": record.zone or "",
        "purpose": record.purpose,
        "type": record.type,
        "fqdn": record.fqdn,
        "name": record.name,
        "value": record.value,
        "ttl": record.ttl,
        "mx_policy": record.mx_policy,
    }


def want_of(props: dict[str, Any]) -> Want:
    value = str(props["value"])
    if props["type"] == "TXT":
        value = txt_join(value)
    return Want(
        str(props["purpose"]),
        str(props["type"]),
        str(props["fqdn"]),
        value,
        int(props.get("ttl") or 3600),
    )


class _Decided(Exception):
    """An outcome reached before anything is published (a step's early answer)."""

    def __init__(self, outcome: dict[str, Any]) -> None:
        super().__init__(outcome["detail"])
        self.outcome = outcome


def apply(
    props: dict[str, Any], timeout: float = 3.0, previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Publish one record; the outcome fields (`status`, `detail`, `zone_found`,
    `published_at`, `owned`). Never raises for what the service says. `previous`: the
    resource's last outputs when this is an update; a value we published before is swapped for
    the new one (the SPF keeps the terms both share), and what we own is carried over."""
    now = datetime.now(UTC).isoformat()
    try:
        backend = _backend(props, timeout)
        want = want_of(props)
        zone = _zone(backend, want, props)
        before, prior, changed = _before(props, previous)
        prior = _take_out_old_value(props, want, before, prior, changed, timeout)
    except _Decided as decided:
        return decided.outcome
    outcome = publish_record(backend, want, zone=zone, mx_policy=str(props.get("mx_policy")))
    if outcome.status == "published" and prior:
        outcome.owned = _carry(backend, want, outcome, prior, changed)
    return _outcome(
        outcome.status,
        outcome.detail,
        outcome.zone,
        outcome.owned,
        now if outcome.status == "published" else None,
    )


def _backend(props: dict[str, Any], timeout: float) -> Any:
    """The connection's backend; a manual connection or one that cannot be used is decided."""
    try:
        backend = backend_for(
            str(props["kind"]),
            props.get("settings") or {},
            props.get("credentials") or {},
            timeout=timeout,
        )
    except Exception as exc:  # a bad setting must be the record's error, never the run's
        raise _Decided(
            _outcome("error", f"the connection cannot be used: {type(exc).__name__}: {exc}")
        ) from exc
    if backend is None:
        raise _Decided(_outcome("manual", "manual connection: publish it by hand"))
    return backend


def _zone(backend: Any, want: Want, props: dict[str, Any]) -> str | None:
    """The zone to write in: the domain's (None: found by the backend), or for a PTR the
    reverse zone the backend holds; one it does not hold makes the PTR manual (rDNS)."""
    if want.purpose != "ptr":
        return str(props.get("zone") or "") or None
    try:
        return str(backend.find_zone(want.fqdn))
    except Unreachable as exc:
        raise _Decided(_outcome("error", str(exc))) from exc
    except PublishError as exc:
        raise _Decided(
            _outcome(
                "manual",
                f"{backend.description} holds no reverse zone for {want.fqdn} ({exc}); the PTR "
                "is set at the server's provider (rDNS)",
            )
        ) from exc


def _before(
    props: dict[str, Any], previous: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any], bool]:
    """The last outputs if they were published, what we owned then, and whether the value or
    name has changed since."""
    before = previous if previous and previous.get("status") == "published" else None
    prior: dict[str, Any] = dict(before.get("owned") or {}) if before else {}
    changed = before is not None and (before.get("value"), before.get("fqdn")) != (
        props["value"],
        props["fqdn"],
    )
    return before, prior, changed


def _take_out_old_value(
    props: dict[str, Any],
    want: Want,
    before: dict[str, Any] | None,
    prior: dict[str, Any],
    changed: bool,
    timeout: float,
) -> dict[str, Any]:
    """Remove the value we published before when it changed (SPF excepted: `_carry` merges
    it); returns what we still own from before."""
    if not (changed and prior and want.purpose != "spf"):
        return prior
    # Ours out first: the new value must not meet the old one as a stranger (A, MX).
    try:
        remove(before or {}, props.get("credentials") or {}, timeout=timeout)
    except PublishError as exc:
        raise _Decided(
            _outcome("error", f"could not remove the value we published before: {exc}")
        ) from exc
    return {}


def _carry(
    backend: Any, want: Want, outcome: Any, prior: dict[str, Any], changed: bool
) -> dict[str, Any]:
    """What we own after an update: for SPF the terms of the old value that the new one still
    has plus those just added (the old value's others are taken out now), its original text
    kept; for the rest, what we added before (a retry finds it there and adds nothing)."""
    if want.purpose != "spf":
        added = list(prior.get("added", [])) + [
            v for v in outcome.owned.get("added", []) if v not in prior.get("added", [])
        ]
        return {**prior, **outcome.owned, "added": added}
    keep = {t.lower() for t in spf.our_terms(want.value)}
    old_terms = list(prior.get("terms", []))
    stale = [t for t in old_terms if t.lower() not in keep]
    if changed and stale:
        remove_record(backend, want, {"terms": stale}, zone=str(outcome.zone))
    terms = [t for t in old_terms if t.lower() in keep]
    terms += [t for t in outcome.owned.get("terms", []) if t not in terms]
    current = [v for v in backend.read(str(outcome.zone), want.fqdn, "TXT") if spf.is_spf(v)]
    return {
        "created": bool(prior.get("created")),
        "terms": terms,
        "original": prior.get("original", outcome.owned.get("original")),
        "merged": current[0] if len(current) == 1 else "",
    }


def _outcome(
    status: str,
    detail: str,
    zone: str | None = None,
    owned: dict[str, Any] | None = None,
    published_at: str | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "detail": detail,
        "zone_found": zone or "",
        "published_at": published_at or "",
        "owned": owned or {},
    }


def remove(
    props: dict[str, Any], credentials: dict[str, Any] | None = None, timeout: float = 3.0
) -> str:
    """Undo a published record (its outputs); returns what was done. Raises PublishError."""
    if props.get("status") != "published" or not props.get("owned"):
        return "nothing of ours was published"
    backend = backend_for(
        str(props["kind"]),
        props.get("settings") or {},
        credentials if credentials is not None else props.get("credentials") or {},
        timeout=timeout,
    )
    if backend is None:
        return "manual connection"
    return remove_record(
        backend, want_of(props), dict(props["owned"]), zone=str(props["zone_found"])
    )


class RecordProvider(ResourceProvider):
    """Stateless: each call builds its backend from the resource's own (secret) inputs."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = [k for k in news if k not in OUTCOME_KEYS]
        changed = any(olds.get(k) != news.get(k) for k in keys)
        return DiffResult(changes=changed or olds.get("status") not in SETTLED)

    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = {**props, **apply(props)}
        return CreateResult(f"{props['fqdn']}/{props['type']}/{props['purpose']}", outs)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({**news, **apply(news, previous=olds)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        try:
            remove(props)
        except PublishError as exc:
            raise Exception(str(exc)) from None


class Record(pulumi.dynamic.Resource, module="dns", name="Record"):
    status: pulumi.Output[str]
    detail: pulumi.Output[str]
    zone_found: pulumi.Output[str]
    published_at: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        record: DnsRecordSpec,
        connection: DnsConnectionSpec,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        opts = pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)
        )
        props: dict[str, Any] = inputs(record, connection)
        props["credentials"] = pulumi.Output.secret(props["credentials"])
        super().__init__(RecordProvider(), name, {**props, **dict.fromkeys(OUTCOME_KEYS)}, opts)


def records(config: FleetConfig, depends_on: list[pulumi.Resource]) -> dict[str, Any]:
    """Declare every DNS record resource; the `dns` output: per resource, what the control
    plane needs to find the record again and the outcome."""
    connections = {c.id: c for c in config.dns_connections}
    out: dict[str, Any] = {}
    for spec in config.dns_records:
        resource = Record(
            spec.logical_name,
            spec,
            connections[spec.connection],
            pulumi.ResourceOptions(depends_on=depends_on),
        )
        out[spec.logical_name] = {
            "domain": spec.domain,
            "purpose": spec.purpose,
            "value": spec.value,
            "status": resource.status,
            "detail": resource.detail,
            "zone": resource.zone_found,
            "published_at": resource.published_at,
        }
    return out
