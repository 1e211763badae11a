"""Pulumi engines and the operations queue."""

from pydantic_settings import BaseSettings


class StackSettings(BaseSettings):
    pass
