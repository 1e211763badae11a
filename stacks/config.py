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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stacks.catalog import DEFAULT as DEFAULT_CATALOG
from stacks.catalog import Catalog, CatalogError

NS = "penguinmails"
DEFAULT_STALWART_VERSION = "v0.15.5"
# The management scripts speak the REST API under /api, which v0.16 replaced with JMAP.
_VERSION = re.compile(r"^v0\.1[2-5]\.\d{1,3}$")
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}$")
_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/=\s]+$")

# Plain keys and secret keys, in the order they are rendered.
PLAIN_KEYS = (
    "workspaceId",
    "tenantId",
    "stalwartVersion",
    "acmeEmail",
    "sshPublicKey",
    "servers",
    "domains",
    "mailboxes",
    "catalog",
)
SECRET_KEYS = (
    "stalwartAdminPassword",
    "sshPrivateKey",
    "dkimPrivateKeys",
    "mailboxPasswords",
    "hetznerToken",
    "hostwindsApiKey",
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

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


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
    stalwart_admin_password: str | None = field(default=None, repr=False)
    ssh_public_key: str | None = None
    ssh_private_key: str | None = field(default=None, repr=False)
    hetzner_token: str | None = field(default=None, repr=False)
    hostwinds_api_key: str | None = field(default=None, repr=False)
    acme_email: str | None = None
    catalog_overrides: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def catalog(self) -> Catalog:
        return DEFAULT_CATALOG.with_overrides(dict(self.catalog_overrides or {}))

    def server(self, name: str) -> ServerSpec:
        return next(s for s in self.servers if s.name == name)

    # Rendering -----------------------------------------------------------------------------

    def to_stack_config(self) -> dict[str, StackConfigValue]:
        """`penguinmails:<key>` -> value (objects as JSON text), secrets flagged. Keys whose value
        is unset are left out, so a run can remove them from the stack."""
        plain: dict[str, Any] = {
            "workspaceId": self.workspace_id,
            "tenantId": self.tenant_id,
            "stalwartVersion": self.stalwart_version,
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
                }
                for m in self.mailboxes
            ],
            "catalog": dict(self.catalog_overrides) if self.catalog_overrides else None,
        }
        secret: dict[str, Any] = {
            "stalwartAdminPassword": self.stalwart_admin_password,
            "sshPrivateKey": self.ssh_private_key,
            "dkimPrivateKeys": {d.name: d.dkim_private_key for d in self.domains},
            "mailboxPasswords": {m.address: m.password for m in self.mailboxes},
            "hetznerToken": self.hetzner_token,
            "hostwindsApiKey": self.hostwinds_api_key,
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
            if not _HOST.match(name):
                raise ConfigError(f"{key}.name", f"{name!r} is not a domain name")
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
            obj = _obj(item, key, {"address", "displayName", "server", "quotaMb"})
            address = _req_str(obj.get("address"), f"{key}.address").lower()
            if not _is_email(address):
                raise ConfigError(f"{key}.address", f"{address!r} is not an email address")
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
                )
            )
        catalog = get("catalog")
        if catalog is not None and not isinstance(catalog, dict):
            raise ConfigError(f"{NS}:catalog", "must be an object of overrides")
        return cls(
            workspace_id=workspace_id,
            tenant_id=tenant_id,
            servers=servers,
            domains=tuple(domains),
            mailboxes=tuple(mailboxes),
            stalwart_version=_opt_str(get("stalwartVersion"), f"{NS}:stalwartVersion")
            or DEFAULT_STALWART_VERSION,
            stalwart_admin_password=_opt_str(
                get("stalwartAdminPassword"), f"{NS}:stalwartAdminPassword"
            ),
            ssh_public_key=_opt_str(get("sshPublicKey"), f"{NS}:sshPublicKey"),
            ssh_private_key=_opt_str(get("sshPrivateKey"), f"{NS}:sshPrivateKey"),
            hetzner_token=_opt_str(get("hetznerToken"), f"{NS}:hetznerToken"),
            hostwinds_api_key=_opt_str(get("hostwindsApiKey"), f"{NS}:hostwindsApiKey"),
            acme_email=_opt_str(get("acmeEmail"), f"{NS}:acmeEmail"),
            catalog_overrides=catalog,
        )

    @classmethod
    def from_pulumi(cls) -> FleetConfig:
        """Inside a Pulumi program (real or mocked): read this stack's `penguinmails:*` config."""
        from pulumi.runtime import get_config

        return cls.from_stack_config(
            {f"{NS}:{k}": get_config(f"{NS}:{k}") for k in (*PLAIN_KEYS, *SECRET_KEYS)}
        )


_OBJECT_KEYS = {"servers", "domains", "mailboxes", "catalog", "dkimPrivateKeys", "mailboxPasswords"}


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
    return out


def _parse_server(item: Any, key: str) -> ServerSpec:
    allowed = {"name", "provider", "size", "region", "hostname", "ip", "sshUser", "sshPort"}
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


