import uuid

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from api.deps import CurrentKey, PageDep, SessionDep, SettingsDep
from api.idempotent import IdempotencyKeyHeader, respond
from api.retry import RetryingRoute
from api.schemas import PageOf
from domain.hosts import backends as hosts
from domain.warmup import policy as warmup_policy
from domain.warmup import service as warmup
from domain.warmup.schemas import WarmupPolicyBody, WarmupPolicyRead
from domain.workspaces import preflight, service
from domain.workspaces.schemas import PreflightRead, SshKeyRead, WorkspaceCreate, WorkspaceRead
from kit.time import utcnow

router = APIRouter(route_class=RetryingRoute, prefix="/workspaces", tags=["workspaces"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WorkspaceRead)
def create_workspace(
    body: WorkspaceCreate,
    request: Request,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    def produce() -> tuple[int, dict[str, object]]:
        workspace = service.create(session, key.tenant_id, body)
        read = WorkspaceRead.model_validate(workspace)
        if not workspace.sandbox:
            # The same report as GET .../preflight: what a run would miss, before any is queued.
            read.preflight = preflight.check(
                settings, None, sandbox=False, hosts=hosts.deployment_finding(session, settings)
            )
        return 201, read.model_dump(mode="json")

    return respond(session, key, idempotency_key, request, body, produce, settings=settings)


@router.get("", response_model=PageOf[WorkspaceRead])
def list_workspaces(session: SessionDep, key: CurrentKey, page: PageDep) -> PageOf[WorkspaceRead]:
    rows, total = service.list_page(session, key.tenant_id, limit=page.limit, offset=page.offset)
    return PageOf[WorkspaceRead](
        items=[WorkspaceRead.model_validate(w) for w in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{workspace_id}", response_model=WorkspaceRead)
def get_workspace(workspace_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> WorkspaceRead:
    return WorkspaceRead.model_validate(service.get(session, key.tenant_id, workspace_id))


@router.get("/{workspace_id}/ssh-key", response_model=SshKeyRead)
def get_ssh_key(workspace_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> SshKeyRead:
    """The public key an `existing` server must trust (its private half never leaves)."""
    workspace = service.get(session, key.tenant_id, workspace_id)
    public = workspace.ssh_public_key or ""
    return SshKeyRead(
        workspace_id=workspace.id,
        ssh_public_key=public,
        fingerprint=service.ssh_fingerprint(public) if public else "",
    )


@router.get("/{workspace_id}/preflight", response_model=PreflightRead)
def get_preflight(
    workspace_id: uuid.UUID, session: SessionDep, key: CurrentKey, settings: SettingsDep
) -> PreflightRead:
    workspace = service.get(session, key.tenant_id, workspace_id)
    return preflight.check(
        settings,
        service.providers(session, workspace),
        sandbox=workspace.sandbox,
        hosts=hosts.deployment_finding(session, settings),
    )


@router.delete("/{workspace_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_workspace(workspace_id: uuid.UUID, session: SessionDep, key: CurrentKey) -> Response:
    service.delete(session, key.tenant_id, workspace_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{workspace_id}/warmup-policy", response_model=WarmupPolicyRead)
def get_warmup_policy(
    workspace_id: uuid.UUID, session: SessionDep, key: CurrentKey
) -> WarmupPolicyRead:
    service.get(session, key.tenant_id, workspace_id)
    return WarmupPolicyRead.model_validate(warmup_policy.get(session, workspace_id))


@router.put("/{workspace_id}/warmup-policy", response_model=WarmupPolicyRead)
def put_warmup_policy(
    workspace_id: uuid.UUID,
    body: WarmupPolicyBody,
    session: SessionDep,
    key: CurrentKey,
    settings: SettingsDep,
) -> WarmupPolicyRead:
    """Replace the policy; the workspace's caps follow at once (a stack run is queued if any
    changed)."""
    service.lock(session, key.tenant_id, workspace_id)
    policy = warmup_policy.put(session, key.tenant_id, workspace_id, body.model_dump())
    warmup.apply_workspace(session, workspace_id, utcnow(), settings=settings)
    return WarmupPolicyRead.model_validate(policy)
