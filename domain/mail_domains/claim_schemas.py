"""Domain claims as the API takes and shows them (beside `schemas.py`, which other features'
validation owns)."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

CLAIM_LABEL = "_penguinmails-claim"
CLAIM_PREFIX = "penguinmails-claim="


class DomainClaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    domain: str = Field(min_length=1, max_length=255, description="The domain to claim.")


class DomainClaimRead(BaseModel):
    """Publish `value` as a TXT record at `record_name`, then verify the claim."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    domain: str
    record_name: str
    record_type: str = "TXT"
    value: str
    verified: bool
    verified_at: datetime | None
    created_at: datetime | None
