"""Optional reputation connectors (docs/reputation.md): where their clients connect. The base
URLs are settings so tests point the clients at loopback fakes."""

from pydantic import Field
from pydantic_settings import BaseSettings


class ReputationSettings(BaseSettings):
    postmaster_base_url: str = Field(
        default="https://gmailpostmastertools.googleapis.com",
        description="Google Postmaster Tools API (v2 methods under /v2).",
    )
    google_token_url: str = Field(
        default="https://oauth2.googleapis.com/token",
        description="Where a Postmaster service-account assertion is exchanged for a token "
        "(the JWT's `aud`); the key file's own token_uri is not used.",
    )
    snds_base_url: str = Field(
        default="https://sendersupport.olc.protection.outlook.com",
        description="Microsoft SNDS automated data access (/snds/data.aspx?key=...).",
    )
    reputation_fetch_interval_seconds: float = Field(
        default=21600.0,
        gt=0,
        description="How often `reputation.fetch` reads the connectors (the providers report "
        "daily figures).",
    )
    reputation_connector_timeout_seconds: float = Field(
        default=20.0, gt=0, description="Timeout of one connector request."
    )
