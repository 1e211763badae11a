"""Checks every API request passes before its route parses it (run by `api.retry.RetryingRoute`,
the route class of every router, so routes get them without asking):

- the body, when the route would parse it as JSON, is UTF-8 (else 422 naming `body`);
- no string in it, at any depth and object keys included, nor any query parameter, path
  parameter or declared header, holds a control character or an unpaired surrogate
  (`domain.validation.CONTROL_CHARACTERS`): a 422 naming the field (`display_name`,
  `event_types.0`, the query parameter `status`), before anything reaches Postgres, which
  refuses NUL with an error (it was a 500). The one exception: line breaks in a PEM key
  (`PEM_LOCATIONS`).

The request schemas refuse the same characters field by field (`NoControlCharacters`); this is
the net under every route, webhooks' included."""

import email.message
import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from domain.validation import control_character_problem

Location = tuple[str | int, ...]
# The one place a line break is text: a PEM key (a Google service-account key's `private_key`,
# docs/reputation.md). Every other control character is still refused there.
PEM_LOCATIONS = {("body", "service_account", "private_key")}


def _strings(value: Any, loc: Location) -> Iterator[tuple[Location, str]]:
    """Every string in a decoded JSON value with its location, object keys included (as
    `(*loc, "<key>")`), depth first in document order; iterative, so depth costs no stack."""
    stack: list[tuple[Location, Any]] = [(loc, value)]
    while stack:
        here, item = stack.pop()
        if isinstance(item, str):
            yield here, item
        elif isinstance(item, dict):
            children: list[tuple[Location, Any]] = []
            for key, child in item.items():
                children += [((*here, "<key>"), key), ((*here, key), child)]
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([((*here, i), child) for i, child in enumerate(item)]))


def _printable(loc: Location) -> Location:
    """A location safe to show: control characters in a key are escaped."""
    return tuple(
        part.encode("unicode_escape", "backslashreplace").decode("ascii")
        if isinstance(part, str) and control_character_problem(part)
        else part
        for part in loc
    )


def _refuse(loc: Location, problem: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": _printable(loc), "msg": problem}])


def _parsed_as_json(request: Request) -> bool:
    """What FastAPI parses as JSON: no content type, or application/json or */*+json."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def json_body(request: Request) -> Any:
    """The JSON body as the route will see it, or None (no body, not JSON, or not valid JSON:
    the route reports the last with its position). Invalid UTF-8 is a 422 naming `body`:
    FastAPI would answer a 400 naming nothing."""
    raw = await request.body()  # cached on the request: the route reads the same bytes
    if not raw or not _parsed_as_json(request):
        return None
    try:
        # Starlette keeps the decoded value on the request, so the route's own
        # `request.json()` reuses it: the body is decoded once, not twice.
        return await request.json()
    except UnicodeDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "body_encoding",
                    "loc": ("body",),
                    "msg": f"request body is not valid UTF-8 (byte {exc.start})",
                }
            ]
        ) from None
    except json.JSONDecodeError:
        return None
    except RecursionError:
        raise RequestValidationError(
            [{"type": "body_depth", "loc": ("body",), "msg": "request body is nested too deeply"}]
        ) from None


async def check_request(request: Request, header_names: tuple[str, ...] = ()) -> None:
    """Raise a RequestValidationError (a 422 in the one error shape) for the first string of the
    request that is not text: query parameters, path parameters, the declared headers, then the
    JSON body."""
    places: list[tuple[Location, str]] = []
    for name, value in request.query_params.multi_items():
        places += [(("query", name), name), (("query", name), value)]
    places += [(("path", name), str(v)) for name, v in request.path_params.items()]
    for name in header_names:
        header = request.headers.get(name)
        if header is not None:
            places.append((("header", name), header))
    for loc, value in places:
        problem = control_character_problem(value)
        if problem is not None:
            raise _refuse(loc, problem, "control_character")
    body = await json_body(request)
    for loc, value in _strings(body, ("body",)):
        text = value.replace("\r\n", "").replace("\n", "") if loc in PEM_LOCATIONS else value
        problem = control_character_problem(text)
        if problem is not None:
            if loc[-1] == "<key>":
                loc, problem = (*loc[:-1], value), f"field name {problem}"
            raise _refuse(loc, problem, "control_character")
