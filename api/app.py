"""The FastAPI application. `create_app(background=Runner)` is `penguinmails serve`: the API and
the scheduler in one process; `penguinmails api` runs it without the scheduler."""

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from anyio import to_thread
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from api import errors, metrics
from api.limits import BodyLimit
from api.metrics import RequestTimer
from api.routers import (
    dns_publishing,
    dns_records,
    domain_claims,
    events,
    health,
    inboxes,
    operations,
    reputation_connectors,
    vps,
    vps_ops,
    webhooks,
    workspaces,
)
from settings import get_settings

V1_ROUTERS: list[APIRouter] = [
    workspaces.router,
    inboxes.router,
    vps.router,
    operations.router,
    vps_ops.router,
    events.router,
    webhooks.router,
    dns_records.router,
    domain_claims.router,
    dns_publishing.router,
    reputation_connectors.router,
]


def _operation_id(route: APIRoute) -> str:
    return route.name


class Background(Protocol):
    """What runs beside the API in `serve` (the scheduler and the operation workers). Passed
    in by the process launcher: the API itself never imports the engines."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


def create_app(*, background: Callable[[], Background] | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Sync handlers and dependencies run on anyio's thread pool; the database pool holds
        # as many connections (database.session).
        to_thread.current_default_thread_limiter().total_tokens = get_settings().api_threads
        # What the process made at start (modules, the app, its routes and schemas) lives as
        # long as it does: moved out of the cyclic collector's sight, so that each collection
        # walks only what requests made (a full one walked it all, issue 16's profile).
        gc.collect()
        gc.freeze()
        if background is None:
            yield
            return
        runner = background()
        runner.start()
        try:
            yield
        finally:
            runner.stop()

    app = FastAPI(
        title="PenguinMails control plane",
        version="0.1.0",
        description="Inboxes on Stalwart fleets run as Pulumi stacks, with DNS verification "
        "and health monitoring.",
        generate_unique_id_function=_operation_id,
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(BodyLimit)  # PENGUINMAILS_MAX_BODY_BYTES, read per request
    app.add_middleware(RequestTimer)  # outermost: times what the client waits for
    app.include_router(health.router)
    app.include_router(metrics.router)
    v1 = APIRouter(prefix="/api/v1", responses=errors.ERROR_RESPONSES)
    for router in V1_ROUTERS:
        v1.include_router(router)
    app.include_router(v1)
    return app
