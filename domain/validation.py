"""Rules the request schemas share: text without control characters, and the names that reach the
stack (mailbox addresses, hostnames) checked by the stack program's own validators
(`stacks.config.validate_*`), so the API refuses whatever a run would refuse, before anything is
written or queued: one source of truth, and no accepted request can poison its workspace.

Internationalised domain names are kept in their ASCII (IDNA 2008, UTS #46) form: that is the form
DNS, server hostnames and Stalwart use. Read schemas show the Unicode form beside it
(`unicode_domain`)."""

import re
from collections.abc import Callable
from typing import Annotated

import idna
from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from stacks.config import (
    ConfigError,
    validate_hostname,
    validate_mailbox_address,
)

# C0 controls (tab and newline included: no name, address, description or filter holds one),
# DEL, C1 controls, and UTF-16 surrogates (a JSON `\ud800` escape decodes to one; Postgres
# cannot store it). NUL in particular reaches Postgres as an error, not as a value.
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# What `domain.servers.service` names a new server placed for an inbox: `mail-<10 hex>.<domain>`.
NEW_SERVER_HOSTNAME = "mail-0123456789.{domain}"
MAX_ADDRESS_LENGTH = 255  # inboxes.email_address


def control_character_problem(value: str) -> str | None:
    """Why `value` is not acceptable text, or None."""
    match = CONTROL_CHARACTERS.search(value)
    if match is None:
        return None
    code = ord(match.group())
    kind = "an unpaired surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    return f"contains {kind} (U+{code:04X}) at position {match.start()}; only printable text"


def _text(value: str) -> str:
    problem = control_character_problem(value)
    if problem is not None:
        raise PydanticCustomError("control_character", "{problem}", {"problem": problem})
    return value


# Annotated[str, StringConstraints(...), NoControlCharacters]
NoControlCharacters = AfterValidator(_text)


def ascii_domain(value: str) -> str:
    """`value` (a domain or hostname, without a root dot) in the form DNS uses: lower-cased when it
    is ASCII already (the stack's rules decide whether it is a name), else IDNA-encoded."""
    if value.isascii():
        return value.lower()
    try:
        return idna.encode(value, uts46=True).decode("ascii")
    except idna.IDNAError as exc:  # InvalidCodepoint and the others are IDNAError subclasses
        raise PydanticCustomError(
            "idna",
            "{value} cannot be written as an internationalised domain name (IDNA 2008): {reason}",
            {"value": repr(value), "reason": str(exc)},
        ) from None


def unicode_domain(value: str) -> str:
    """The Unicode form of an ASCII domain, for display; the value itself if it has none."""
    if "xn--" not in value:
        return value
    try:
        return str(idna.decode(value))
    except idna.IDNAError:
        return value


def unicode_address(address: str) -> str:
    local, at, domain = address.rpartition("@")
    return f"{local}{at}{unicode_domain(domain)}" if at else address


def _stack_rule(
    check: Callable[[str, str], None], value: str, context: str = "", hint: str = ""
) -> None:
    """Run one of `stacks.config`'s validators; its refusal becomes this field's error."""
    try:
        check(value, "value")
    except ConfigError as exc:
        raise PydanticCustomError(
            "stack_config",
            "{context}{reason}{hint}",
            {"context": context, "reason": exc.reason, "hint": hint},
        ) from None


_HOSTNAME_HINT = (
    " (the pattern of a fully qualified name: labels of a-z, 0-9 and inner '-', 1-63 "
    "characters, joined by dots, no trailing dot, the last label starting with a letter)"
)
MAX_HOSTNAME_LENGTH = 253


def mailbox_address(value: str) -> str:
    """A mailbox address as the stack takes it: the domain in ASCII form, the address valid for
    `validate_mailbox_address` and a new server's hostname under the domain for
    `validate_hostname`. The local part keeps its case (the stack lower-cases the address)."""
    local, at, domain = value.strip().rpartition("@")
    if not at or not local or not domain:
        raise PydanticCustomError("email", "an email address needs a local part, @ and a domain")
    if not local.isascii():
        raise PydanticCustomError(
            "email",
            "the part before @ must be ASCII: internationalised local parts (SMTPUTF8) are not "
            "supported; the domain may be internationalised",
        )
    address = f"{local}@{ascii_domain(domain)}"
    if len(address) > MAX_ADDRESS_LENGTH:
        raise PydanticCustomError(
            "string_too_long",
            "at most {max} characters (in ASCII form, the domain IDNA-encoded)",
            {"max": MAX_ADDRESS_LENGTH},
        )
    _stack_rule(validate_mailbox_address, address.lower())
    hostname = NEW_SERVER_HOSTNAME.format(domain=address.rpartition("@")[2])
    _stack_rule(
        validate_hostname,
        hostname,
        "the domain is too long for the hostname of a server placed for it "
        "(mail-<10 hex digits>.<domain>, at most 253 characters): ",
        _HOSTNAME_HINT,
    )
    return address


def hostname(value: str) -> str:
    """A server hostname in ASCII form, valid for the stack's `validate_hostname`."""
    name = ascii_domain(value.strip())
    if len(name) > MAX_HOSTNAME_LENGTH:
        raise PydanticCustomError(
            "string_too_long",
            "at most {max} characters (in ASCII form)",
            {"max": MAX_HOSTNAME_LENGTH},
        )
    _stack_rule(validate_hostname, name, hint=_HOSTNAME_HINT)
    return name


EmailAddress = Annotated[
    str,
    AfterValidator(mailbox_address),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 255}),
]
Hostname = Annotated[
    str,
    AfterValidator(hostname),
    WithJsonSchema({"type": "string", "format": "hostname", "maxLength": 253}),
]
