"""`install(app)`: the console's pages and static files on the API's application."""

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from console.routes import auth, events, inboxes, operations, webhooks, workspaces

ROUTERS: list[APIRouter] = [
    auth.router,
    workspaces.router,
    inboxes.router,
    operations.router,
    events.router,
    webhooks.router,
]
STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> FastAPI:
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    return app
