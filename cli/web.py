"""The served application: the API with the console mounted at /console. `create_app` is
what `penguinmails serve` and `penguinmails api` run (uvicorn imports it by name in each worker
process when there are several)."""

from collections.abc import Callable

from fastapi import FastAPI

from api.app import Background
from api.app import create_app as create_api
from console.app import install


def create_app(*, background: Callable[[], Background] | None = None) -> FastAPI:
    return install(create_api(background=background))
