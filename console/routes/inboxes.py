"""An inbox: its settings, endpoints, credentials and deletion; its domain's DNS records."""

import uuid

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from api.deps import SessionDep, SettingsDep, TransactionDep
from console.web import ConsoleRoute, Form, SignedIn, field_errors, redirect, render
from domain.dns_records import service as dns_records
from domain.inboxes import service as inboxes
from domain.inboxes.schemas import InboxAccepted, InboxRead, InboxUpdate
from domain.workspaces import service as workspaces
from kit.errors import PenguinMailsError

router = APIRouter(route_class=ConsoleRoute, prefix="/console/inboxes", include_in_schema=False)


def _inbox_page(
    request: Request,
    session: SessionDep,
    who: SignedIn,
    inbox_id: uuid.UUID,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    saved: bool = False,
) -> Response:
    inbox = InboxRead.model_validate(inboxes.get(session, who.tenant_id, inbox_id))
    workspace = workspaces.get(session, who.tenant_id, inbox.workspace_id)
    context = {
        "inbox": inbox,
        "workspace": workspace,
        "values": values,
        "errors": errors or {},
        "saved": saved,
    }
    return render(request, "inbox.html", context, status_code=status_code)


@router.get("/{inbox_id}")
def inbox_page(
    inbox_id: uuid.UUID, request: Request, session: SessionDep, who: SignedIn
) -> Response:
    return _inbox_page(
        request, session, who, inbox_id, saved=request.query_params.get("saved") == "1"
    )


def _update_body(form: dict[str, str]) -> dict[str, object]:
    body: dict[str, object] = {"warmup_enabled": form.get("warmup_enabled") == "on"}
    limit = form.get("daily_send_limit", "").strip()
    if limit:
        body["daily_send_limit"] = int(limit) if limit.lstrip("-").isdigit() else limit
    if "display_name" in form:
        body["display_name"] = form["display_name"]
    return body


@router.post("/{inbox_id}")
def update_inbox(
    inbox_id: uuid.UUID,
    request: Request,
    form: Form,
    session: SessionDep,
    who: SignedIn,
    settings: SettingsDep,
) -> Response:
    try:
        data = InboxUpdate.model_validate(_update_body(form))
        with session.begin_nested():
            inboxes.update(session, who.tenant_id, inbox_id, data, settings=settings)
    except (ValidationError, PenguinMailsError) as exc:
        errors = field_errors(exc)
        return _inbox_page(
            request, session, who, inbox_id, values=form, errors=errors, status_code=422
        )
    return redirect(f"/console/inboxes/{inbox_id}?saved=1")


@router.post("/{inbox_id}/rotate")
def rotate_credentials(
    inbox_id: uuid.UUID,
    request: Request,
    form: Form,
    session: SessionDep,
    who: SignedIn,
    settings: SettingsDep,
) -> Response:
    accepted = inboxes.rotate_credentials(session, who.tenant_id, inbox_id, settings=settings)
    shown = InboxAccepted(
        **InboxRead.model_validate(accepted.inbox).model_dump(),
        operation_id=accepted.operation_id,
        credentials=accepted.credentials,
    )
    return render(request, "secret_once.html", {"inbox": shown, "created": False})


@router.post("/{inbox_id}/delete")
def delete_inbox(
    inbox_id: uuid.UUID, form: Form, session: SessionDep, who: SignedIn, settings: SettingsDep
) -> Response:
    accepted = inboxes.mark_for_deletion(session, who.tenant_id, inbox_id, settings=settings)
    return redirect(f"/console/operations/{accepted.operation_id}")


@router.get("/{inbox_id}/dns")
def dns_page(inbox_id: uuid.UUID, request: Request, session: SessionDep, who: SignedIn) -> Response:
    inbox = InboxRead.model_validate(inboxes.get(session, who.tenant_id, inbox_id))
    view = dns_records.list_for_inbox(session, who.tenant_id, inbox_id)
    workspace = workspaces.get(session, who.tenant_id, inbox.workspace_id)
    domain = inbox.email_address.rpartition("@")[2]
    context = {"inbox": inbox, "workspace": workspace, "view": view, "domain": domain}
    return render(request, "dns.html", context)


@router.post("/{inbox_id}/dns/verify")
def verify_now(
    inbox_id: uuid.UUID,
    form: Form,
    who: SignedIn,
    transaction: TransactionDep,
    settings: SettingsDep,
) -> Response:
    # As POST .../dns-records/verify: short transactions of its own around the lookups.
    dns_records.verify_inbox(who.tenant_id, inbox_id, transaction, settings)
    return redirect(f"/console/inboxes/{inbox_id}/dns")
