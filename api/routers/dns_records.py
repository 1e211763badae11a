import uuid

from fastapi import APIRouter

from api.deps import CurrentKey, SessionDep
from domain.dns_records import service
from domain.dns_records.schemas import DnsRecordsView

router = APIRouter(prefix="/inboxes/{inbox_id}/dns-records", tags=["dns"])


@router.get("", response_model=DnsRecordsView)
def list_dns_records(inbox_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> DnsRecordsView:
    """The records the inbox's domain needs, each with its last verification result."""
    return service.list_for_inbox(session, key.tenant_id, inbox_id)


@router.post("/verify", response_model=DnsRecordsView)
def verify_dns_records(inbox_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> DnsRecordsView:
    """Check the records against live DNS now; the inbox becomes ready once all required
    records verify."""
    return service.verify_inbox(session, key.tenant_id, inbox_id)
