"""The desired fleet of a workspace, read from the database into the stack config schema.

Rows marked `status = 'deleting'` (servers and inboxes) are left out: that is how the queue removes
them: the next `up` deletes their resources, and the queue then deletes the rows. Inboxes on a
server being deleted, or on no server yet, are left out too.

The fleet is read in one statement (`FLEET_JSON`: one JSON array per table, only the columns
the config needs), so the queue's claim can carry it (`automation.queue`): claim and load are
then one round trip. Secrets arrive encrypted and are decrypted here, as the ORM types would."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from automation.errors import StackConfigError
from database.models.workspaces import Workspace
from kit import crypto
from settings import get_settings
from stacks.config import (
    ConfigError,
    DnsConnectionSpec,
    DnsRecordSpec,
    DomainSpec,
    FleetConfig,
    MailboxSpec,
    ServerSpec,
)
from stacks.versions import pin_change_problem

DELETING = "deleting"
# Sandbox fleets need no real credentials; the program still requires a value.
SANDBOX_CREDENTIAL = "sandbox-not-a-credential"


def _agg(fields: str, source: str, order: str) -> str:
    """A JSON array of the rows of `source`, in `order` (constants of this module only)."""
    agg = f"jsonb_agg(jsonb_build_object({fields}) ORDER BY {order})"
    return f"(SELECT coalesce({agg}, '[]') {source})"


_SERVERS = _agg(
    "'name', s.name, 'provider', s.provider, 'size', s.size, 'region', s.region,"
    " 'hostname', s.hostname, 'ip', s.ip_address, 'ssh_user', s.ssh_user,"
    " 'ssh_port', s.ssh_port, 'stalwart_version', s.stalwart_version, 'id', s.id",
    "FROM vps_servers s WHERE s.workspace_id = w.id AND s.tenant_id = w.tenant_id"
    " AND (s.status IS NULL OR s.status <> 'deleting')",
    "s.created_at, s.name",
)
_DOMAINS = _agg(
    "'name', d.name, 'dkim_selector', d.dkim_selector, 'dkim_algorithm', d.dkim_algorithm,"
    " 'dkim_public_key', d.dkim_public_key, 'dkim_private_key', d.dkim_private_key_encrypted,"
    " 'connection', d.dns_connection_id",
    "FROM mail_domains d WHERE d.workspace_id = w.id AND d.tenant_id = w.tenant_id",
    "d.name",
)
_INBOXES = _agg(
    "'address', i.email_address, 'display_name', i.display_name, 'vps_id', i.vps_id,"
    " 'quota_mb', i.quota_mb, 'password', i.password_encrypted,"
    " 'daily_limit', i.effective_daily_limit, 'id', i.id",
    "FROM inboxes i WHERE i.workspace_id = w.id AND i.tenant_id = w.tenant_id"
    " AND (i.status IS NULL OR i.status <> 'deleting')",
    "i.email_address",
)
_CONNECTIONS = _agg(
    "'id', c.id, 'kind', c.kind, 'settings', c.settings, 'credentials', c.credentials_encrypted",
    "FROM dns_connections c WHERE c.workspace_id = w.id AND c.tenant_id = w.tenant_id",
    "c.id",
)
_RECORDS = _agg(
    "'domain', r.domain, 'purpose', r.purpose, 'type', r.record_type,"
    " 'name', r.record_name, 'value', r.record_value, 'ttl', r.ttl,"
    " 'zone', d.zone, 'mx_policy', d.mx_policy",
    "FROM dns_records r JOIN inboxes i ON i.id = r.inbox_id"
    " JOIN mail_domains d ON d.workspace_id = w.id AND d.tenant_id = w.tenant_id"
    " AND d.name = r.domain"
    " JOIN dns_connections c ON c.id = coalesce(d.dns_connection_id, w.dns_connection_id)"
    " AND c.workspace_id = w.id AND c.tenant_id = w.tenant_id AND c.kind <> 'manual'"
    " WHERE i.workspace_id = w.id AND i.tenant_id = w.tenant_id"
    " AND (i.status IS NULL OR i.status <> 'deleting')",
    "r.domain, r.purpose, r.id",
)
# The desired fleet of the workspace aliased `w`, as one JSON object (one column: a column costs
# the client more than a key). Scoped by workspace and tenant; rows being deleted left out; DNS
# records only of live inboxes whose domain publishes through one of the workspace's
# connections (the loader checks that again, by name). Secrets as stored: encrypted.
FLEET_JSON = (
    "jsonb_build_object('workspace_id', w.id, 'tenant_id', w.tenant_id,"
    " 'workspace_name', w.name, 'sandbox', w.sandbox, 'stack_name', w.stack_name,"
    " 'ssh_public_key', w.ssh_public_key, 'ssh_private_key', w.ssh_private_key_encrypted,"
    " 'stalwart_admin_password', w.stalwart_admin_password_encrypted,"
    " 'dns_connection_id', w.dns_connection_id,"
    f" 'servers', {_SERVERS}, 'domains', {_DOMAINS}, 'inboxes', {_INBOXES},"
    f" 'connections', {_CONNECTIONS}, 'records', {_RECORDS})"
)
_FLEET = text(f"SELECT {FLEET_JSON} FROM workspaces w WHERE w.id = :workspace_id")  # noqa: S608


def build_fleet_config(session: Session, workspace: Workspace) -> FleetConfig:
    session.flush()  # the statement below is not the ORM's: it does not autoflush
    return config_from(fleet_row(session, workspace.id))


def fleet_row(db: Session | Connection, workspace_id: uuid.UUID) -> dict[str, Any]:
    """The object `FLEET_JSON` builds for one workspace, in a statement of its own."""
    row: dict[str, Any] = db.execute(_FLEET, {"workspace_id": workspace_id}).scalar_one()
    return row


def _secret(value: str | None) -> str | None:
    return None if value is None else crypto.decrypt(value)


def config_from(row: Mapping[str, Any]) -> FleetConfig:
    """The config from the object `FLEET_JSON` builds."""
    settings = get_settings()
    servers: list[dict[str, Any]] = row["servers"]
    domains: list[dict[str, Any]] = row["domains"]
    inboxes: list[dict[str, Any]] = row["inboxes"]
    names = {s["id"]: s["name"] for s in servers}
    connections, records = _dns(row, domains, bool(inboxes))
    workspace_id, sandbox = str(row["workspace_id"]), bool(row["sandbox"])

    def credential(value: object, provider: str) -> str | None:
        if any(s["provider"] == provider for s in servers) and sandbox:
            return SANDBOX_CREDENTIAL
        secret = getattr(value, "get_secret_value", None)
        return secret() if secret is not None else None

    def pin(server: dict[str, Any]) -> str | None:
        # A server installed with v0.12-v0.15 stays on it when the default moves to v0.16:
        # that move is an offline migration (stacks/versions.py), never an in-place re-install.
        installed = server["stalwart_version"]
        if installed and pin_change_problem(installed, settings.stalwart_version):
            return str(installed)
        return None

    releases = tuple(v.strip() for v in settings.stalwart_releases.split(",") if v.strip())
    try:
        return FleetConfig(
            workspace_id=workspace_id,
            tenant_id=str(row["tenant_id"]),
            servers=tuple(
                ServerSpec(
                    name=s["name"],
                    provider=s["provider"],
                    size=s["size"],
                    region=s["region"],
                    hostname=s["hostname"].lower().rstrip("."),
                    ip=str(s["ip"]) if s["provider"] == "existing" and s["ip"] else None,
                    ssh_user=s["ssh_user"] or "root",
                    ssh_port=s["ssh_port"] or 22,
                    stalwart_version=pin(s),
                )
                for s in servers
            ),
            domains=tuple(
                DomainSpec(
                    name=d["name"].lower(),
                    dkim_selector=d["dkim_selector"],
                    dkim_algorithm=d["dkim_algorithm"],
                    dkim_public_key=d["dkim_public_key"],
                    dkim_private_key=crypto.decrypt(d["dkim_private_key"]),
                )
                for d in domains
            ),
            mailboxes=tuple(
                MailboxSpec(
                    address=i["address"].lower(),
                    display_name=i["display_name"],
                    server=names[i["vps_id"]],
                    quota_mb=i["quota_mb"],
                    password=crypto.decrypt(i["password"]),
                    daily_limit=i["daily_limit"],
                )
                for i in inboxes
                if i["vps_id"] in names and i["password"]
            ),
            stalwart_version=settings.stalwart_version,
            stalwart_releases=releases,
            stalwart_admin_password=_secret(row["stalwart_admin_password"]),
            ssh_public_key=row["ssh_public_key"],
            ssh_private_key=_secret(row["ssh_private_key"]),
            hetzner_token=credential(settings.hetzner_token, "hetzner"),
            hostwinds_api_key=credential(settings.hostwinds_api_key, "hostwinds"),
            dns_connections=connections,
            dns_records=records,
        )
    except ConfigError as exc:
        raise StackConfigError(
            f"workspace {workspace_id} cannot be deployed: {exc}", field=exc.key
        ) from exc


def _dns(
    row: Mapping[str, Any], domains: list[dict[str, Any]], any_live_inbox: bool
) -> tuple[tuple[DnsConnectionSpec, ...], tuple[DnsRecordSpec, ...]]:
    """Every DNS connection of the workspace (a record being removed needs its connection's
    credentials even when nothing uses it any more), and one record per distinct value of the
    records of live inboxes whose domain publishes through a connection."""
    connections = tuple(
        DnsConnectionSpec(
            id=str(c["id"]),
            kind=c["kind"],
            settings=dict(c["settings"] or {}),
            credentials=json.loads(_secret(c["credentials"]) or "{}"),
        )
        for c in row["connections"]
        if c["kind"] != "manual"
    )
    publishing = {c.id for c in connections}
    by_name: dict[str, str] = {}
    for d in domains:
        applies = d["connection"] or row["dns_connection_id"]
        if applies is not None and str(applies) in publishing:
            by_name[d["name"]] = str(applies)
    if not by_name or not any_live_inbox:
        return connections, ()
    records: dict[str, DnsRecordSpec] = {}
    for r in row["records"]:
        if r["domain"] not in by_name:
            continue
        spec = DnsRecordSpec(
            connection=by_name[r["domain"]],
            domain=r["domain"],
            purpose=r["purpose"],
            type=r["type"],
            name=r["name"],
            value=r["value"],
            ttl=r["ttl"] or 3600,
            zone=r["zone"],
            mx_policy=r["mx_policy"],
        )
        records.setdefault(spec.logical_name, spec)
    return connections, tuple(records.values())
