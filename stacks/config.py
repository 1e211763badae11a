"""The stack config schema: the whole desired fleet of one workspace, validated.

`FleetConfig` is built by the control plane from the database (`automation.desired_state`) or read
back from Pulumi stack config inside the program (`from_pulumi`). `to_stack_config()` renders it as
the `penguinmails:*` keys the live engine sets (secrets flagged) and `Pulumi.example.yaml` shows.
Every validation error is a `ConfigError` whose `key` names the stack config key at fault, e.g.
`penguinmails:servers[1].region`. Stdlib only: the API and the engines import it without Pulumi.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stacks.catalog import DEFAULT as DEFAULT_CATALOG
from stacks.catalog import Catalog, CatalogError
from stacks.versions import DEFAULT_VERSION, pin_change_problem, pin_problem

NS = "penguinmails"
# v0.16+ is managed over JMAP (stacks/scripts.py MANAGE_JMAP); v0.12-v0.15 over REST.
DEFAULT_STALWART_VERSION = DEFAULT_VERSION
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}$")
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

# Plain keys and secret keys, in the order they are rendered.
PLAIN_KEYS = (
    "workspaceId",
    "tenantId",
    "stalwartVersion",
    "stalwartReleases",
    "acmeEmail",
    "sshPublicKey",
    "servers",
    "domains",
    "mailboxes",
    "catalog",
    "dnsConnections",
    "dnsRecords",
)
SECRET_KEYS = (
    "stalwartAdminPassword",
    "sshPrivateKey",
    "dkimPrivateKeys",
    "mailboxPasswords",
    "hetznerToken",
    "hostwindsApiKey",
    "dnsCredentials",
)


class ConfigError(ValueError):
    """Invalid stack config; `key` is the full stack config key (with path) at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.reason = message


@dataclass(frozen=True)
class ServerSpec:
    name: str
    provider: str
    size: str
    region: str
    hostname: str
    # Only for `existing`: the host to install on.
    ip: str | None = None
    ssh_user: str = "root"
    ssh_port: int = 22
    # This server's own pin (unset: the fleet's `stalwartVersion`). A server installed with
    # v0.12-v0.15 keeps its pin when the fleet default moves to v0.16 (offline migration).
    stalwart_version: str | None = None


@dataclass(frozen=True)
class DomainSpec:
    name: str
    dkim_selector: str
    dkim_public_key: str
    dkim_private_key: str = field(repr=False)
    dkim_algorithm: str = "rsa"


@dataclass(frozen=True)
class MailboxSpec:
    address: str
    server: str
    password: str = field(repr=False)
    display_name: str | None = None
    quota_mb: int = 2048
    # Messages a day the mail server lets this sender deliver (warmup and caps,
    # docs/warmup.md); None: no per-sender limit.
    daily_limit: int | None = None

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


@dataclass(frozen=True)
class DnsConnectionSpec:
    """A DNS connection the records are published through (`id` as the database names it)."""

    id: str
    kind: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)


MULTI_VALUED = ("mx", "srv_submissions", "srv_imaps")


@dataclass(frozen=True)
class DnsRecordSpec:
    """One record to publish: `name` and `value` as the control plane shows them (names
    relative to the domain, `@` the apex, absolute with a trailing dot; long TXT values as
    quoted strings)."""

    connection: str
    domain: str
    purpose: str
    type: str
    name: str
    value: str
    ttl: int = 3600
    zone: str | None = None
    mx_policy: str = "keep"

    @property
    def fqdn(self) -> str:
        if self.name.endswith("."):
            return self.name[:-1].lower()
        if self.name in ("@", ""):
            return self.domain
        return f"{self.name}.{self.domain}".lower()

    @property
    def logical_name(self) -> str:
        """One resource per name for records that hold one value of ours there (SPF, A, DKIM,
        DMARC, ...): a new value is an update of it, which swaps ours in place (the SPF keeps the
        terms both values share). Per value for those a domain may have several of (MX, SRV:
        one per server)."""
        import hashlib

        parts = [self.connection, self.type, self.fqdn]
        if self.purpose in MULTI_VALUED:
            parts.append(self.value)
        key = "|".join(parts)
        return f"dns-{self.domain}-{self.purpose}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class StackConfigValue:
    value: str = field(repr=False)
    secret: bool = False


