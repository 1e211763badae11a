"""Whether a live workspace can run, before anything is queued: the Pulumi CLI found and its
version, the provider plugins installed, the provider credentials present (named by their
setting, never shown), and the state backend reachable. The Pulumi passphrase is neither
checked nor named: it always has a value (derived from the secret key when unset).

Given its settings; the live engine resolves the same defaults (automation/live.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

from domain.hosts.backends import host_dir, redact, resolve
from domain.hosts.service import Finding
from domain.workspaces.schemas import PreflightCheck, PreflightRead
from settings import Settings
from stacks.plugins import default_plugins, parse_plugins

CREDENTIALS = {
    "hetzner": ("PENGUINMAILS_HETZNER_TOKEN", "hetzner_token"),
    "hostwinds": ("PENGUINMAILS_HOSTWINDS_API_KEY", "hostwinds_api_key"),
}


def backend_url(settings: Settings) -> str:
    """The backend the live engine will use: one rule for both (`domain.hosts.backends`)."""
    return resolve(settings).url


def _cli(settings: Settings) -> PreflightCheck:
    found = shutil.which(settings.pulumi_command)
    if found is None:
        return PreflightCheck(
            name="pulumi_cli",
            ok=False,
            setting="PENGUINMAILS_PULUMI_COMMAND",
            detail=f"{settings.pulumi_command!r} not found on PATH; install the Pulumi CLI "
            "(https://www.pulumi.com/docs/install/) or point PENGUINMAILS_PULUMI_COMMAND at it",
        )
    try:
        out = subprocess.run(
            [found, "version"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return PreflightCheck(name="pulumi_cli", ok=False, detail=f"{found} version: {exc}")
    version = out.stdout.strip()
    if out.returncode != 0 or not version:
        tail = (out.stderr or out.stdout).strip()[-200:]
        return PreflightCheck(
            name="pulumi_cli", ok=False, detail=f"{found} version exited {out.returncode}: {tail}"
        )
    return PreflightCheck(name="pulumi_cli", ok=True, detail=f"pulumi {version} at {found}")


def _plugins(settings: Settings) -> list[PreflightCheck]:
    home = Path(settings.pulumi_home or host_dir(settings) / "home")  # as the live engine
    pins = parse_plugins(settings.pulumi_plugins) or default_plugins()
    checks = []
    for name, version in sorted(pins.items()):
        # The CLI's plugin cache: PULUMI_HOME/plugins/resource-<name>-<version>.
        path = home / "plugins" / f"resource-{name}-{version}"
        ok = path.is_dir()
        checks.append(
            PreflightCheck(
                name=f"plugin:{name}",
                ok=ok,
                setting="PENGUINMAILS_PULUMI_PLUGINS",
                detail=f"{name} {version} installed in {path.parent}"
                if ok
                else f"{name} {version} not in {path.parent}; the live engine installs it on its "
                "first run (needs the CLI and internet access to get.pulumi.com)",
            )
        )
    return checks


def _credentials(settings: Settings, providers: set[str]) -> list[PreflightCheck]:
    checks = []
    for provider in sorted(providers & set(CREDENTIALS)):
        setting, attr = CREDENTIALS[provider]
        value = getattr(settings, attr)
        ok = value is not None and bool(value.get_secret_value())
        checks.append(
            PreflightCheck(
                name=f"credential:{provider}",
                ok=ok,
                setting=setting,
                detail=f"{setting} is set" if ok else f"{setting} is not set ({provider} servers)",
            )
        )
    return checks


def _backend(settings: Settings) -> PreflightCheck:
    url = backend_url(settings)
    parsed = urlparse(url)
    shown = redact(url)  # never a backend password in the report (as the engine's logs)
    if parsed.scheme == "file":
        path = Path(parsed.path)
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        ok = existing is not None and os.access(existing, os.W_OK)
        detail = f"{shown}: writable" if ok else f"{shown}: {existing or path} is not writable"
        return PreflightCheck(name="backend", ok=ok, setting="PENGUINMAILS_PULUMI_BACKEND_URL",
                              detail=detail)  # fmt: skip
    if parsed.scheme in ("postgres", "postgresql", "https", "http") and parsed.hostname:
        port = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme, 5432)
        try:
            with socket.create_connection((parsed.hostname, port), timeout=5):
                pass
        except OSError as exc:
            return PreflightCheck(
                name="backend",
                ok=False,
                setting="PENGUINMAILS_PULUMI_BACKEND_URL",
                detail=f"{shown}: cannot connect to {parsed.hostname}:{port} ({exc})",
            )
        return PreflightCheck(
            name="backend",
            ok=True,
            setting="PENGUINMAILS_PULUMI_BACKEND_URL",
            detail=f"{shown}: {parsed.hostname}:{port} accepts connections",
        )
    return PreflightCheck(
        name="backend",
        ok=True,
        setting="PENGUINMAILS_PULUMI_BACKEND_URL",
        detail=f"{shown}: {parsed.scheme} backends are checked by the CLI at run time",
    )


def _shared_state(finding: Finding | None) -> PreflightCheck:
    if finding is None:
        return PreflightCheck(
            name="shared_state",
            ok=True,
            setting="PENGUINMAILS_PULUMI_BACKEND_URL",
            detail="every registered worker host can see every stack's state",
        )
    return PreflightCheck(
        name="shared_state",
        ok=False,
        setting="PENGUINMAILS_PULUMI_BACKEND_URL",
        detail=finding.message,
    )


def check(
    settings: Settings,
    providers: set[str] | None,
    *,
    sandbox: bool,
    hosts: Finding | None = None,
) -> PreflightRead:
    """`providers`: those the workspace's servers use (their credentials are required); None
    (a workspace without servers yet): every provider's credential, for information. `hosts`:
    `domain.hosts.service.shared_state_finding` for this deployment (several worker hosts, one
    of them on a machine-local backend), None when there is nothing to report."""
    if sandbox:
        return PreflightRead(engine="sandbox", ready=True, checks=[])
    wanted = set(CREDENTIALS) if providers is None else providers
    credentials = _credentials(settings, wanted)
    checks = [
        _cli(settings),
        *_plugins(settings),
        *credentials,
        _backend(settings),
        _shared_state(hosts),
    ]
    # Missing plugins are not fatal (the engine installs them), nor credentials no server needs.
    ready = all(
        c.ok
        for c in checks
        if not c.name.startswith("plugin:")
        and not (providers is None and c.name.startswith("credential:"))
    )
    return PreflightRead(engine="live", ready=ready, checks=checks)
