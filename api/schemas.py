from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class PageOf(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