@dataclass(frozen=True)
class FleetConfig:
    workspace_id: str
    tenant_id: str
    servers: tuple[ServerSpec, ...] = ()
    domains: tuple[DomainSpec, ...] = ()
    mailboxes: tuple[MailboxSpec, ...] = ()
    stalwart_version: str = DEFAULT_STALWART_VERSION
    # Release tags accepted besides stacks.versions.RELEASES (releases newer than that list).
    stalwart_releases: tuple[str, ...] = ()
    stalwart_admin_password: str | None = field(default=None, repr=False)
    ssh_public_key: str | None = None
    ssh_private_key: str | None = field(default=None, repr=False)
    hetzner_token: str | None = field(default=None, repr=False)
    hostwinds_api_key: str | None = field(default=None, repr=False)
    acme_email: str | None = None
    catalog_overrides: Mapping[str, Any] | None = None
    dns_connections: tuple[DnsConnectionSpec, ...] = ()
    dns_records: tuple[DnsRecordSpec, ...] = ()

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def catalog(self) -> Catalog:
        return merge_catalog(self.catalog_overrides)

    def server(self, name: str) -> ServerSpec:
        return next(s for s in self.servers if s.name == name)

    def version_of(self, server: ServerSpec) -> str:
        return server.stalwart_version or self.stalwart_version

    # Rendering -----------------------------------------------------------------------------

    def to_stack_config(self) -> dict[str, StackConfigValue]:
        """`penguinmails:<key>` -> value (objects as JSON text), secrets flagged. Keys whose value
        is unset are left out, so a run can remove them from the stack."""
        plain: dict[str, Any] = {
            "workspaceId": self.workspace_id,
            "tenantId": self.tenant_id,
            "stalwartVersion": self.stalwart_version,
            "stalwartReleases": list(self.stalwart_releases) or None,
            "acmeEmail": self.acme_email,
            "sshPublicKey": self.ssh_public_key,
            "servers": [_server_json(s) for s in self.servers],
            "domains": [
                {
                    "name": d.name,
                    "dkimSelector": d.dkim_selector,
                    "dkimAlgorithm": d.dkim_algorithm,
                    "dkimPublicKey": d.dkim_public_key,
                }
                for d in self.domains
            ],
            "mailboxes": [
                {
                    "address": m.address,
                    "displayName": m.display_name,
                    "server": m.server,
                    "quotaMb": m.quota_mb,
                    **({} if m.daily_limit is None else {"dailyLimit": m.daily_limit}),
                }
                for m in self.mailboxes
            ],
            "catalog": dict(self.catalog_overrides) if self.catalog_overrides else None,
            "dnsConnections": [
                {"id": c.id, "kind": c.kind, "settings": dict(c.settings)}
                for c in self.dns_connections
            ]
            or None,
            "dnsRecords": [_record_json(r) for r in self.dns_records] or None,
        }
        secret: dict[str, Any] = {
            "stalwartAdminPassword": self.stalwart_admin_password,
            "sshPrivateKey": self.ssh_private_key,
            "dkimPrivateKeys": {d.name: d.dkim_private_key for d in self.domains},
            "mailboxPasswords": {m.address: m.password for m in self.mailboxes},
            "hetznerToken": self.hetzner_token,
            "hostwindsApiKey": self.hostwinds_api_key,
            "dnsCredentials": {c.id: dict(c.credentials) for c in self.dns_connections} or None,
        }
        out: dict[str, StackConfigValue] = {}
        for values, is_secret in ((plain, False), (secret, True)):
            for key, value in values.items():
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                out[f"{NS}:{key}"] = StackConfigValue(text, is_secret)
        return out

    # Parsing -------------------------------------------------------------------------------

    @classmethod
    def from_stack_config(cls, values: Mapping[str, Any]) -> FleetConfig:
        """Parse `penguinmails:<key>` values (JSON text as Pulumi stores objects, or objects)."""

        def get(key: str) -> Any:
            raw = values.get(f"{NS}:{key}")
            if isinstance(raw, str) and key in _OBJECT_KEYS:
                try:
                    return json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{NS}:{key}", f"is not valid JSON ({exc.msg})") from None
            return raw

        workspace_id = _req_str(get("workspaceId"), f"{NS}:workspaceId")
        tenant_id = _req_str(get("tenantId"), f"{NS}:tenantId")
        dkim_keys = _opt_map(get("dkimPrivateKeys"), f"{NS}:dkimPrivateKeys")
        passwords = _opt_map(get("mailboxPasswords"), f"{NS}:mailboxPasswords")
        servers = tuple(
            _parse_server(item, f"{NS}:servers[{i}]")
            for i, item in enumerate(_opt_list(get("servers"), f"{NS}:servers"))
        )
        domains = []
        for i, item in enumerate(_opt_list(get("domains"), f"{NS}:domains")):
            key = f"{NS}:domains[{i}]"
            obj = _obj(item, key, {"name", "dkimSelector", "dkimPublicKey", "dkimAlgorithm"})
            name = _req_str(obj.get("name"), f"{key}.name").lower()
            validate_domain_name(name, f"{key}.name")
            private = dkim_keys.get(name)
            if not isinstance(private, str) or not private.strip():
                raise ConfigError(f'{NS}:dkimPrivateKeys["{name}"]', "missing (a PEM private key)")
            domains.append(
                DomainSpec(
                    name=name,
                    dkim_selector=_req_str(obj.get("dkimSelector"), f"{key}.dkimSelector"),
                    dkim_public_key=_req_str(obj.get("dkimPublicKey"), f"{key}.dkimPublicKey"),
                    dkim_algorithm=_opt_str(obj.get("dkimAlgorithm"), f"{key}.dkimAlgorithm")
                    or "rsa",
                    dkim_private_key=private,
                )
            )
        mailboxes = []
        for i, item in enumerate(_opt_list(get("mailboxes"), f"{NS}:mailboxes")):
            key = f"{NS}:mailboxes[{i}]"
            obj = _obj(item, key, {"address", "displayName", "server", "quotaMb", "dailyLimit"})
            address = _req_str(obj.get("address"), f"{key}.address").lower()
            validate_mailbox_address(address, f"{key}.address")
            password = passwords.get(address)
            if not isinstance(password, str):
                raise ConfigError(f'{NS}:mailboxPasswords["{address}"]', "missing")
            quota = obj.get("quotaMb", 2048)
            if isinstance(quota, bool) or not isinstance(quota, int | float):
                raise ConfigError(f"{key}.quotaMb", "must be a whole number of megabytes")
            if int(quota) != quota:
                raise ConfigError(f"{key}.quotaMb", "must be a whole number of megabytes")
            mailboxes.append(
                MailboxSpec(
                    address=address,
                    display_name=_opt_str(obj.get("displayName"), f"{key}.displayName"),
                    server=_req_str(obj.get("server"), f"{key}.server"),
                    quota_mb=int(quota),
                    password=password,
                    daily_limit=_opt_daily_limit(obj.get("dailyLimit"), f"{key}.dailyLimit"),
                )
            )
        catalog = get("catalog")
        if catalog is not None and not isinstance(catalog, dict):
            raise ConfigError(f"{NS}:catalog", "must be an object of overrides")
        credentials = _opt_map(get("dnsCredentials"), f"{NS}:dnsCredentials")
        connections = []
        for i, item in enumerate(_opt_list(get("dnsConnections"), f"{NS}:dnsConnections")):
            key = f"{NS}:dnsConnections[{i}]"
            obj = _obj(item, key, {"id", "kind", "settings"})
            cid = _req_str(obj.get("id"), f"{key}.id")
            connections.append(
                DnsConnectionSpec(
                    id=cid,
                    kind=_req_str(obj.get("kind"), f"{key}.kind"),
                    settings=dict(obj.get("settings") or {}),
                    credentials=dict(credentials.get(cid.lower()) or {}),
                )
            )
        records = tuple(
            _parse_record(item, f"{NS}:dnsRecords[{i}]")
            for i, item in enumerate(_opt_list(get("dnsRecords"), f"{NS}:dnsRecords"))
        )
        return cls(
            workspace_id=workspace_id,
            tenant_id=tenant_id,
            servers=servers,
            domains=tuple(domains),
            mailboxes=tuple(mailboxes),
            stalwart_version=_opt_str(get("stalwartVersion"), f"{NS}:stalwartVersion")
            or DEFAULT_STALWART_VERSION,
            stalwart_releases=tuple(
                _req_str(v, f"{NS}:stalwartReleases[{i}]")
                for i, v in enumerate(_opt_list(get("stalwartReleases"), f"{NS}:stalwartReleases"))
            ),
            stalwart_admin_password=_opt_str(
                get("stalwartAdminPassword"), f"{NS}:stalwartAdminPassword"
            ),
            ssh_public_key=_opt_str(get("sshPublicKey"), f"{NS}:sshPublicKey"),
            ssh_private_key=_opt_str(get("sshPrivateKey"), f"{NS}:sshPrivateKey"),
            hetzner_token=_opt_str(get("hetznerToken"), f"{NS}:hetznerToken"),
            hostwinds_api_key=_opt_str(get("hostwindsApiKey"), f"{NS}:hostwindsApiKey"),
            acme_email=_opt_str(get("acmeEmail"), f"{NS}:acmeEmail"),
            catalog_overrides=catalog,
            dns_connections=tuple(connections),
            dns_records=records,
        )

    @classmethod
    def from_pulumi(cls) -> FleetConfig:
        """Inside a Pulumi program (real or mocked): read this stack's `penguinmails:*` config."""
        from pulumi.runtime import get_config

        return cls.from_stack_config(
            {f"{NS}:{k}": get_config(f"{NS}:{k}") for k in (*PLAIN_KEYS, *SECRET_KEYS)}
        )


