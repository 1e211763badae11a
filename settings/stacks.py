"""Pulumi engines: where the live engine keeps state, and what the sandbox simulates."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings


class StackSettings(BaseSettings):
    pulumi_command: str = Field(
        default="pulumi",
        description="The Pulumi CLI the live engine runs: a name looked up on PATH, or a path.",
    )
    pulumi_backend_url: str | None = Field(
        default=None,
        description=(
            "Pulumi state backend for live stacks (postgres://, file://, s3://, azblob://, gs://, "
            "https://api.pulumi.com). Unset: PULUMI_BACKEND_URL from the environment; else, with "
            "DATABASE_URL set, that Postgres (table PULUMI_STATE_TABLE); else (the embedded "
            "default) file://DATA_DIR/pulumi/state. See domain/hosts/backends.py."
        ),
    )
    pulumi_state_table: str = Field(
        default="pulumi_state",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
        description=(
            "Table of the DATABASE_URL Postgres that holds live stacks' Pulumi state when no "
            "backend is set (Pulumi's DIY postgres backend creates it on first use)."
        ),
    )
    pulumi_config_passphrase: SecretStr | None = Field(
        default=None,
        description=(
            "Passphrase of the passphrase secrets provider that encrypts live stacks' secret "
            "config and state. Unset: derived from SECRET_KEY (so rotating that key needs this "
            "set to the old derived value first; see docs/stacks.md)."
        ),
    )
    pulumi_home: Path | None = Field(
        default=None,
        description=(
            "PULUMI_HOME for the live engine (plugins). Unset: DATA_DIR/pulumi/hosts/HOST/home, "
            "one per host so a data directory on shared storage is never shared by two hosts."
        ),
    )
    pulumi_work_root: Path | None = Field(
        default=None,
        description=(
            "Directory holding one work dir per live stack. Unset: "
            "DATA_DIR/pulumi/hosts/HOST/workspaces."
        ),
    )
    pulumi_plugins: str | None = Field(
        default=None,
        description=(
            "Provider plugins installed once at start, as name=version pairs separated by "
            "commas. Unset: hcloud and command at the versions of the installed Python SDKs."
        ),
    )
    sandbox_ipv4_ranges: str = Field(
        default="192.0.2.0/24,198.51.100.0/24,203.0.113.0/24",
        description=(
            "Comma-separated IPv4 networks the sandbox engine hands out server addresses from "
            "(default: the three documentation ranges of RFC 5737, 762 addresses per stack)."
        ),
    )
    sandbox_ipv6_range: str = Field(
        default="2001:db8::/32",
        description="IPv6 network the sandbox engine carves one /64 per server from (RFC 3849).",
    )
    stalwart_version: str = Field(
        default="v0.16.18",
        description=(
            "Stalwart release new servers are pinned to (a release tag, v0.12.0 or later; see "
            "stacks/versions.py). Servers already installed with v0.12-v0.15 keep their own pin "
            "when this moves to v0.16: that upgrade is an offline migration."
        ),
    )
    stalwart_releases: str = Field(
        default="",
        description=(
            "Comma-separated Stalwart release tags accepted as pins besides the known list in "
            "stacks/versions.py (releases published after it), e.g. `v0.16.19`."
        ),
    )
    hetzner_token: SecretStr | None = Field(
        default=None,
        description="Hetzner Cloud API token for live workspaces with Hetzner servers.",
    )
    hostwinds_api_key: SecretStr | None = Field(
        default=None,
        description="Hostwinds API key for live workspaces with Hostwinds servers.",
    )
    allow_private_server_addresses: bool = Field(
        default=False,
        description=(
            "Accept private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) as the "
            "`ip_address` of `existing` servers: for self-hosted networks where the control plane "
            "reaches its mail servers over a private network. Loopback, link-local, multicast, "
            "reserved and cloud metadata addresses are refused regardless."
        ),
    )
