"""The rules Stalwart applies to an outbound rate limiter, for the fake (tests/support/stalwart.py),
so a wrong encoding in the management scripts fails a test instead of reaching a server.

Read in stalwartlabs/stalwart:
- v0.16.18 `crates/registry/src/schema/structs.rs` `MtaOutboundThrottle {enable, description,
  key: Map<MtaOutboundThrottleKey>, match: Expression, rate: Rate}`; `structs_impl.rs`
  (`validate`: description required, `Rate` count 1..1000000 and period >= 1 ms;
  `RegistryJsonPropertyPatch`: any other property is "Invalid property"); `types/map.rs` (a Map is
  `{"<key>": true, ...}`, anything else "Invalid value for object property"); `types/duration.rs`
  (a Duration is a JSON number of milliseconds > 0, a string is "Invalid path for Duration");
  `enums_impl.rs` (`MtaOutboundThrottleKey` names; `MTA_QUEUE_HOST_VARIABLE`, the variables
  `match` may use, checked at set time by jmap/src/registry/set.rs `compile_expr`).
- v0.12.0 and v0.15.5 `crates/common/src/config/smtp/throttle.rs` (`enable` bool, `key` one of
  the outbound keys, `match` an expression over SMTP_QUEUE_HOST_VARS, `rate` required
  `<count>/<duration>` with count > 0: utils/src/config/utils.rs `ParseValue for Rate`/`Duration`).

The expression check is a subset of Stalwart's tokenizer: quoted strings, numbers, operators,
parentheses and function calls pass; a bare name must be a variable the context allows; an
unterminated string fails.
"""

from __future__ import annotations

import re
from typing import Any

JMAP_KEYS = {"mx", "remoteIp", "localIp", "sender", "senderDomain", "rcptDomain"}
REST_KEYS = {"rcpt_domain", "sender", "sender_domain", "mx", "remote_ip", "local_ip"}
# MTA_QUEUE_HOST_VARIABLE (v0.16.18) and SMTP_QUEUE_HOST_VARS (v0.12.0, the older and smaller).
JMAP_VARIABLES = {
    "sender", "sender_domain", "rcpt_domain", "rcpt", "recipients", "mx", "priority",
    "remote_ip", "local_ip", "retry_num", "notify_num", "expires_in", "last_status",
    "last_error", "queue_name", "queue_age", "received_from_ip", "received_via_port", "source",
    "size",
}  # fmt: skip
REST_VARIABLES = {
    "sender", "sender_domain", "rcpt_domain", "rcpt", "recipients", "mx", "priority",
    "remote_ip", "local_ip", "retry_num", "notify_num", "expires_in", "last_status",
    "last_error",
}  # fmt: skip
_PROPERTIES = {"enable", "description", "key", "match", "rate"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"^\s*(\d+)\s*(d|h|m|s|ms)?\s*$", re.IGNORECASE)


def expression_problem(text: str, variables: set[str]) -> str | None:
    """Why Stalwart would refuse `text` as an expression in this context, or None."""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "'\"":
            end = text.find(ch, i + 1)
            if end < 0:
                return f"unterminated string in {text!r}"
            i = end + 1
            continue
        name = _NAME.match(text, i)
        if name is None:
            i += 1
            continue
        word, i = name.group(), name.end()
        rest = text[i:].lstrip()
        if rest.startswith("(") or word in ("true", "false"):
            continue
        if word not in variables:
            return f"invalid variable {word!r}"
    return None


def jmap_problem(obj: dict[str, Any]) -> tuple[str, str, str] | None:
    """(SetError type, description, property) for an `x:MtaOutboundThrottle` object the v0.16
    registry refuses, or None."""
    for prop in obj:
        if prop not in _PROPERTIES and prop != "id":
            return "invalidProperties", "Invalid property", prop
    if not isinstance(obj.get("enable", True), bool):
        return "invalidProperties", "Invalid value", "enable"
    if not isinstance(obj.get("description"), str) or not obj["description"]:
        return "validationFailed", "description is required", "description"
    key = obj.get("key", {})
    if not isinstance(key, dict):
        return "invalidProperties", "Invalid value for object property", "key"
    for name, value in key.items():
        if name not in JMAP_KEYS or not isinstance(value, bool):
            return "invalidProperties", "Invalid key for object property", "key"
    expr = obj.get("match", {"else": "true"})
    if not isinstance(expr, dict) or set(expr) - {"match", "else"}:
        return "invalidProperties", "Invalid property", "match"
    if not isinstance(expr.get("else"), str) or not expr["else"]:
        return "validationFailed", "else is required", "match"
    conditions = [expr["else"]]
    branches = expr.get("match", {})
    if not isinstance(branches, dict):
        return "invalidProperties", "lists are objects keyed 0, 1, ...", "match"
    for branch in branches.values():
        conditions += [str(branch.get("if", "")), str(branch.get("then", ""))]
    for text in conditions:
        problem = expression_problem(text, JMAP_VARIABLES)
        if problem:
            return "validationFailed", problem, "match"
    rate = obj.get("rate")
    if not isinstance(rate, dict) or set(rate) - {"count", "period"}:
        return "invalidProperties", "Invalid property", "rate"
    count, period = rate.get("count", 0), rate.get("period", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1_000_000:
        return "validationFailed", "count must be 1..1000000", "rate"
    if not isinstance(period, int) or isinstance(period, bool) or period < 1:
        return "invalidProperties", "Invalid path for Duration (milliseconds)", "rate"
    return None


def _rate_problem(value: str) -> str | None:
    count, sep, period = value.partition("/")
    if not sep or not count.strip().isdigit() or int(count) < 1:
        return f"Invalid rate value {value!r}."
    duration = _DURATION.match(period)
    if duration is None or int(duration.group(1)) < 1:
        return f"Invalid duration value {period!r}."
    return None


def rest_errors(settings: dict[str, str]) -> dict[str, str]:
    """The reload errors (key -> message) v0.12-v0.15 report for `queue.limiter.outbound.*`."""
    errors: dict[str, str] = {}
    prefix = "queue.limiter.outbound."
    ids = {key[len(prefix) :].split(".", 1)[0] for key in settings if key.startswith(prefix)}
    for ident in sorted(ids):
        base = prefix + ident
        enable = settings.get(base + ".enable", "true")
        if enable not in ("true", "false"):
            errors[base + ".enable"] = f"Invalid boolean value {enable!r}."
        for key, value in settings.items():
            if (key == base + ".key" or key.startswith(base + ".key.")) and value not in REST_KEYS:
                errors[key] = f"Invalid THROTTLE key {value!r}"
        if base + ".match" in settings:
            problem = expression_problem(settings[base + ".match"], REST_VARIABLES)
            if problem:
                errors[base + ".match"] = problem
        rate = settings.get(base + ".rate")
        if rate is None:
            errors[base + ".rate"] = "Missing property"
        elif _rate_problem(rate):
            errors[base + ".rate"] = str(_rate_problem(rate))
    return errors