_CATALOG_KEY = f"{NS}:catalog"
_OBJECT_KEYS = {
    "stalwartReleases", "servers", "domains", "mailboxes", "catalog", "dkimPrivateKeys",
    "mailboxPasswords", "dnsConnections", "dnsRecords", "dnsCredentials",
}  # fmt: skip
_RECORD_KEYS = {
    "connection", "domain", "purpose", "type", "name", "value", "ttl", "zone", "mxPolicy"
}  # fmt: skip


def _record_json(r: DnsRecordSpec) -> dict[str, Any]:
    return {
        "connection": r.connection, "domain": r.domain, "purpose": r.purpose, "type": r.type,
        "name": r.name, "value": r.value, "ttl": r.ttl, "zone": r.zone, "mxPolicy": r.mx_policy,
    }  # fmt: skip


def _parse_record(item: Any, key: str) -> DnsRecordSpec:
    obj = _obj(item, key, _RECORD_KEYS)
    ttl = obj.get("ttl", 3600)
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or int(ttl) != ttl:
        raise ConfigError(f"{key}.ttl", "must be a whole number of seconds")
    return DnsRecordSpec(
        connection=_req_str(obj.get("connection"), f"{key}.connection"),
        domain=_req_str(obj.get("domain"), f"{key}.domain").lower(),
        purpose=_req_str(obj.get("purpose"), f"{key}.purpose"),
        type=_req_str(obj.get("type"), f"{key}.type").upper(),
        name=_req_str(obj.get("name"), f"{key}.name"),
        value=_req_str(obj.get("value"), f"{key}.value"),
        ttl=int(ttl),
        zone=_opt_str(obj.get("zone"), f"{key}.zone"),
        mx_policy=_opt_str(obj.get("mxPolicy"), f"{key}.mxPolicy") or "keep",
    )


