"""The install and management scripts themselves, run under bash against a scratch root with stub
binaries (tests/support/stubs: stalwart, systemctl, curl, ...) and a loopback fake of Stalwart's
management listener (tests/support/stalwart.py), for both generations: v0.16+ over JMAP and
v0.12-v0.15 over REST."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stacks import scripts
from stacks.stalwart import outbound_throttle
from tests.support.stack_fleet import ADMIN_PASSWORD, DKIM_PRIVATE, mailbox
from tests.support.stalwart import FakeStalwart
from tests.support.stalwart_metrics import basic

STUBS = Path(__file__).resolve().parents[1] / "support" / "stubs"
HOST = "mx1.mail.example.net"
NEW = "v0.16.18"
OLD = "v0.15.5"


class Server:
    """One scratch root, its fake Stalwart, and a way to run the rendered commands."""

    def __init__(self, root: Path, fake: FakeStalwart) -> None:
        self.root = root
        self.fake = fake

    def run(self, command: str, secrets: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{STUBS}:{os.environ['PATH']}",
            "PM_ROOT": str(self.root),
            "PM_STALWART_URL": self.fake.url,
            "HOME": str(self.root),
        }
        return subprocess.run(
            ["bash", "-c", command],
            input=json.dumps(secrets),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def install(self, version: str, password: str = ADMIN_PASSWORD, firewall: str = "") -> Any:
        command = scripts.install(version, HOST, "ops@example.com", firewall)
        return self.run(command, {"admin_password": password})

    def manage(
        self, version: str, action: str, args: dict[str, object], **secrets: str
    ) -> subprocess.CompletedProcess[str]:
        secrets.setdefault("admin_password", ADMIN_PASSWORD)
        return self.run(scripts.manage(action, args, version, HOST), secrets)

    def log(self) -> str:
        path = self.root / "commands.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Server]:
    with FakeStalwart(tmp_path) as fake:
        yield Server(tmp_path, fake)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def no_secret(result: subprocess.CompletedProcess[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.stdout and secret not in result.stderr


# v0.16 ----------------------------------------------------------------------------------


def test_v016_install_uses_the_016_layout_and_sets_the_admin_without_a_wizard(box: Server) -> None:
    result = box.install(NEW)
    ok(result)
    no_secret(result, ADMIN_PASSWORD)
    root = box.root
    assert (root / "usr/local/bin/stalwart").exists()
    assert json.loads((root / "etc/stalwart/config.json").read_text()) == {
        "@type": "RocksDb",
        "path": "/var/lib/stalwart/",
    }
    assert (root / "var/lib/stalwart").is_dir() and (root / "var/log/stalwart").is_dir()
    unit = (root / "etc/systemd/system/stalwart.service").read_text()
    assert "EnvironmentFile=-/etc/stalwart/stalwart.env" in unit
    assert "ExecStart=/usr/local/bin/stalwart --config=/etc/stalwart/config.json" in unit
    # The recovery admin set the admin, then was removed: never left set.
    env = (root / "etc/stalwart/stalwart.env").read_text()
    assert "RECOVERY" not in env and ADMIN_PASSWORD not in env
    assert oct((root / "etc/stalwart/stalwart.env").stat().st_mode & 0o777) == "0o640"
    # Recovery admin, normal start, then a restart for the listener bound to loopback.
    assert box.fake.restarts[-3:] == ["recovery", "normal", "normal"]
    assert box.fake.recovery_admin is None
    assert box.fake.login(f"admin@{HOST}", ADMIN_PASSWORD)
    binds = {o["name"]: o["bind"] for o in box.fake.objects["NetworkListener"].values()}
    assert binds["http"] == {"127.0.0.1:8080": True}  # the plain-HTTP admin: loopback only
    assert binds["https"] == {"[::]:443": True} and binds["smtp"] == {"[::]:25": True}
    assert box.fake.settings["defaultHostname"] == HOST
    (acme,) = box.fake.objects["AcmeProvider"].values()
    assert acme["challengeType"] == "TlsAlpn01" and acme["contact"] == {"ops@example.com": True}
    (own,) = box.fake.find("Domain", name=HOST)
    assert own["certificateManagement"] == {
        "@type": "Automatic",
        "acmeProviderId": acme["id"],
        "subjectAlternativeNames": {},
    }
    assert f"curl https://github.com/stalwartlabs/stalwart/releases/download/{NEW}/" in box.log()


def test_v016_rerun_is_idempotent_and_a_new_admin_password_is_rotated(box: Server) -> None:
    ok(box.install(NEW))
    restarts = len(box.fake.restarts)
    ok(box.install(NEW))
    assert box.fake.restarts[restarts:] == ["normal"]  # `systemctl start`, no recovery
    assert len(box.fake.objects["AcmeProvider"]) == 1
    rotated = "rotated-Admin-Pa55word-42"
    result = box.install(NEW, password=rotated)
    ok(result)
    no_secret(result, rotated, ADMIN_PASSWORD)
    assert box.fake.login(f"admin@{HOST}", rotated)
    assert not box.fake.login(f"admin@{HOST}", ADMIN_PASSWORD)
    assert "RECOVERY" not in (box.root / "etc/stalwart/stalwart.env").read_text()


def test_v016_adopts_a_server_whose_admin_is_unknown(box: Server) -> None:
    ok(box.install(NEW, password="someone-elses-Pa55word"))
    ok(box.install(NEW))
    assert box.fake.login(f"admin@{HOST}", ADMIN_PASSWORD)


def test_v016_recovery_admin_is_removed_even_when_setting_the_admin_fails(box: Server) -> None:
    result = box.install(NEW, password="short")  # the server refuses passwords under 8
    assert result.returncode != 0
    assert "validationFailed" in result.stderr and "notCreated" in result.stderr
    assert "RECOVERY" not in (box.root / "etc/stalwart/stalwart.env").read_text()
    assert box.fake.restarts[-1] == "normal" and box.fake.recovery_admin is None


def test_v016_domain_with_our_dkim_key_one_signature_per_domain(box: Server) -> None:
    ok(box.install(NEW))
    args = {"domain": "example.com", "selector": "pm1", "algorithm": "rsa"}
    result = box.manage(NEW, "domain", args, dkim_private_key=DKIM_PRIVATE)
    ok(result)
    no_secret(result, DKIM_PRIVATE.splitlines()[1])
    (dom,) = box.fake.find("Domain", name="example.com")
    (sig,) = box.fake.find("DkimSignature", domainId=dom["id"])
    assert sig["@type"] == "Dkim1RsaSha256" and sig["selector"] == "pm1"
    assert sig["privateKey"] == {"@type": "Text", "secret": DKIM_PRIVATE}
    # example.com.au next to example.com: each keeps its own signature.
    au = {"domain": "example.com.au", "selector": "pm1", "algorithm": "rsa"}
    ok(box.manage(NEW, "domain", au, dkim_private_key=DKIM_PRIVATE))
    ok(box.manage(NEW, "domain", {**args, "algorithm": "ed25519"}, dkim_private_key=DKIM_PRIVATE))
    (sig,) = box.fake.find("DkimSignature", domainId=dom["id"])
    assert sig["@type"] == "Dkim1Ed25519Sha256"  # the old algorithm's signature is gone
    assert len(box.fake.objects["DkimSignature"]) == 2
    ok(box.manage(NEW, "delete-domain", args))
    assert not box.fake.find("Domain", name="example.com")
    assert box.fake.find("Domain", name="example.com.au")


def test_v016_accounts_create_update_rotate_destroy(box: Server) -> None:
    ok(box.install(NEW))
    domain = {"domain": "example.com", "selector": "pm1", "algorithm": "rsa"}
    ok(box.manage(NEW, "domain", domain, dkim_private_key=DKIM_PRIVATE))
    args = {"address": "sales@example.com", "display_name": "Sales", "quota_mb": 512}
    result = box.manage(NEW, "account", args, password="first-Pa55word")
    ok(result)
    no_secret(result, "first-Pa55word")
    (account,) = box.fake.find("Account", name="sales")
    assert account["quotas"] == {"maxDiskQuota": 512 * 1024 * 1024}
    assert account["roles"] == {"@type": "User"} and account["description"] == "Sales"
    assert box.fake.user_login("sales@example.com", "first-Pa55word")
    ok(box.manage(NEW, "account", {**args, "quota_mb": 1024}, password="second-Pa55word"))
    (account,) = box.fake.find("Account", name="sales")
    assert account["quotas"] == {"maxDiskQuota": 1024 * 1024 * 1024}
    assert len(account["credentials"]) == 1
    assert box.fake.user_login("sales@example.com", "second-Pa55word")
    assert not box.fake.user_login("sales@example.com", "first-Pa55word")
    # An HTTP 200 error inside notDestroyed is an error: the domain still has an account.
    refused = box.manage(NEW, "delete-domain", domain)
    assert refused.returncode != 0 and "objectIsLinked" in refused.stderr
    ok(box.manage(NEW, "delete-account", {"address": "sales@example.com"}))
    assert not box.fake.find("Account", name="sales")
    ok(box.manage(NEW, "delete-account", {"address": "sales@example.com"}))  # already gone
    ok(box.manage(NEW, "delete-domain", domain))


def test_v016_errors_inside_http_200_fail_the_command(box: Server) -> None:
    ok(box.install(NEW))
    missing = box.manage(NEW, "account", {"address": "a@nowhere.example", "quota_mb": 1},
                         password="x-Pa55word-long")  # fmt: skip
    assert missing.returncode != 0 and "domain nowhere.example does not exist" in missing.stderr
    ok(box.manage(NEW, "domain", {"domain": "example.com", "selector": "pm1", "algorithm": "rsa"},
                  dkim_private_key=DKIM_PRIVATE))  # fmt: skip
    weak = box.manage(NEW, "account", {"address": "b@example.com", "quota_mb": 1}, password="short")
    assert (
        weak.returncode != 0 and "notCreated" in weak.stderr and "validationFailed" in weak.stderr
    )
    org = {"domain": "example.org", "selector": "pm1", "algorithm": "rsa"}
    bad_key = box.manage(NEW, "domain", org, dkim_private_key="not a key")
    assert bad_key.returncode != 0 and "privateKey" in bad_key.stderr
    wrong = box.manage(NEW, "account", {"address": "c@example.com", "quota_mb": 1},
                       password="x-Pa55word-long", admin_password="wrong-password")  # fmt: skip
    assert wrong.returncode == 3 and "http 401" in wrong.stderr


def test_v016_pin_on_a_015_server_is_refused_with_the_reason(box: Server) -> None:
    ok(box.install(OLD))
    result = box.install(NEW)
    assert result.returncode == 3
    assert "0.16 needs an offline migration (UPGRADING/v0_16.md)" in result.stderr
    assert not (box.root / "usr/local/bin/stalwart").exists()


def test_v016_firewall_is_loaded_when_given(box: Server) -> None:
    rules = scripts.nftables((25, 443, 465, 587, 993), 2222)
    ok(box.install(NEW, firewall=rules))
    saved = (box.root / "etc/nftables.d/penguinmails.nft").read_text()
    assert "tcp dport { 25, 443, 465, 587, 993, 2222 } accept" in saved
    assert "policy drop" in saved and "8080" not in saved
    assert "iif lo accept" in saved
    assert f"nft -f {box.root}/etc/nftables.d/penguinmails.nft" in box.log()
    assert (
        'include "/etc/nftables.d/penguinmails.nft"' in (box.root / "etc/nftables.conf").read_text()
    )


@pytest.mark.parametrize(("version", "user"), [(NEW, f"admin@{HOST}"), (OLD, "admin")])
def test_configure_turns_on_prometheus_for_the_admin_only(
    box: Server, version: str, user: str
) -> None:
    assert box.fake.answer(None)[0] == 404  # off on a fresh server
    result = box.install(version)
    ok(result)
    no_secret(result, ADMIN_PASSWORD)
    box.fake.delivery_counters = {"delivery.delivered": 3}
    status, text = box.fake.answer(basic(user, ADMIN_PASSWORD))
    assert status == 200 and "delivery_delivered 3" in text
    assert box.fake.answer(None)[0] == box.fake.answer(basic(user, "wrong"))[0] == 401


def _throttle(version: str, limit: int) -> dict[str, Any]:
    args = outbound_throttle(version, mailbox("sales@example.com", daily_limit=limit))
    assert args is not None
    return args


def test_v016_throttle_is_created_replaced_applied_and_removed(box: Server) -> None:
    ok(box.install(NEW))
    reloads = box.fake.reloads
    ok(box.manage(NEW, "throttle", _throttle(NEW, 7)))
    (cap,) = box.fake.objects["MtaOutboundThrottle"].values()
    assert cap["key"] == {"sender": True} and cap["rate"] == {"count": 7, "period": 86_400_000}
    assert cap["match"] == {"else": 'sender == "sales@example.com"'}
    assert box.fake.applied_throttles == box.fake.objects["MtaOutboundThrottle"]  # reloaded
    ok(box.manage(NEW, "throttle", _throttle(NEW, 9)))
    (cap,) = box.fake.objects["MtaOutboundThrottle"].values()  # replaced, not added
    assert cap["rate"]["count"] == 9 and box.fake.reloads == reloads + 2
    assert box.fake.applied_throttles == box.fake.objects["MtaOutboundThrottle"]
    ok(box.manage(NEW, "delete-throttle", _throttle(NEW, 9)))
    assert box.fake.objects["MtaOutboundThrottle"] == {} and box.fake.applied_throttles == {}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"rate": {"count": 7, "period": "1d"}}, "Duration"),  # a Duration is milliseconds
        ({"key": ["sender"]}, "Invalid value for object property"),  # a Map is {key: true}
        ({"key": {"from": True}}, "Invalid key"),
        ({"match": {"else": "from == 'a@example.com'"}}, "invalid variable"),
        ({"match": "sender == 'a@example.com'"}, "Invalid property"),
        ({"rate": {"count": 0, "period": 86_400_000}}, "count"),
        ({"description": ""}, "description"),
    ],
)
def test_v016_a_throttle_the_registry_refuses_fails_the_command(
    box: Server, change: dict[str, Any], reason: str
) -> None:
    ok(box.install(NEW))
    args = _throttle(NEW, 7)
    args["object"] = {**args["object"], **change}
    result = box.manage(NEW, "throttle", args)
    assert result.returncode != 0 and "notCreated" in result.stderr and reason in result.stderr
    assert box.fake.objects["MtaOutboundThrottle"] == {}


# v0.12-v0.15 ------------------------------------------------------------------------------


def test_v015_install_silences_init_and_binds_the_admin_listener_to_loopback(box: Server) -> None:
    result = box.install(OLD)
    ok(result)
    no_secret(result, ADMIN_PASSWORD)  # the stub --init prints it on stderr, as boot.rs does
    assert (box.root / "opt/stalwart/bin/stalwart").exists()
    assert box.fake.rest_settings["server.listener.http.bind"] == "127.0.0.1:8080"
    assert box.fake.rest_settings["server.hostname"] == HOST
    assert box.fake.rest_settings["acme.letsencrypt.challenge"] == "tls-alpn-01"
    assert box.fake.reloads >= 1
    assert "systemctl restart stalwart.service" in box.log()
    ok(box.install(OLD))


def test_v015_rotated_or_unknown_admin_password_is_replaced_in_config_toml(box: Server) -> None:
    ok(box.install(OLD, password="someone-elses-Pa55word"))
    assert box.fake.fallback_login("someone-elses-Pa55word")
    rotated = box.install(OLD)  # the configured password: 401, then replaced and restarted
    ok(rotated)
    no_secret(rotated, ADMIN_PASSWORD)
    assert box.fake.fallback_login(ADMIN_PASSWORD)
    assert not box.fake.fallback_login("someone-elses-Pa55word")
    config = (box.root / "opt/stalwart/etc/config.toml").read_text()
    assert ADMIN_PASSWORD not in config and "secret = '$6$" in config
    ok(box.manage(OLD, "domain", {"domain": "example.com", "selector": "pm1", "algorithm": "rsa"},
                  dkim_private_key=DKIM_PRIVATE))  # fmt: skip


def test_v015_domains_and_accounts(box: Server) -> None:
    ok(box.install(OLD))
    dom = {"domain": "example.com", "selector": "pm1", "algorithm": "rsa"}
    ok(box.manage(OLD, "domain", dom, dkim_private_key=DKIM_PRIVATE))
    ok(
        box.manage(
            OLD, "domain", {**dom, "domain": "example.com.au"}, dkim_private_key=DKIM_PRIVATE
        )
    )
    keys = box.fake.rest_settings
    assert keys["signature.pm-example.com-rsa.domain"] == "example.com"
    assert keys["signature.pm-example.com.au-rsa.domain"] == "example.com.au"
    ok(box.manage(OLD, "domain", {**dom, "algorithm": "ed25519"}, dkim_private_key=DKIM_PRIVATE))
    assert "signature.pm-example.com-rsa.domain" not in keys
    assert keys["signature.pm-example.com-ed25519.algorithm"] == "ed25519-sha256"
    args = {"address": "sales@example.com", "display_name": "Sales", "quota_mb": 512}
    ok(box.manage(OLD, "account", args, password="first-Pa55word"))
    ok(box.manage(OLD, "account", args, password="second-Pa55word"))
    assert box.fake.rest_principals["sales@example.com"]["secrets"] == ["second-Pa55word"]
    missing = box.manage(OLD, "account", {**args, "address": "x@nowhere.example"}, password="p" * 9)
    assert missing.returncode != 0 and "notFound" in missing.stderr
    ok(box.manage(OLD, "delete-account", {"address": "sales@example.com"}))
    ok(box.manage(OLD, "delete-domain", dom))
    assert "example.com" not in box.fake.rest_principals


def test_v015_throttle_is_written_reloaded_and_cleared(box: Server) -> None:
    ok(box.install(OLD))
    args = _throttle(OLD, 7)
    prefix = args["prefix"]
    reloads = box.fake.reloads
    ok(box.manage(OLD, "throttle", args))
    keys = box.fake.rest_settings
    assert keys[prefix + ".key"] == "sender" and keys[prefix + ".rate"] == "7/1d"
    assert keys[prefix + ".match"] == 'sender == "sales@example.com"'
    assert keys[prefix + ".enable"] == "true" and box.fake.reloads == reloads + 1
    ok(box.manage(OLD, "throttle", _throttle(OLD, 9)))
    assert keys[prefix + ".rate"] == "9/1d"
    ok(box.manage(OLD, "delete-throttle", args))
    assert not [k for k in keys if k.startswith(prefix)]


@pytest.mark.parametrize(
    ("key", "value"),
    [("rate", "7 per day"), ("rate", "0/1d"), ("key", "authenticated_as"), ("match", "from == 1")],
)
def test_v015_a_throttle_the_reload_refuses_fails_the_command(
    box: Server, key: str, value: str
) -> None:
    ok(box.install(OLD))
    args = _throttle(OLD, 7)
    args["values"] = [[k, value if k == key else v] for k, v in args["values"]]
    result = box.manage(OLD, "throttle", args)
    assert result.returncode != 0 and "reload failed" in result.stderr
    assert f"{args['prefix']}.{key}" in result.stderr


def test_v015_pin_on_a_016_server_is_refused(box: Server) -> None:
    ok(box.install(NEW))
    result = box.install(OLD)
    assert result.returncode == 3 and "0.15 cannot read" in result.stderr


# shellcheck -------------------------------------------------------------------------------


def _shell_sources(tmp_path: Path) -> list[Path]:
    files = []
    for name in ("INSTALL_REST", "INSTALL_JMAP"):
        path = tmp_path / f"{name}.sh"
        path.write_text("#!/usr/bin/env bash\n" + getattr(scripts, name))
        files.append(path)
    files += sorted(p for p in STUBS.iterdir() if p.is_file())
    return files


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck not installed (.ci/run installs it)"
)
def test_shellcheck_passes_on_every_script(tmp_path: Path) -> None:
    files = _shell_sources(tmp_path)
    # PM_* come from the `env` prefix scripts.install renders: SC2154 would flag each.
    result = subprocess.run(
        ["shellcheck", "-s", "bash", "-e", "SC2154", *map(str, files)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
