"""`Idempotency-Key` support for create endpoints."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from database.models.tenants import ApiKey
from domain.idempotency import service as idempotency

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Repeat a create safely: the same key and body replay the first answer.",
    ),
]


def respond(
    session: Session,
    key: ApiKey,
    idempotency_key: str | None,
    request: Request,
    body: BaseModel | None,
    produce: Callable[[], tuple[int, dict[str, Any]]],
) -> JSONResponse:
    fp = idempotency.fingerprint(
        request.method, request.url.path, body.model_dump(mode="json") if body else None
    )
    status, payload, replayed = idempotency.run(
        session, key.tenant_id, idempotency_key, fp, produce
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(payload, status_code=status, headers=headers)