def _server_json(s: ServerSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": s.name,
        "provider": s.provider,
        "size": s.size,
        "region": s.region,
        "hostname": s.hostname,
    }
    if s.provider == "existing":
        out.update(ip=s.ip, sshUser=s.ssh_user, sshPort=s.ssh_port)
    if s.stalwart_version:
        out["stalwartVersion"] = s.stalwart_version
    return out


def _parse_server(item: Any, key: str) -> ServerSpec:
    allowed = {"name", "provider", "size", "region", "hostname", "ip", "sshUser", "sshPort"}
    allowed.add("stalwartVersion")
    obj = _obj(item, key, allowed)
    port = obj.get("sshPort", 22)
    if isinstance(port, bool) or not isinstance(port, int | float) or int(port) != port:
        raise ConfigError(f"{key}.sshPort", "must be a port number")
    return ServerSpec(
        name=_req_str(obj.get("name"), f"{key}.name"),
        provider=_req_str(obj.get("provider"), f"{key}.provider"),
        size=_req_str(obj.get("size"), f"{key}.size"),
        region=_req_str(obj.get("region"), f"{key}.region"),
        hostname=_req_str(obj.get("hostname"), f"{key}.hostname").lower().rstrip("."),
        ip=_opt_str(obj.get("ip"), f"{key}.ip"),
        ssh_user=_opt_str(obj.get("sshUser"), f"{key}.sshUser") or "root",
        ssh_port=int(port),
        stalwart_version=_opt_str(obj.get("stalwartVersion"), f"{key}.stalwartVersion"),
    )


