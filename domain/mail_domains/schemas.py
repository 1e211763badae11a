import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class MailDomainRead(BaseModel):
    """A mail domain as the API shows it: the public DKIM key only, never the private one."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    dkim_selector: str
    dkim_algorithm: str
    dkim_public_key: str
    created_at: datetime | None
