"""SPF record syntax (RFC 7208 sections 4.6, 5, 6, 7): terms and macro strings.

Parsing is separate from evaluation because RFC 7208 4.6 wants the whole record checked for
syntax before any of it is evaluated: one bad term anywhere makes the result permerror.
"""

import ipaddress
import re
import time
import urllib.parse
from dataclasses import dataclass

QUALIFIERS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists")

_MACRO = re.compile(
    r"%(?:\{(?P<letter>[A-Za-z])(?P<digits>\d*)(?P<rev>[rR]?)(?P<delims>[.\-+,/_=]*)\}|(?P<esc>[%_\-]))"
)
_EXPLAIN_ONLY = "crt"
_DOMAIN_LETTERS = "slodiphv"


class SpfSyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Term:
    qualifier: str  # pass/fail/softfail/neutral for mechanisms, "" for modifiers
    name: str  # mechanism or modifier name, lowercased
    arg: str | None  # domain-spec / network / modifier value
    cidr4: int | None = None
    cidr6: int | None = None
    text: str = ""

    @property
    def is_modifier(self) -> bool:
        return self.qualifier == ""


@dataclass(frozen=True)
class Record:
    directives: tuple[Term, ...]
    redirect: str | None
    exp: str | None


def is_spf(txt: str) -> bool:
    """RFC 7208 4.5: the record starts with exactly `v=spf1` then a space or its end."""
    return txt[:6].lower() == "v=spf1" and (len(txt) == 6 or txt[6] == " ")


def _cidr(value: str | None, maximum: int, term: str) -> int | None:
    if value is None:
        return None
    if (len(value) > 1 and value.startswith("0")) or int(value) > maximum:
        raise SpfSyntaxError(f"bad CIDR length in {term!r}")
    return int(value)


def check_macro_string(text: str, *, explain: bool = False) -> None:
    """RFC 7208 7.1: a macro-string is macro-expands and visible characters (an explain-string
    also spaces); a "%" that starts none of them is a syntax error."""
    rest = _MACRO.sub("", text)
    if "%" in rest:
        raise SpfSyntaxError(f"bad macro in {text!r}")
    _check_macros(text, explain)
    lowest = 0x20 if explain else 0x21  # an explain-string may hold spaces
    if any(ord(c) < lowest or ord(c) > 0x7E for c in rest):
        raise SpfSyntaxError(f"bad character in {text!r}")


def _check_macros(text: str, explain: bool) -> None:
    """RFC 7208 7.2/7.3: c, r and t only in explanations; a transformer's digits are not 0."""
    allowed = _DOMAIN_LETTERS + (_EXPLAIN_ONLY if explain else "")
    for m in _MACRO.finditer(text):
        letter = (m.group("letter") or "").lower()
        if letter and letter not in allowed:
            raise SpfSyntaxError(f"macro letter {letter!r} not allowed in {text!r}")
        if m.group("digits") and int(m.group("digits")) == 0:
            raise SpfSyntaxError(f"macro transformer 0 in {text!r}")


def _domain_spec(spec: str, term: str) -> str:
    if not spec:
        raise SpfSyntaxError(f"empty domain in {term!r}")
    check_macro_string(spec)
    # domain-end: the last label is a toplabel or ends in a macro (RFC 7208 7.1).
    last = spec.rstrip(".").rsplit(".", 1)[-1]
    if not spec.rstrip(".").endswith("}") and not (
        re.fullmatch(r"[A-Za-z0-9-]*[A-Za-z][A-Za-z0-9-]*", last)
        and not last.startswith("-")
        and not last.endswith("-")
        and "." in spec.rstrip(".")
    ):
        raise SpfSyntaxError(f"{spec!r} in {term!r} is not a domain name")
    return spec


_MODIFIER = re.compile(r"^([A-Za-z][A-Za-z0-9_.\-]*)=(.*)$")


def parse(txt: str) -> Record:
    if not is_spf(txt):
        raise SpfSyntaxError("not an SPF record")
    directives: list[Term] = []
    modifiers: dict[str, str] = {}
    for raw in txt[6:].split(" "):  # RFC 7208 4.6.1: terms are separated by spaces only
        if not raw:
            continue
        m = _MODIFIER.match(raw)
        if m and m.group(1).lower() not in MECHANISMS:
            _modifier(m.group(1).lower(), m.group(2), raw, modifiers)
        else:
            directives.append(_directive(raw))
    return Record(tuple(directives), modifiers.get("redirect"), modifiers.get("exp"))


def _modifier(name: str, value: str, raw: str, seen: dict[str, str]) -> None:
    """RFC 7208 6: redirect= and exp= take a domain-spec and appear at most once each; an
    unknown modifier must hold a valid macro-string (appendix A) and is otherwise ignored."""
    if name not in ("redirect", "exp"):
        check_macro_string(value)
        return
    if name in seen:
        raise SpfSyntaxError(f"more than one {name}= modifier")
    seen[name] = _domain_spec(value, raw)


