"""tenant create, apikey create|revoke."""

import argparse
import json
import uuid
from typing import Any

from cli.processes import prepare
from database.session import session_scope
from domain.tenants import service
from kit.errors import ValidationFailed


def _tenant_create(args: argparse.Namespace) -> int:
    prepare()
    with session_scope() as session:
        tenant = service.create_tenant(session, args.name)
        issued = service.issue_key(session, tenant)
        tenant_id = str(tenant.id)
    if args.json:
        print(json.dumps({"tenant_id": tenant_id, "api_key": issued.plaintext}))
    else:
        print(f"tenant_id: {tenant_id}")
        print(f"api_key:   {issued.plaintext}")
        print("The key is shown only now; store it safely.")
    return 0


def _apikey_create(args: argparse.Namespace) -> int:
    tenant_id = _tenant_id(args.tenant)
    prepare()
    with session_scope() as session:
        tenant = service.get_tenant(session, tenant_id)
        issued = service.issue_key(session, tenant, name=args.name)
        prefix = issued.api_key.prefix
    if args.json:
        print(
            json.dumps({"tenant_id": str(tenant_id), "api_key": issued.plaintext, "prefix": prefix})
        )
    else:
        print(f"api_key: {issued.plaintext}")
        print(f"prefix:  {prefix} (use it to revoke the key)")
    return 0


def _apikey_revoke(args: argparse.Namespace) -> int:
    prepare()
    with session_scope() as session:
        key = service.revoke_key(session, args.key)
        prefix = key.prefix
    print(f"revoked key {prefix}")
    return 0


def _tenant_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValidationFailed(f"--tenant must be a tenant id (UUID), got {value!r}") from exc


def _tenant_list(args: argparse.Namespace) -> int:
    prepare()
    with session_scope() as session:
        rows = [
            {
                "tenant_id": str(t.id),
                "name": t.name,
                "created_at": t.created_at.isoformat() if t.created_at else None,
            }
            for t in service.list_tenants(session)
        ]
    _print_rows(rows, args.json, ("tenant_id", "name", "created_at"))
    return 0


def _apikey_list(args: argparse.Namespace) -> int:
    tenant_id = _tenant_id(args.tenant)
    prepare()
    with session_scope() as session:
        service.get_tenant(session, tenant_id)
        rows = [
            {
                "prefix": k.prefix,
                "name": k.name,
                "created_at": k.created_at.isoformat() if k.created_at else None,
                "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                "revoked": k.revoked_at is not None,
            }
            for k in service.list_keys(session, tenant_id)
        ]
    _print_rows(rows, args.json, ("prefix", "name", "created_at", "last_used_at", "revoked"))
    return 0


def _print_rows(rows: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...]) -> None:
    if as_json:
        print(json.dumps(rows))
        return
    print("  ".join(columns))
    for row in rows:
        print("  ".join(str(row[c]) for c in columns))


def register(sub: Any) -> None:
    tenant = sub.add_parser("tenant", help="manage tenants")
    tsub = tenant.add_subparsers(dest="tenant_command", metavar="ACTION", required=True)
    p = tsub.add_parser("create", help="create a tenant and print its id and a first API key")
    p.add_argument("name", help="the tenant's name (1 to 255 characters)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=_tenant_create)
    p = tsub.add_parser("list", help="list tenants")
    p.add_argument("--json", action="store_true", help="print a JSON array on stdout")
    p.set_defaults(handler=_tenant_list)

    apikey = sub.add_parser("apikey", help="manage API keys")
    asub = apikey.add_subparsers(dest="apikey_command", metavar="ACTION", required=True)
    p = asub.add_parser("create", help="issue another API key for a tenant")
    p.add_argument("--tenant", required=True, help="tenant id")
    p.add_argument("--name", default="default", help="a label for the key")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=_apikey_create)
    p = asub.add_parser("revoke", help="revoke a key by its prefix or id")
    p.add_argument("key", help="the key's prefix (second part of the key) or id")
    p.set_defaults(handler=_apikey_revoke)
    p = asub.add_parser("list", help="list a tenant's keys (prefixes only; keys are never shown)")
    p.add_argument("--tenant", required=True, help="tenant id")
    p.add_argument("--json", action="store_true", help="print a JSON array on stdout")
    p.set_defaults(handler=_apikey_list)
