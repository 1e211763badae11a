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
