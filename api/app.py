"""The FastAPI application. `create_app(background=Runner)` is `penguinmails serve`: the API and
the scheduler in one process; `penguinmails api` runs it without the scheduler."""

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from anyio import to_thread
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from api import errors, metrics
from api.finish import unfinished
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
    _include_flat(app, health.router)
    _include_flat(app, metrics.router)
    for router in V1_ROUTERS:
        _include_flat(app, router, prefix="/api/v1", responses=errors.ERROR_RESPONSES)
    return app


def _include_flat(
    app: FastAPI,
    router: APIRouter,
    *,
    prefix: str = "",
    responses: dict[int | str, dict[str, Any]] | None = None,
) -> None:
    """`router`'s routes added to the app itself, as routes of its own (what `include_router`
    did before FastAPI kept included routers as nested nodes). FastAPI now matches a request
    by walking every included router, checking each one's routes version and rebuilding each
    route's context in the request scope: with a router per resource under an `/api/v1`
    router, routing cost more than a minimal app's whole request (issue 16's profile). The
    routes, their order and the OpenAPI schema are those the nested includes gave."""
    for route in router.routes:
        assert isinstance(route, APIRoute), route
        app.router.add_api_route(
            prefix + route.path,
            unfinished(route.endpoint),
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses={**(responses or {}), **route.responses},
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=route.response_class,
            name=route.name,
            route_class_override=type(route),
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=_operation_id,
        )
