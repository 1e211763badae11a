"""Validation of provider/size/region against the stack catalog, as pydantic field validators
so a bad value is a 422 naming its field, before anything is written."""

from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from stacks import catalog


def _member(kind: str, value: str, allowed: tuple[str, ...] | list[str]) -> str:
    if value not in allowed:
        raise PydanticCustomError(
            f"unknown_{kind}",
            # pydantic fills `{name}` only (no conversions): the value is quoted here
            "unknown {kind} {value}; one of: {allowed}",
            {"kind": kind, "value": repr(value), "allowed": ", ".join(allowed)},
        )
    return value


def provider(value: str) -> str:
    return _member("provider", value, list(catalog.PROVIDERS))


def size(value: str) -> str:
    return _member("size", value, list(catalog.SIZES))


def region(value: str) -> str:
    return _member("region", value, list(catalog.REGIONS))


def _enum(values: tuple[str, ...]) -> WithJsonSchema:
    """Documents the allowed values in OpenAPI; the validator gives the error its message."""
    return WithJsonSchema({"type": "string", "enum": list(values)})


ProviderName = Annotated[str, AfterValidator(provider), _enum(catalog.PROVIDERS)]
SizeName = Annotated[str, AfterValidator(size), _enum(catalog.SIZES)]
RegionName = Annotated[str, AfterValidator(region), _enum(catalog.REGIONS)]
