import uuid

from fastapi import APIRouter

from api.deps import CurrentKey, SessionDep, SettingsDep, TransactionDep
from api.retry import RetryingRoute
from domain.dns_records import service
from domain.dns_records.schemas import DnsRecordsView

router = APIRouter(
    route_class=RetryingRoute, prefix="/inboxes/{inbox_id}/dns-records", tags=["dns"]
)


@router.get("", response_model=DnsRecordsView)
def list_dns_records(inbox_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> DnsRecordsView:
    """The records the inbox's domain needs, each with its last verification result."""
    return service.list_for_inbox(session, key.tenant_id, inbox_id)


@router.post("/verify", response_model=DnsRecordsView)
def verify_dns_records(
    inbox_id: uuid.UUID, key: CurrentKey, transaction: TransactionDep, settings: SettingsDep
) -> DnsRecordsView:
    """Check the records against live DNS now; the inbox becomes ready once all required
    records verify."""
    # Its own short transactions, not the request session: no transaction stays open while
    # the lookups run.
    return service.verify_inbox(key.tenant_id, inbox_id, transaction, settings)
