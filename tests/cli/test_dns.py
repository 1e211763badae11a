"""`penguinmails dns check-spf` and `dns check`, run in-process (`cli.main.main(argv)`) against a
real nsd: exit status 0 pass, 1 any other result, 2 could not run; every answer names the
nameserver that gave it (or that failed to)."""

import json
import signal
from collections.abc import Iterator

import pytest

from cli.main import main
from tests.support.fixtures import OverrideSettings
from tests.support.nsd import Nsd, running_nsd, silent_nameserver

IP = "192.0.2.10"
ZONES = {
    "pass.clidns.test": f'@ IN TXT "v=spf1 ip4:{IP} -all"\n@ IN MX 10 mx\nmx IN A {IP}',
    "soft.clidns.test": '@ IN TXT "v=spf1 ~all"',
    "neutral.clidns.test": '@ IN TXT "v=spf1 ?all"',
    "none.clidns.test": "@ IN A 192.0.2.20",
    "broken.clidns.test": '@ IN TXT "v=spf1 frobnicate:x -all"',
}


@pytest.fixture(scope="module")
def nsd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nsd]:
    with running_nsd(tmp_path_factory.mktemp("nsd-cli")) as server:
        server.publish(ZONES)
        yield server


@pytest.fixture(autouse=True)
def quick_dns(override_settings: OverrideSettings) -> Iterator[None]:
    """A silent nameserver costs timeout x attempts; main() installs signal handlers."""
    override_settings(dns_timeout_seconds=0.3, dns_attempts=1)
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, handler in saved.items():
        signal.signal(s, handler)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["dns", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize(
    ("domain", "ip", "result", "status"),
    [
        ("pass.clidns.test", IP, "pass", 0),
        ("pass.clidns.test", "192.0.2.99", "fail", 1),
        ("soft.clidns.test", IP, "softfail", 1),
        ("neutral.clidns.test", IP, "neutral", 1),
        ("none.clidns.test", IP, "none", 1),
        ("broken.clidns.test", IP, "permerror", 1),
    ],
)
def test_check_spf_exit_status_follows_the_result(
    nsd: Nsd, capsys: pytest.CaptureFixture[str], domain: str, ip: str, result: str, status: int
) -> None:
    args = ("check-spf", "--ip", ip, "--domain", domain, "--nameservers", nsd.nameservers)
    code, out, _ = run(capsys, *args)
    assert (code, out.splitlines()[0]) == (status, result), out
    assert f"according to nameserver {nsd.nameservers}" in out
    code, out, _ = run(capsys, *args, "--json")
    report = json.loads(out)
    assert (code, report["result"]) == (status, result)
    assert report["nameservers"]["answered"] == [nsd.nameservers]


def test_check_spf_that_cannot_run_exits_2_naming_the_nameserver(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with silent_nameserver() as (host, port):
        code, out, _ = run(
            capsys, "check-spf", "--ip", IP, "--domain", "pass.clidns.test",
            "--nameservers", f"{host}:{port}",
        )  # fmt: skip
    assert code == 2 and out.splitlines()[0] == "temperror", out
    assert f"no nameserver answered ({host}:{port}: no answer within 0.3s)" in out


def test_check_spf_bad_input_exits_2(nsd: Nsd, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "check-spf", "--ip", "not-an-ip", "--domain", "pass.clidns.test",
        "--nameservers", nsd.nameservers,
    )  # fmt: skip
    assert code == 2 and "not an IP address" in err


def test_check_spf_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dns", "check-spf", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 pass; 1 any other result" in text
    assert "2 the check could not run" in text


def test_dns_check_names_the_nameserver_that_said_does_not_exist(
    nsd: Nsd, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("check", "pass.clidns.test", "--ip", IP, "--hostname", "mx.pass.clidns.test")
    code, out, _ = run(capsys, *args, "--nameservers", nsd.nameservers)
    assert code == 1, out
    assert f"asking nameserver {nsd.nameservers}" in out.splitlines()[0]
    dmarc = next(line for line in out.splitlines() if line.strip().startswith("DMARC"))
    assert "does not exist" in dmarc and f"[according to nameserver {nsd.nameservers}]" in dmarc
    code, out, _ = run(capsys, *args, "--nameservers", nsd.nameservers, "--json")
    assert code == 1 and json.loads(out)["nameservers"] == {
        "asked": [nsd.nameservers],
        "answered": [nsd.nameservers],
        "failed": {},
    }


def test_dns_check_with_no_nameserver_answering_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with silent_nameserver() as (host, port):
        code, out, _ = run(
            capsys, "check", "pass.clidns.test", "--ip", IP, "--nameservers", f"{host}:{port}"
        )
    assert code == 2, out
    assert f"the checks could not run: no nameserver answered ({host}:{port}" in out
