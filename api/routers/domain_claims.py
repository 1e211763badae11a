"""Domain claims: take over a domain another tenant owns by publishing a TXT token."""

import uuid

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, SessionDep, SettingsDep, TransactionDep
from api.idempotent import IdempotencyKeyHeader, respond
from api.retry import RetryingRoute
from domain.mail_domains import service
from domain.mail_domains.claim_schemas import DomainClaimCreate, DomainClaimRead

router = APIRouter(route_class=RetryingRoute, tags=["domains"])


@router.post(
    "/workspaces/{workspace_id}/domain-claims",
    status_code=status.HTTP_201_CREATED,
    response_model=DomainClaimRead,
    summary="Start claiming a domain: publish the TXT record answered, then verify",
)
def create_domain_claim(
    workspace_id: uuid.UUID,
    body: DomainClaimCreate,
    request: Request,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    def produce() -> tuple[int, dict[str, object]]:
        claim = service.create_claim(session, key.tenant_id, workspace_id, body)
        return 201, service.claim_view(claim).model_dump(mode="json")

    return respond(session, key, idempotency_key, request, body, produce, settings=settings)


@router.get("/domain-claims/{claim_id}", response_model=DomainClaimRead)
def get_domain_claim(claim_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> DomainClaimRead:
    return service.claim_view(service.get_claim(session, key.tenant_id, claim_id))


@router.post(
    "/domain-claims/{claim_id}/verify",
    response_model=DomainClaimRead,
    summary="Look the claim's TXT record up now; when it holds the token, the domain is yours",
)
def verify_domain_claim(
    claim_id: uuid.UUID, key: CurrentKey, transaction: TransactionDep, settings: SettingsDep
) -> DomainClaimRead:
    # Short transactions of its own: none stays open while the lookup runs.
    return service.verify_claim(key.tenant_id, claim_id, transaction, settings)