_SHAPES = {
    "all": re.compile(r""),
    "ip4": re.compile(r":(?P<spec>[0-9.]+)(?:/(?P<v4>\d+))?"),
    "ip6": re.compile(r":(?P<spec>[0-9A-Fa-f:.]+)(?:/(?P<v6>\d+))?"),
    "a": re.compile(r"(?::(?P<spec>.*?))?(?:/(?P<v4>\d+))?(?://(?P<v6>\d+))?"),
    "mx": re.compile(r"(?::(?P<spec>.*?))?(?:/(?P<v4>\d+))?(?://(?P<v6>\d+))?"),
    "ptr": re.compile(r"(?::(?P<spec>.+))?"),
    "include": re.compile(r":(?P<spec>.+)"),
    "exists": re.compile(r":(?P<spec>.+)"),
}


def _directive(raw: str) -> Term:
    qualifier = "pass"
    body = raw
    if body[0] in QUALIFIERS:
        qualifier, body = QUALIFIERS[body[0]], body[1:]
    head = re.match(r"[A-Za-z][A-Za-z0-9]*", body)
    name = head.group(0).lower() if head else ""
    if head is None or name not in _SHAPES:
        raise SpfSyntaxError(f"unknown mechanism {raw!r}")
    m = _SHAPES[name].fullmatch(body[head.end() :])
    if m is None:
        raise SpfSyntaxError(f"bad syntax in {raw!r}")
    groups = m.groupdict()
    spec = groups.get("spec")
    cidr4 = _cidr(groups.get("v4"), 32, raw)
    cidr6 = _cidr(groups.get("v6"), 128, raw)
    if name in ("ip4", "ip6"):
        _check_address(name, spec, raw)
    elif spec is not None:
        spec = _domain_spec(spec, raw)
    return Term(qualifier, name, spec, cidr4, cidr6, raw)


def _check_address(name: str, spec: str | None, raw: str) -> None:
    """RFC 7208 5.6: ip4 and ip6 hold an address of their own family."""
    assert spec is not None
    try:
        address = ipaddress.ip_address(spec)
    except ValueError as exc:
        raise SpfSyntaxError(f"bad address in {raw!r}") from exc
    if address.version != int(name[2]):
        raise SpfSyntaxError(f"{raw!r}: address of the wrong family")


@dataclass
class MacroContext:
    sender: str
    domain: str
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    helo: str
    receiver: str = "unknown"
    validated_name: str | None = None  # %{p}; filled by the evaluator when a macro needs it
    now: int | None = None
    ip_text: str = ""  # the address as the MTA wrote it (the case of %{i}'s IPv6 nibbles)

    @property
    def local_part(self) -> str:
        return self.sender.rpartition("@")[0] or "postmaster"

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]

    def _dotted(self) -> str:
        """RFC 7208 7.3's dot-format: the IPv4 address, or the 32 IPv6 nibbles dot-separated.
        The RFC does not fix the nibbles' case; like pyspf, and as the openspf suite's
        v-macro-ip6 expects, they keep the case the address was written in."""
        if self.ip.version == 4:
            return self.ip.exploded
        nibbles = self.ip.exploded.replace(":", "")
        written = self.ip_text
        if any(c in "ABCDEF" for c in written) and not any(c in "abcdef" for c in written):
            nibbles = nibbles.upper()
        return ".".join(nibbles)

    def value(self, letter: str) -> str:
        ip = self.ip
        values = {
            "s": self.sender,
            "l": self.local_part,
            "o": self.sender_domain,
            "d": self.domain,
            "i": self._dotted(),
            "p": self.validated_name or "unknown",
            "v": "in-addr" if ip.version == 4 else "ip6",
            "h": self.helo,
            "c": str(ip),
            "r": self.receiver,
            "t": str(self.now if self.now is not None else int(time.time())),
        }
        return values[letter]


def uses_p(text: str) -> bool:
    return any((m.group("letter") or "").lower() == "p" for m in _MACRO.finditer(text))


def expand(text: str, ctx: MacroContext, *, explain: bool = False) -> str:
    check_macro_string(text, explain=explain)

    def one(m: re.Match[str]) -> str:
        esc = m.group("esc")
        if esc:
            return {"%": "%", "_": " ", "-": "%20"}[esc]
        letter = m.group("letter")
        value = ctx.value(letter.lower())
        delims = m.group("delims") or "."
        parts = re.split("[" + re.escape(delims) + "]", value)
        if m.group("rev"):
            parts.reverse()
        if m.group("digits"):
            parts = parts[-int(m.group("digits")) :]
        out = ".".join(parts)
        if letter.isupper():
            out = urllib.parse.quote(out, safe="-._~")
        return out

    return _MACRO.sub(one, text)


def expand_domain(spec: str, ctx: MacroContext) -> str:
    """A domain-spec after macro expansion, shortened from the left to 253 characters."""
    out = expand(spec, ctx).rstrip(".")
    while len(out) > 253 and "." in out:
        out = out.split(".", 1)[1]
    return out
