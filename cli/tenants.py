"""tenant create, apikey create|revoke."""

import argparse
import json
import uuid
from typing import Any

from cli.service import prepare
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
    try:
        tenant_id = uuid.UUID(args.tenant)
    except ValueError as exc:
        raise ValidationFailed(f"--tenant must be a tenant id (UUID), got {args.tenant!r}") from exc
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


def register(sub: Any) -> None:
    tenant = sub.add_parser("tenant", help="manage tenants")
    tsub = tenant.add_subparsers(dest="tenant_command", metavar="ACTION", required=True)
    p = tsub.add_parser("create", help="create a tenant and print its id and a first API key")
    p.add_argument("name", help="the tenant's name (1 to 255 characters)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=_tenant_create)

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
