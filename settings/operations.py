"""The operations queue and its workers."""

from pydantic_settings import BaseSettings


class OperationSettings(BaseSettings):
    pass
