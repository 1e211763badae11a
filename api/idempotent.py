"""`Idempotency-Key` support for create endpoints: every create takes the header and answers
through `respond`, which stores the first answer with the create and replays it for a repeat
(same key and body) for `idempotency_ttl_seconds`.

    def create_thing(body: ThingCreate, request: Request, session: SessionDep,
                     key: CurrentKey, settings: SettingsDep,
                     idempotency_key: IdempotencyKeyHeader = None) -> JSONResponse:
        return respond(session, key, idempotency_key, request, body,
                       lambda: (201, make_thing(...).model_dump(mode="json")),
                       settings=settings)
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from database.models.tenants import ApiKey
from domain.idempotency import service as idempotency
from settings import get_settings
from settings.core import CoreSettings

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description=(
            "Repeat a create safely: the same key and body replay the first answer (for 24 "
            "hours by default, PENGUINMAILS_IDEMPOTENCY_TTL_SECONDS); another body is a 422."
        ),
    ),
]


def respond(
    session: Session,
    key: ApiKey,
    idempotency_key: str | None,
    request: Request,
    body: BaseModel | None,
    produce: Callable[[], tuple[int, dict[str, Any]]],
    *,
    settings: CoreSettings | None = None,
) -> JSONResponse:
    """`produce()` -> (status, JSON body) runs once per key; a repeat gets the stored answer
    with `Idempotent-Replayed: true`. Pass the handler's `SettingsDep` as `settings`."""
    if idempotency_key is None:  # nothing to store or compare: no fingerprint to take
        status, payload = produce()
        return JSONResponse(payload, status_code=status)
    ttl = (settings or get_settings()).idempotency_ttl_seconds
    fp = idempotency.fingerprint(
        request.method, request.url.path, body.model_dump(mode="json") if body else None
    )
    status, payload, replayed = idempotency.run(
        session, key.tenant_id, idempotency_key, fp, produce, ttl_seconds=ttl
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(payload, status_code=status, headers=headers)
