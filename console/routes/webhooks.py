"""Webhook endpoints: create (the signing secret shown once), the delivery log, disable."""

import uuid

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from api.deps import SessionDep, SettingsDep
from console.web import ConsoleRoute, Form, SignedIn, field_errors, page_of, redirect, render
from domain.events import catalogue
from domain.webhooks import service as webhooks
from domain.webhooks.schemas import WebhookCreate, WebhookCreated, WebhookRead, WebhookUpdate
from kit.errors import PenguinMailsError

router = APIRouter(route_class=ConsoleRoute, prefix="/console/webhooks", include_in_schema=False)


def _list_page(
    request: Request,
    session: SessionDep,
    who: SignedIn,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows, total = webhooks.list_page(session, who.tenant_id, limit=500, offset=0)
    context = {
        "webhooks": [WebhookRead.model_validate(w) for w in rows],
        "total": total,
        "values": values or {"event_types": "*"},
        "errors": errors or {},
        "families": [f"{f}.*" for f in catalogue.FAMILIES],
    }
    return render(request, "webhooks.html", context, status_code=status_code)


@router.get("")
def webhooks_page(request: Request, session: SessionDep, who: SignedIn) -> Response:
    return _list_page(request, session, who)


@router.post("")
def create_webhook(
    request: Request, form: Form, session: SessionDep, who: SignedIn, settings: SettingsDep
) -> Response:
    types = [t.strip() for t in form.get("event_types", "").replace(",", " ").split() if t.strip()]
    body = {"url": form.get("url", "").strip(), "description": form.get("description", "")}
    if types:
        body["event_types"] = types  # type: ignore[assignment]
    try:
        data = WebhookCreate.model_validate(body)
        with session.begin_nested():
            endpoint, secret = webhooks.create(session, who.tenant_id, data, settings=settings)
    except (ValidationError, PenguinMailsError) as exc:
        errors = {k.split(".")[0]: v for k, v in field_errors(exc).items()}
        return _list_page(request, session, who, values=form, errors=errors, status_code=422)
    read = WebhookRead.model_validate(endpoint).model_dump()
    # The signing secret is on this page only.
    return render(
        request, "webhook_secret.html", {"webhook": WebhookCreated(**read, secret=secret)}
    )


@router.get("/{webhook_id}")
def webhook_page(
    webhook_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    who: SignedIn,
    settings: SettingsDep,
) -> Response:
    endpoint = WebhookRead.model_validate(webhooks.get(session, who.tenant_id, webhook_id))
    size = settings.console_page_size
    number, offset = page_of(request.query_params, size)
    rows, total = webhooks.deliveries(session, who.tenant_id, webhook_id, limit=size, offset=offset)
    context = {
        "webhook": endpoint,
        "deliveries": rows,
        "total": total,
        "page": number,
        "pages": max(1, -(-total // size)),
    }
    return render(request, "webhook.html", context)


@router.post("/{webhook_id}/active")
def set_active(
    webhook_id: uuid.UUID, form: Form, session: SessionDep, who: SignedIn, settings: SettingsDep
) -> Response:
    data = WebhookUpdate(active=form.get("active") == "true")
    webhooks.update(session, who.tenant_id, webhook_id, data, settings=settings)
    return redirect(f"/console/webhooks/{webhook_id}")