def _obj(item: Any, key: str, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ConfigError(key, "must be an object")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise ConfigError(
            f"{key}.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(allowed))}"
        )
    return item


def _req_str(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, "is required (a non-empty string)")
    return value.strip()


def _opt_str(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(key, "must be a string")
    return value


def _opt_list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(key, "must be a list")
    return value


def _opt_map(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, "must be an object")
    return {str(k).lower(): v for k, v in value.items()}


# Validation --------------------------------------------------------------------------------
# One function per check, of plain values: each raises `ConfigError(key, reason)` naming the key
# it is given. `_validate` runs them in a fixed order (workspace fields, catalog, servers one by
# one, their credentials, domains one by one, mailboxes one by one), so a config with several
# faults reports the first in that order. They are public so that the API can run the same
# checks and refuse what the program would refuse before anything is queued.


def _validate(c: FleetConfig) -> None:
    validate_workspace(
        c.workspace_id, c.tenant_id, c.stalwart_version, c.acme_email, c.stalwart_releases
    )
    catalog = validate_catalog(c.catalog_overrides)
    server_names = validate_servers(c.servers, catalog)
    for i, s in enumerate(c.servers):
        if s.stalwart_version is not None:
            validate_stalwart_version(
                s.stalwart_version, f"{NS}:servers[{i}].stalwartVersion", c.stalwart_releases
            )
    if c.servers:
        validate_server_credentials(c.ssh_public_key, c.ssh_private_key, c.stalwart_admin_password)
    validate_provider_credentials(
        {s.provider for s in c.servers}, c.hetzner_token, c.hostwinds_api_key
    )
    domain_names = validate_domains(c.domains)
    validate_mailboxes(c.mailboxes, domain_names, server_names)
    validate_dns(c.dns_connections, c.dns_records, domain_names)


# DNS publishing


DNS_KINDS = ("rfc2136", "lexicon", "cloudflare", "hetzner", "manual")
DNS_TYPES = ("A", "AAAA", "MX", "TXT", "PTR", "SRV", "CNAME")


def validate_dns(
    connections: Sequence[DnsConnectionSpec],
    records: Sequence[DnsRecordSpec],
    domains: Collection[str],
) -> None:
    ids: set[str] = set()
    for i, c in enumerate(connections):
        key = f"{NS}:dnsConnections[{i}]"
        validate_unused(c.id, ids, f"{key}.id", "is listed twice")
        if c.kind not in DNS_KINDS:
            raise ConfigError(f"{key}.kind", f"must be one of {', '.join(DNS_KINDS)}")
        if c.kind == "rfc2136":
            for name in ("server", "tsig_key_name"):
                if not c.settings.get(name):
                    raise ConfigError(f"{key}.settings.{name}", "is required for rfc2136")
        ids.add(c.id)
    names: set[str] = set()
    for i, r in enumerate(records):
        key = f"{NS}:dnsRecords[{i}]"
        if r.connection not in ids:
            raise ConfigError(f"{key}.connection", f"no DNS connection {r.connection!r}")
        if r.domain not in domains:
            raise ConfigError(f"{key}.domain", f"domain {r.domain!r} is not in {NS}:domains")
        if r.type not in DNS_TYPES:
            raise ConfigError(f"{key}.type", f"must be one of {', '.join(DNS_TYPES)}")
        if r.mx_policy not in ("keep", "replace"):
            raise ConfigError(f"{key}.mxPolicy", "must be keep or replace")
        validate_unused(r.logical_name, names, f"{key}.value", "is listed twice")
        names.add(r.logical_name)


# Workspace fields


def validate_workspace(
    workspace_id: str,
    tenant_id: str,
    stalwart_version: str,
    acme_email: str | None,
    releases: Collection[str] = (),
) -> None:
    validate_required(workspace_id, f"{NS}:workspaceId")
    validate_required(tenant_id, f"{NS}:tenantId")
    validate_stalwart_version(stalwart_version, f"{NS}:stalwartVersion", releases)
    if acme_email is not None:
        validate_email(acme_email, f"{NS}:acmeEmail")


def validate_required(value: str, key: str) -> None:
    if not value:
        raise ConfigError(key, "is required")


def validate_stalwart_version(value: str, key: str, releases: Collection[str] = ()) -> None:
    """A pin names a real release (stacks.versions.RELEASES, or one of `releases`)."""
    problem = pin_problem(value, releases)
    if problem is not None:
        raise ConfigError(key, problem)


def validate_email(value: str, key: str) -> None:
    if not _is_email(value):
        raise ConfigError(key, "is not an email address")


def validate_catalog(overrides: Mapping[str, Any] | None) -> Catalog:
    """The default catalog with `overrides` merged in (what `FleetConfig.catalog` returns)."""
    try:
        return merge_catalog(overrides)
    except (TypeError, AttributeError) as exc:
        raise ConfigError(_CATALOG_KEY, f"cannot be merged: {exc}") from None


def merge_catalog(overrides: Mapping[str, Any] | None) -> Catalog:
    return DEFAULT_CATALOG.with_overrides(dict(overrides or {}))


# Servers


def validate_servers(servers: Sequence[ServerSpec], catalog: Catalog) -> set[str]:
    """Each server in turn, against the ones before it; returns their names."""
    names: set[str] = set()
    hostnames: set[str] = set()
    for i, s in enumerate(servers):
        validate_server(s, f"{NS}:servers[{i}]", catalog, names, hostnames)
        names.add(s.name)
        hostnames.add(s.hostname)
    return names


def validate_server(
    server: ServerSpec,
    key: str,
    catalog: Catalog,
    taken_names: Collection[str] = (),
    taken_hostnames: Collection[str] = (),
) -> None:
    """One server; `key` is its prefix (`penguinmails:servers[0]`), the `taken_*` are the names
    and hostnames of the other servers."""
    validate_server_name(server.name, f"{key}.name")
    validate_unused(server.name, taken_names, f"{key}.name", "is used by another server")
    validate_offer(catalog, server.provider, server.size, server.region, key)
    validate_hostname(server.hostname, f"{key}.hostname")
    validate_unused(
        server.hostname, taken_hostnames, f"{key}.hostname", "is used by another server"
    )
    validate_server_ip(server.provider, server.ip, f"{key}.ip")
    if server.provider == "existing":
        validate_ssh_user(server.ssh_user, f"{key}.sshUser")
    validate_ssh_port(server.ssh_port, f"{key}.sshPort")


def validate_server_name(value: str, key: str) -> None:
    if not _LABEL.match(value):
        raise ConfigError(key, "must be a DNS label: a-z, 0-9 and '-', 1-63 long")


def validate_offer(catalog: Catalog, provider: str, size: str, region: str, key: str) -> None:
    """The catalog sells this provider/size/region; `key` is the server's prefix (the error
    names `{key}.provider`, `.size` or `.region`). A broken override names the catalog."""
    try:
        catalog.validate(provider, size, region)
    except CatalogError as exc:
        raise ConfigError(f"{key}.{exc.key}", str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(_CATALOG_KEY, f"override is malformed: {exc}") from None


def validate_hostname(value: str, key: str) -> None:
    if not _HOST.match(value):
        raise ConfigError(key, f"{value!r} is not a fully qualified name")


def validate_server_ip(provider: str, ip: str | None, key: str) -> None:
    """An existing server needs its address; every other provider assigns one."""
    if provider != "existing":
        if ip is not None:
            raise ConfigError(key, f"only existing servers take an ip ({provider} assigns one)")
        return
    try:
        ipaddress.ip_address(ip or "")
    except ValueError:
        raise ConfigError(key, "an existing server needs its IP address") from None


def validate_ssh_user(value: str, key: str) -> None:
    if not _USER.match(value):
        raise ConfigError(key, "is not a valid user name")


def validate_ssh_port(value: int, key: str) -> None:
    if not 1 <= value <= 65535:
        raise ConfigError(key, "must be between 1 and 65535")


# Secrets


def validate_server_credentials(
    ssh_public_key: str | None, ssh_private_key: str | None, stalwart_admin_password: str | None
) -> None:
    """What a fleet with any server needs."""
    validate_ssh_public_key(ssh_public_key, f"{NS}:sshPublicKey")
    validate_ssh_private_key(ssh_private_key, f"{NS}:sshPrivateKey")
    validate_admin_password(stalwart_admin_password, f"{NS}:stalwartAdminPassword")


def validate_ssh_public_key(value: str | None, key: str) -> None:
    if not value or not value.startswith(("ssh-", "ecdsa-")):
        raise ConfigError(key, "an OpenSSH public key is required")


def validate_ssh_private_key(value: str | None, key: str) -> None:
    if not value or "PRIVATE KEY" not in value:
        raise ConfigError(key, "a PEM/OpenSSH private key is required")


def validate_admin_password(value: str | None, key: str) -> None:
    if not value or len(value) < 12:
        raise ConfigError(key, "is required (at least 12 characters)")


def validate_provider_credentials(
    providers: Collection[str], hetzner_token: str | None, hostwinds_api_key: str | None
) -> None:
    """The API credential of each provider that servers are ordered from."""
    if "hetzner" in providers and not hetzner_token:
        raise ConfigError(f"{NS}:hetznerToken", "is required for Hetzner servers")
    if "hostwinds" in providers and not hostwinds_api_key:
        raise ConfigError(f"{NS}:hostwindsApiKey", "is required for Hostwinds servers")


# Mail domains


def validate_domains(domains: Sequence[DomainSpec]) -> set[str]:
    """Each domain in turn, against the ones before it; returns their names."""
    names: set[str] = set()
    for i, d in enumerate(domains):
        validate_domain(d, f"{NS}:domains[{i}]", names)
        names.add(d.name)
    return names


def validate_domain(domain: DomainSpec, key: str, taken: Collection[str] = ()) -> None:
    """One domain; `key` is its prefix (`penguinmails:domains[0]`), `taken` the other domains.
    Its private key is named by domain (`penguinmails:dkimPrivateKeys["example.com"]`)."""
    validate_domain_name(domain.name, f"{key}.name")
    validate_unused(domain.name, taken, f"{key}.name", "is listed twice")
    validate_dkim_selector(domain.dkim_selector, f"{key}.dkimSelector")
    validate_dkim_algorithm(domain.dkim_algorithm, f"{key}.dkimAlgorithm")
    validate_dkim_public_key(domain.dkim_public_key, f"{key}.dkimPublicKey")
    validate_dkim_private_key(domain.dkim_private_key, f'{NS}:dkimPrivateKeys["{domain.name}"]')


def validate_domain_name(value: str, key: str) -> None:
    if not _HOST.match(value):
        raise ConfigError(key, f"{value!r} is not a domain name")


def validate_dkim_selector(value: str, key: str) -> None:
    if not _LABEL.match(value):
        raise ConfigError(key, "must be a DNS label")


def validate_dkim_algorithm(value: str, key: str) -> None:
    if value not in ("rsa", "ed25519"):
        raise ConfigError(key, "must be rsa or ed25519")


def validate_dkim_public_key(value: str, key: str) -> None:
    if not _BASE64.match(value):
        raise ConfigError(key, "must be the base64 public key (p= value)")


def validate_dkim_private_key(value: str, key: str) -> None:
    if "PRIVATE KEY" not in value:
        raise ConfigError(key, "must be a PEM private key")


# Mailboxes


def validate_mailboxes(
    mailboxes: Sequence[MailboxSpec], domains: Collection[str], servers: Collection[str]
) -> None:
    """Each mailbox in turn, against the ones before it and the fleet's domain and server
    names."""
    addresses: set[str] = set()
    for i, m in enumerate(mailboxes):
        validate_mailbox(m, f"{NS}:mailboxes[{i}]", domains, servers, addresses)
        addresses.add(m.address)


def validate_mailbox(
    mailbox: MailboxSpec,
    key: str,
    domains: Collection[str],
    servers: Collection[str],
    taken: Collection[str] = (),
) -> None:
    """One mailbox; `key` is its prefix (`penguinmails:mailboxes[0]`), `taken` the other
    addresses. Its password is named by address (`penguinmails:mailboxPasswords["a@b.c"]`)."""
    validate_mailbox_address(mailbox.address, f"{key}.address")
    validate_unused(mailbox.address, taken, f"{key}.address", "is listed twice")
    validate_mailbox_domain(mailbox.domain, domains, f"{key}.address")
    validate_mailbox_server(mailbox.server, servers, f"{key}.server")
    validate_quota_mb(mailbox.quota_mb, f"{key}.quotaMb")
    if mailbox.daily_limit is not None:
        validate_daily_limit(mailbox.daily_limit, f"{key}.dailyLimit")
    validate_mailbox_password(mailbox.password, f'{NS}:mailboxPasswords["{mailbox.address}"]')


def validate_mailbox_address(value: str, key: str) -> None:
    if not _is_email(value):
        raise ConfigError(key, f"{value!r} is not an email address")


def validate_quota_mb(value: int, key: str) -> None:
    if not 1 <= value <= 10_000_000:
        raise ConfigError(key, "must be between 1 and 10000000")


def validate_daily_limit(value: int, key: str) -> None:
    # Stalwart v0.16's registry bounds Rate.count to 1..1000000; v0.12-v0.15 take the same.
    if isinstance(value, bool) or not 1 <= value <= 1_000_000:
        raise ConfigError(key, "must be between 1 and 1000000")


def _opt_daily_limit(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ConfigError(key, "must be a whole number of messages a day")
    return int(value)


def validate_mailbox_password(value: str, key: str) -> None:
    if len(value) < 8:
        raise ConfigError(key, "at least 8 characters")


# Cross-references


def validate_unused(value: str, taken: Collection[str], key: str, reason: str) -> None:
    """`value` is not one of `taken`; the message is `'<value>' <reason>`."""
    if value in taken:
        raise ConfigError(key, f"{value!r} {reason}")


def validate_mailbox_domain(domain: str, domains: Collection[str], key: str) -> None:
    if domain not in domains:
        raise ConfigError(key, f"domain {domain!r} is not in {NS}:domains")


def validate_mailbox_server(server: str, servers: Collection[str], key: str) -> None:
    if server not in servers:
        raise ConfigError(key, f"no server named {server!r} in {NS}:servers")


def _is_email(value: str) -> bool:
    local, sep, domain = value.partition("@")
    return bool(sep) and bool(_LOCAL.match(local)) and bool(_HOST.match(domain))


def validate_pin_changes(config: FleetConfig, previous: Mapping[str, Any] | None) -> None:
    """Refuse moving an installed server across the 0.15/0.16 line. `previous` is the stack's
    last `servers` output ({name: {"stalwart_version": ...}}), which the engines read before a
    run: the program itself only sees the new config."""
    for i, server in enumerate(config.servers):
        before = (previous or {}).get(server.name)
        old = before.get("stalwart_version") if isinstance(before, Mapping) else None
        problem = pin_change_problem(
            old if isinstance(old, str) else None, config.version_of(server)
        )
        if problem is not None:
            key = f"{NS}:servers[{i}].stalwartVersion"
            if server.stalwart_version is None:
                key = f"{NS}:stalwartVersion"
            raise ConfigError(key, f"server {server.name}: {problem}")
