import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from domain.validation import NoControlCharacters

WorkspaceName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    NoControlCharacters,
]


class WorkspaceCreate(BaseModel):
    # strict: a string field takes only a string, `sandbox` only true/false
    model_config = ConfigDict(extra="forbid", strict=True)

    name: WorkspaceName = Field(description="Unique within the tenant.")
    sandbox: StrictBool = Field(
        default=True,
        description="True: the fleet runs on the sandbox engine (simulated provider results). "
        "False: the live engine drives the real Pulumi CLI and providers.",
    )


class PreflightCheck(BaseModel):
    name: str = Field(
        description="pulumi_cli, plugin:<name>, credential:<provider>, backend, shared_state"
    )
    ok: bool
    detail: str
    setting: str | None = Field(default=None, description="The setting that controls it.")


class PreflightRead(BaseModel):
    engine: str
    ready: bool = Field(description="False: a run of this workspace would fail; see checks.")
    checks: list[PreflightCheck]


class WorkspaceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    sandbox: bool
    engine: str
    stack_name: str
    dns_connection_id: uuid.UUID | None = Field(
        default=None, description="The default DNS connection of its domains; null: manual."
    )
    created_at: datetime
    updated_at: datetime
    preflight: PreflightRead | None = Field(
        default=None,
        description="Live workspaces, on create: whether the live engine can run it "
        "(GET /workspaces/{id}/preflight).",
    )


class SshKeyRead(BaseModel):
    workspace_id: uuid.UUID
    ssh_public_key: str = Field(
        description="The OpenSSH line every server of the workspace trusts: add it to "
        "~/.ssh/authorized_keys of the ssh_user of an existing server."
    )
    fingerprint: str = Field(description="SHA256 fingerprint, as ssh-keygen -l prints it.")
