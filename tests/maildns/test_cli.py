"""`penguinmails dns check-spf` and `dns check` as an operator runs them: a subprocess with no
database reachable, pointed at nsd."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from maildns import plan
from tests.support.environment import child_env
from tests.support.nsd import Nsd
from tests.support.zones import Domain, good_domain, rsa_public_key

ROOT = Path(__file__).resolve().parents[2]


def penguinmails(
    nsd: Nsd, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = child_env(
        dns_nameservers=nsd.nameservers,
        # Unreachable on purpose: these commands must not need a database.
        database_url="postgresql+psycopg://nobody@127.0.0.1:9/none",
    )
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "dns", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def domain(nsd: Nsd) -> Domain:
    d = good_domain(rsa_public_key(), label="cli")
    d.lines[plan.SPF] = [
        f'@ IN TXT "v=spf1 ip4:{d.ip} include:_spf.{d.name} -all exp=why.{d.name}"',
        '_spf IN TXT "v=spf1 ip4:203.0.113.0/24 ~all"',
        'why IN TXT "%{i} may not send for %{d}"',
    ]
    d.publish(nsd)
    return d


def test_check_spf_prints_the_result(nsd: Nsd, domain: Domain) -> None:
    done = penguinmails(nsd, "check-spf", "--ip", domain.ip, "--domain", domain.name)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "pass"
    done = penguinmails(
        nsd, "check-spf", "--ip", "192.0.2.1", "--domain", domain.name, "--sender",
        f"bob@{domain.name}", "--helo", "mx.example.org", "--json",
    )  # fmt: skip
    result = json.loads(done.stdout)
    assert result["result"] == "fail"
    assert result["explanation"] == f"192.0.2.1 may not send for {domain.name}"


def test_check_spf_batch_keeps_the_input_order(nsd: Nsd, domain: Domain) -> None:
    lines = [
        {"ip": domain.ip, "domain": domain.name, "sender": f"a@{domain.name}", "helo": "h"},
        {"ip": "203.0.113.9", "domain": domain.name, "sender": "", "helo": "h"},
        {"ip": "192.0.2.1", "domain": domain.name},
        {"ip": "not-an-ip", "domain": domain.name},
        {"ip": "192.0.2.1", "sender": f"x@{domain.name}"},
    ] * 50
    done = penguinmails(
        nsd, "check-spf", "--batch", stdin="\n".join(json.dumps(x) for x in lines) + "\n"
    )
    assert done.returncode == 0, done.stderr
    results = [json.loads(line)["result"] for line in done.stdout.splitlines()]
    assert results == ["pass", "pass", "fail", "error", "fail"] * 50


def test_check_domain(nsd: Nsd, domain: Domain) -> None:
    done = penguinmails(
        nsd, "check", domain.name, "--ip", domain.ip, "--dkim-selector", "pm1",
        "--dkim-key", domain.key, "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["hostname"] == domain.hostname
    assert {c["check"]: c["status"] for c in report["checks"]} == dict.fromkeys(
        ["MX", "SPF", "DMARC", "PTR", "DKIM", "MTA-STS", "TLS-RPT"], "verified"
    )
    other = penguinmails(nsd, "check", domain.name, "--ip", "192.0.2.1")
    assert other.returncode == 1
    assert "SPF      mismatch" in other.stdout and "some required checks fail" in other.stdout
