"""Issue 12 end to end, over HTTP against `penguinmails serve`: a sandbox workspace with a DNS
connection to a Knot on loopback (RFC 2136, TSIG) that is authoritative for the customer's zone
and for the reverse zone of the sandbox addresses. One inbox created, and with no other call the
inbox is `ready` within a minute: the stack publishes its records (merged into the customer's
SPF, beside their site verification), the fast path verifies them within seconds. Deleting it
takes our records out of the zone and leaves the customer's exactly as they were."""

import itertools
import os
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.knot import Knot
from tests.support.serving import create_tenant, serving

pytestmark = pytest.mark.slow
_n = itertools.count()
SITE = "google-site-verification=e2e-token"


def wait_for(what: str, check: "object", timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()  # type: ignore[operator]
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.5)


def test_inbox_reaches_ready_with_no_other_call_and_delete_restores_the_zone(
    database_url: str, committed: Engine, tmp_path: Path, knot: Knot
) -> None:
    zone = f"pub{next(_n)}-{os.getpid()}.example"
    # The customer's own SPF (its include answered by the same server: nothing here may ask the
    # machine's resolver), a site verification, and nothing else of ours.
    theirs = f"v=spf1 include:_spf.{zone} ~all"
    knot.add_zone(zone, f'@ TXT "{theirs}"\n@ TXT "{SITE}"\n_spf TXT "v=spf1 ip4:203.0.113.5 -all"')
    reverse = knot.add_zone("100.51.198.in-addr.arpa")
    assert reverse
    env = child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=str(tmp_path),
        dns_nameservers=knot.nameservers,
        dns_timeout_seconds="1",
        sandbox_ipv4_ranges="198.51.100.0/24",
        coalesce_seconds="0.2",
        dns_fast_poll_seconds="2",
        dns_publish_first_check_seconds="1",
    )
    with serving(env) as base:
        owner = create_tenant(env, "Acme")
        auth = {"Authorization": f"Bearer {owner['api_key']}"}
        api = f"{base}/api/v1"
        ws = httpx.post(
            f"{api}/workspaces", json={"name": "eu", "sandbox": True}, headers=auth
        ).json()["id"]
        connection = httpx.post(
            f"{api}/workspaces/{ws}/dns-connections",
            json={
                "name": "knot",
                "kind": "rfc2136",
                "server": knot.server,
                "tsig_key_name": knot.key_name,
                "tsig_secret": knot.secret,
            },
            headers=auth,
        )
        assert connection.status_code == 201, connection.text
        assert knot.secret not in connection.text
        default = httpx.patch(
            f"{api}/workspaces/{ws}",
            json={"dns_connection_id": connection.json()["id"]},
            headers=auth,
        )
        assert default.status_code == 200, default.text

        started = time.monotonic()
        created = httpx.post(
            f"{api}/workspaces/{ws}/inboxes",
            json={
                "email_address": f"sales@{zone}",
                "vps_provider": "hetzner",
                "vps_size": "starter",
            },
            headers=auth,
        )
        assert created.status_code == 202, created.text
        inbox = created.json()["id"]

        def ready() -> bool:
            got = httpx.get(f"{api}/inboxes/{inbox}", headers=auth).json()
            return bool(got.get("status") == "ready")

        try:
            wait_for("the inbox is ready", ready, timeout=60)
        except AssertionError:
            records = httpx.get(f"{api}/inboxes/{inbox}/dns-records", headers=auth).json()
            raise AssertionError(
                [(r["purpose"], r["status"], r["detail"], r["publish"]) for r in records["records"]]
            ) from None
        assert time.monotonic() - started < 60
        records = httpx.get(f"{api}/inboxes/{inbox}/dns-records", headers=auth).json()
        by_purpose = {r["purpose"]: r for r in records["records"]}
        assert by_purpose["spf"]["publish"]["status"] == "published"
        assert by_purpose["ptr"]["publish"]["status"] == "published"
        ip = by_purpose["a"]["value"]
        (spf,) = [v for v in knot.values(zone, "TXT") if v.startswith("v=spf1")]
        assert spf.startswith(f"v=spf1 include:_spf.{zone} ip4:{ip} ") and spf.endswith(" ~all")
        assert SITE in knot.values(zone, "TXT")
        domains = httpx.get(f"{api}/workspaces/{ws}/domains", headers=auth).json()
        assert domains[0]["zone"] == zone and domains[0]["verification"]["all_verified"]

        assert httpx.delete(f"{api}/inboxes/{inbox}", headers=auth).status_code == 202

        def gone() -> bool:
            return httpx.get(f"{api}/inboxes/{inbox}", headers=auth).status_code == 404

        wait_for("the inbox is deleted", gone, timeout=60)
        assert knot.values(zone, "TXT") == sorted([theirs, SITE])
        assert knot.values(zone, "MX") == []
        assert knot.values(f"_dmarc.{zone}", "TXT") == []
        assert knot.values(f"_spf.{zone}", "TXT") == ["v=spf1 ip4:203.0.113.5 -all"]
