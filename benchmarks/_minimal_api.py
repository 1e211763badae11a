"""The API benchmark's baseline: the smallest FastAPI + SQLAlchemy app doing the same kind of work
(one row inserted per POST, one row read per GET, a page of 50 rows and a count for the list),
with sync handlers on the same thread pool, the same psycopg driver and the same uvicorn
settings as `penguinmails api`. Bearer tokens are checked against a set given at start.

    python -m benchmarks._minimal_api PORT   (PENGUINMAILS_DATABASE_URL, BENCH_TOKENS,
                                              PENGUINMAILS_API_THREADS)

Its thread limit and pool are `PENGUINMAILS_API_THREADS` (default 40), as ours are.
"""

import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

import uvicorn
from anyio import to_thread
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel
from sqlalchemy import String, create_engine, func, insert, select
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "bench_items"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    email_address: Mapped[str] = mapped_column(String(255), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(50), default="pending_setup")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ItemIn(BaseModel):
    email_address: str
    display_name: str | None = None


class ItemOut(BaseModel):
    model_config = {"from_attributes": True}
    id: uuid.UUID
    workspace_id: uuid.UUID
    email_address: str
    display_name: str | None
    status: str
    created_at: datetime


class Page(BaseModel):
    items: list[ItemOut]
    total: int


def create_app(url: str, tokens: set[str], threads: int = 40) -> FastAPI:
    # The same pool as ours (database.session): `threads` and 10 beyond.
    engine = create_engine(url, pool_size=threads, max_overflow=10)
    Base.metadata.create_all(engine)
    maker = sessionmaker(bind=engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = threads
        yield

    app = FastAPI(lifespan=lifespan)

    def session() -> "Session":  # type: ignore[misc]
        with maker() as s, s.begin():
            yield s  # type: ignore[misc]

    def auth(authorization: Annotated[str, Header()] = "") -> None:
        if authorization.removeprefix("Bearer ") not in tokens:
            raise HTTPException(401)

    S = Annotated[Session, Depends(session)]

    @app.post("/ws/{workspace_id}/items", status_code=202, dependencies=[Depends(auth)])
    def create(workspace_id: uuid.UUID, body: ItemIn, s: S) -> ItemOut:
        row = s.execute(
            insert(Item)
            .values(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                email_address=body.email_address.lower(),
                display_name=body.display_name,
            )
            .returning(Item)
        ).scalar_one()
        return ItemOut.model_validate(row)

    @app.get("/items/{item_id}", dependencies=[Depends(auth)])
    def read(item_id: uuid.UUID, s: S) -> ItemOut:
        row = s.get(Item, item_id)
        if row is None:
            raise HTTPException(404)
        return ItemOut.model_validate(row)

    @app.get("/ws/{workspace_id}/items", dependencies=[Depends(auth)])
    def listing(workspace_id: uuid.UUID, s: S, limit: int = 50) -> Page:
        where = Item.workspace_id == workspace_id
        total = s.scalar(select(func.count()).select_from(Item).where(where)) or 0
        rows = s.scalars(
            select(Item).where(where).order_by(Item.created_at, Item.id).limit(limit)
        ).all()
        return Page(items=[ItemOut.model_validate(r) for r in rows], total=total)

    return app


if __name__ == "__main__":
    app = create_app(
        os.environ["PENGUINMAILS_DATABASE_URL"],
        set(os.environ["BENCH_TOKENS"].split(",")),
        int(os.environ.get("PENGUINMAILS_API_THREADS", "40")),
    )
    # The same server settings as `penguinmails api` (cli.processes._serve_http).
    uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="info")
    ).run()