def _validate(c: FleetConfig) -> None:
    if not c.workspace_id:
        raise ConfigError(f"{NS}:workspaceId", "is required")
    if not c.tenant_id:
        raise ConfigError(f"{NS}:tenantId", "is required")
    if not _VERSION.match(c.stalwart_version):
        raise ConfigError(
            f"{NS}:stalwartVersion",
            f"{c.stalwart_version!r} is not a supported pin: use a release tag v0.12.x..v0.15.x "
            "(v0.16 replaced the REST management API these scripts use)",
        )
    if c.acme_email is not None and not _is_email(c.acme_email):
        raise ConfigError(f"{NS}:acmeEmail", "is not an email address")
    try:
        catalog = c.catalog
    except (TypeError, AttributeError) as exc:
        raise ConfigError(f"{NS}:catalog", f"cannot be merged: {exc}") from None
    names: set[str] = set()
    hostnames: set[str] = set()
    for i, s in enumerate(c.servers):
        key = f"{NS}:servers[{i}]"
        if not _LABEL.match(s.name):
            raise ConfigError(f"{key}.name", "must be a DNS label: a-z, 0-9 and '-', 1-63 long")
        if s.name in names:
            raise ConfigError(f"{key}.name", f"{s.name!r} is used by another server")
        names.add(s.name)
        try:
            catalog.validate(s.provider, s.size, s.region)
        except CatalogError as exc:
            raise ConfigError(f"{key}.{exc.key}", str(exc)) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{NS}:catalog", f"override is malformed: {exc}") from None
        if not _HOST.match(s.hostname):
            raise ConfigError(f"{key}.hostname", f"{s.hostname!r} is not a fully qualified name")
        if s.hostname in hostnames:
            raise ConfigError(f"{key}.hostname", f"{s.hostname!r} is used by another server")
        hostnames.add(s.hostname)
        if s.provider == "existing":
            try:
                ipaddress.ip_address(s.ip or "")
            except ValueError:
                raise ConfigError(f"{key}.ip", "an existing server needs its IP address") from None
            if not re.match(r"^[a-z_][a-z0-9_-]{0,31}$", s.ssh_user):
                raise ConfigError(f"{key}.sshUser", "is not a valid user name")
        elif s.ip is not None:
            raise ConfigError(
                f"{key}.ip", f"only existing servers take an ip ({s.provider} assigns one)"
            )
        if not 1 <= s.ssh_port <= 65535:
            raise ConfigError(f"{key}.sshPort", "must be between 1 and 65535")
    if c.servers:
        if not c.ssh_public_key or not c.ssh_public_key.startswith(("ssh-", "ecdsa-")):
            raise ConfigError(f"{NS}:sshPublicKey", "an OpenSSH public key is required")
        if not c.ssh_private_key or "PRIVATE KEY" not in c.ssh_private_key:
            raise ConfigError(f"{NS}:sshPrivateKey", "a PEM/OpenSSH private key is required")
        if not c.stalwart_admin_password or len(c.stalwart_admin_password) < 12:
            raise ConfigError(f"{NS}:stalwartAdminPassword", "is required (at least 12 characters)")
    providers = {s.provider for s in c.servers}
    if "hetzner" in providers and not c.hetzner_token:
        raise ConfigError(f"{NS}:hetznerToken", "is required for Hetzner servers")
    if "hostwinds" in providers and not c.hostwinds_api_key:
        raise ConfigError(f"{NS}:hostwindsApiKey", "is required for Hostwinds servers")
    domains: set[str] = set()
    for i, d in enumerate(c.domains):
        key = f"{NS}:domains[{i}]"
        if not _HOST.match(d.name):
            raise ConfigError(f"{key}.name", f"{d.name!r} is not a domain name")
        if d.name in domains:
            raise ConfigError(f"{key}.name", f"{d.name!r} is listed twice")
        domains.add(d.name)
        if not _LABEL.match(d.dkim_selector):
            raise ConfigError(f"{key}.dkimSelector", "must be a DNS label")
        if d.dkim_algorithm not in ("rsa", "ed25519"):
            raise ConfigError(f"{key}.dkimAlgorithm", "must be rsa or ed25519")
        if not _BASE64.match(d.dkim_public_key):
            raise ConfigError(f"{key}.dkimPublicKey", "must be the base64 public key (p= value)")
        if "PRIVATE KEY" not in d.dkim_private_key:
            raise ConfigError(f'{NS}:dkimPrivateKeys["{d.name}"]', "must be a PEM private key")
    addresses: set[str] = set()
    for i, m in enumerate(c.mailboxes):
        key = f"{NS}:mailboxes[{i}]"
        if not _is_email(m.address):
            raise ConfigError(f"{key}.address", f"{m.address!r} is not an email address")
        if m.address in addresses:
            raise ConfigError(f"{key}.address", f"{m.address!r} is listed twice")
        addresses.add(m.address)
        if m.domain not in domains:
            raise ConfigError(f"{key}.address", f"domain {m.domain!r} is not in {NS}:domains")
        if m.server not in names:
            raise ConfigError(f"{key}.server", f"no server named {m.server!r} in {NS}:servers")
        if not 1 <= m.quota_mb <= 10_000_000:
            raise ConfigError(f"{key}.quotaMb", "must be between 1 and 10000000")
        if len(m.password) < 8:
            raise ConfigError(f'{NS}:mailboxPasswords["{m.address}"]', "at least 8 characters")


def _is_email(value: str) -> bool:
    local, sep, domain = value.partition("@")
    return bool(sep) and bool(_LOCAL.match(local)) and bool(_HOST.match(domain))
