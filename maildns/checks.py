"""Semantic checks: each record judged the way a receiving mail server would judge it.

Statuses: `verified`; `missing` (NXDOMAIN / NODATA / no record of that kind); `mismatch` (a record
exists but says something else: SPF does not pass for our IP, another DKIM key, MX to another
address); `invalid` (a record that receivers reject: two SPF or DMARC records, SPF permerror, a
malformed tag); `error` (timeout, SERVFAIL: nothing can be concluded). Every result carries a
`detail` a user can act on: what was found and what was expected.
"""

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field
from enum import StrEnum

from maildns.resolver import Answer, Outcome, Resolver, normalize
from maildns.spf import SpfResult, check_host


class RecordStatus(StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    MISSING = "missing"
    MISMATCH = "mismatch"
    INVALID = "invalid"
    ERROR = "error"


@dataclass(frozen=True)
class RecordCheck:
    status: RecordStatus
    detail: str
    found: tuple[str, ...] = field(default=())

    @property
    def verified(self) -> bool:
        return self.status is RecordStatus.VERIFIED


def _not_found(answer: Answer, what: str, expected: str) -> RecordCheck | None:
    if answer.outcome is Outcome.ERROR:
        return RecordCheck(RecordStatus.ERROR, f"{answer.describe()}; try again later")
    if answer.void:
        return RecordCheck(
            RecordStatus.MISSING, f"{answer.describe()}; expected {what}: {expected}"
        )
    return None


def _address_type(ip: str) -> str:
    return "AAAA" if ":" in ip else "A"


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def tags(text: str) -> dict[str, str]:
    """`k=v; k=v` tag lists (DKIM RFC 6376 3.2, DMARC RFC 7489 6.4); later duplicates lose."""
    out: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip()
        if sep and name and name not in out:
            out[name] = value.strip()
        elif part.strip() and not sep:
            raise ValueError(f"{_short(part.strip())!r} is not a tag=value pair")
    return out


async def check_spf(resolver: Resolver, domain: str, ip: str) -> RecordCheck:
    outcome = await check_host(resolver, ip, domain)
    record = (outcome.record,) if outcome.record else ()
    if outcome.result is SpfResult.PASS:
        return RecordCheck(RecordStatus.VERIFIED, f"SPF passes for {ip}: {outcome.reason}", record)
    if outcome.result is SpfResult.TEMPERROR:
        return RecordCheck(RecordStatus.ERROR, f"SPF could not be evaluated: {outcome.reason}")
    if outcome.result is SpfResult.NONE:
        return RecordCheck(RecordStatus.MISSING, f"{outcome.reason}; expected one authorising {ip}")
    if outcome.result is SpfResult.PERMERROR:
        return RecordCheck(RecordStatus.INVALID, f"SPF permerror: {outcome.reason}", record)
    return RecordCheck(
        RecordStatus.MISMATCH,
        f"SPF gives {outcome.result.value} for {ip} ({outcome.reason}); "
        f"expected pass: add ip{'6' if ':' in ip else '4'}:{ip}",
        record,
    )


async def check_dkim(
    resolver: Resolver,
    domain: str,
    selector: str,
    public_key: str | None,
    algorithm: str = "rsa",
) -> RecordCheck:
    """public_key None: any valid key of type `algorithm` is accepted (the CLI's check)."""
    name = f"{selector}._domainkey.{domain}"
    answer = await resolver.query(name, "TXT")
    missing = _not_found(answer, "a DKIM key record at " + name, f"v=DKIM1; k={algorithm}; p=...")
    if missing:
        return missing
    keys = []
    for text in answer.texts():
        try:
            parsed = tags(text)
        except ValueError:
            continue
        if "p" in parsed:
            keys.append((text, parsed))
    if not keys:
        return RecordCheck(
            RecordStatus.INVALID,
            f"{name} has TXT data but no DKIM key (no p= tag)",
            tuple(answer.texts()),
        )
    if len(keys) > 1:
        return RecordCheck(
            RecordStatus.INVALID,
            f"{name} has {len(keys)} DKIM key records; publish one",
            tuple(t for t, _ in keys),
        )
    text, parsed = keys[0]
    found = (text,)
    if "v" in parsed and (parsed["v"] != "DKIM1" or not text.lstrip().startswith("v")):
        return RecordCheck(
            RecordStatus.INVALID, f"v= must be DKIM1 and come first, found {parsed['v']!r}", found
        )
    published = re.sub(r"\s+", "", parsed["p"])
    if not published:
        return RecordCheck(RecordStatus.MISMATCH, f"the key at {name} is revoked (empty p=)", found)
    try:
        base64.b64decode(published, validate=True)
    except binascii.Error:
        return RecordCheck(RecordStatus.INVALID, f"p= at {name} is not valid base64", found)
    key_type = parsed.get("k", "rsa").lower()
    if key_type != algorithm:
        return RecordCheck(
            RecordStatus.MISMATCH, f"key type k={key_type} at {name}, expected k={algorithm}", found
        )
    if public_key is None:
        return RecordCheck(RecordStatus.VERIFIED, f"{name} publishes a valid {key_type} key", found)
    if published != re.sub(r"\s+", "", public_key):
        return RecordCheck(
            RecordStatus.MISMATCH,
            f"the key published at {name} ({_short(published, 24)}) "
            f"is not ours ({_short(public_key, 24)})",
            found,
        )
    return RecordCheck(RecordStatus.VERIFIED, f"{name} publishes our {algorithm} key", found)


_DMARC_VALUES = {
    "p": {"none", "quarantine", "reject"},
    "sp": {"none", "quarantine", "reject"},
    "adkim": {"r", "s"},
    "aspf": {"r", "s"},
}
_MAILTO = re.compile(
    r"^mailto:[^@\s,;!]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+(?:![0-9]+[kmgt]?)?$",
    re.I,
)


def dmarc_problems(text: str) -> list[str]:
    try:
        parsed = tags(text)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    if not re.match(r"^v\s*=\s*DMARC1\s*(;|$)", text):
        problems.append("v=DMARC1 must be the first tag")
    if "p" not in parsed:
        problems.append("p= (the policy) is required")
    for tag, allowed in _DMARC_VALUES.items():
        if tag in parsed and parsed[tag].lower() not in allowed:
            problems.append(f"{tag}={parsed[tag]} is not one of {', '.join(sorted(allowed))}")
    if "pct" in parsed and not (parsed["pct"].isdigit() and 0 <= int(parsed["pct"]) <= 100):
        problems.append(f"pct={parsed['pct']} is not 0-100")
    if "ri" in parsed and not parsed["ri"].isdigit():
        problems.append(f"ri={parsed['ri']} is not a number of seconds")
    for tag in ("rua", "ruf"):
        for uri in filter(None, (u.strip() for u in parsed.get(tag, "").split(","))):
            if not _MAILTO.match(uri):
                problems.append(f"{tag} address {uri!r} is not a valid mailto: URI")
    return problems


async def check_dmarc(resolver: Resolver, domain: str) -> RecordCheck:
    name = f"_dmarc.{domain}"
    answer = await resolver.query(name, "TXT")
    missing = _not_found(answer, "a DMARC record at " + name, "v=DMARC1; p=none; rua=mailto:...")
    if missing:
        return missing
    records = [t for t in answer.texts() if re.match(r"^v\s*=\s*DMARC1\s*(;|$)", t)]
    if not records:
        return RecordCheck(
            RecordStatus.MISSING,
            f"no v=DMARC1 record among the TXT at {name}",
            tuple(answer.texts()),
        )
    if len(records) > 1:
        return RecordCheck(
            RecordStatus.INVALID,
            f"{len(records)} v=DMARC1 records at {name}; receivers "
            "ignore DMARC unless there is exactly one (RFC 7489 6.6.3)",
            tuple(records),
        )
    problems = dmarc_problems(records[0])
    if problems:
        return RecordCheck(
            RecordStatus.INVALID, f"DMARC at {name}: " + "; ".join(problems), (records[0],)
        )
    policy = tags(records[0])["p"].lower()
    via = f" (through CNAME to {answer.canonical})" if answer.canonical != normalize(name) else ""
    notes = await _external_report_notes(resolver, domain, tags(records[0]))
    detail = f"one valid DMARC record, p={policy}{via}" + "".join(f"; {n}" for n in notes)
    return RecordCheck(RecordStatus.VERIFIED, detail, (records[0],))


def _related(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


async def _external_report_notes(
    resolver: Resolver, domain: str, parsed: dict[str, str]
) -> list[str]:
    """RFC 7489 7.1: a report address in another domain receives reports only if that domain
    publishes `<domain>._report._dmarc.<destination>`. The policy stays valid either way, so
    this is told, not failed."""
    domain = normalize(domain)
    destinations = {
        normalize(uri.split("@", 1)[1].split("!", 1)[0])
        for tag in ("rua", "ruf")
        for uri in filter(None, (u.strip() for u in parsed.get(tag, "").split(",")))
        if "@" in uri
    }
    notes = []
    for dest in sorted(d for d in destinations if not _related(d, domain)):
        name = f"{domain}._report._dmarc.{dest}"
        answer = await resolver.query(name, "TXT")
        if answer.outcome is Outcome.ERROR:
            notes.append(f"could not check that {dest} accepts this domain's reports")
        elif not any(re.match(r"^v\s*=\s*DMARC1", t) for t in answer.texts()):
            notes.append(
                f"reports to {dest} will not be sent: it has not authorised them ({name} TXT "
                '"v=DMARC1" is missing)'
            )
    return notes


async def check_address(resolver: Resolver, name: str, ip: str) -> RecordCheck:
    rtype = _address_type(ip)
    answer = await resolver.query(name, rtype)
    missing = _not_found(answer, f"{rtype} record of {name}", ip)
    if missing:
        return missing
    found = tuple(answer.addresses())
    if ip in found:
        return RecordCheck(RecordStatus.VERIFIED, f"{name} resolves to {ip}", found)
    return RecordCheck(
        RecordStatus.MISMATCH, f"{name} resolves to {', '.join(found)}; expected {ip}", found
    )


async def check_mx(resolver: Resolver, domain: str, ip: str, hostname: str) -> RecordCheck:
    answer = await resolver.query(domain, "MX")
    missing = _not_found(answer, "an MX record", f"10 {hostname}.")
    if missing:
        return missing
    hosts = [h for h in answer.targets() if h]
    if not hosts:
        return RecordCheck(
            RecordStatus.MISMATCH,
            f"{domain} has a null MX (accepts no mail); expected 10 {hostname}.",
        )
    seen, errors = [], []
    for host in hosts:
        addresses = await resolver.query(host, _address_type(ip))
        if addresses.outcome is Outcome.ERROR:
            errors.append(addresses.describe())
        if ip in addresses.addresses():
            return RecordCheck(RecordStatus.VERIFIED, f"MX {host} resolves to {ip}", tuple(hosts))
        seen.append(f"{host} -> {', '.join(addresses.addresses()) or addresses.outcome.value}")
    if errors:
        return RecordCheck(
            RecordStatus.ERROR, f"MX hosts could not all be resolved: {'; '.join(errors)}"
        )
    return RecordCheck(
        RecordStatus.MISMATCH,
        f"no MX host resolves to {ip} ({'; '.join(seen)}); expected 10 {hostname}.",
        tuple(hosts),
    )


async def check_ptr(resolver: Resolver, ip: str, hostname: str) -> RecordCheck:
    name = ipaddress.ip_address(ip).reverse_pointer
    answer = await resolver.query(name, "PTR")
    missing = _not_found(answer, f"the PTR of {ip}", f"{hostname}. (set by the server provider)")
    if missing:
        return missing
    names = answer.targets()
    hostname = normalize(hostname)
    if hostname not in names:
        return RecordCheck(
            RecordStatus.MISMATCH,
            f"PTR of {ip} is {', '.join(names)}; expected {hostname}",
            tuple(names),
        )
    forward = await resolver.query(hostname, _address_type(ip))
    if forward.outcome is Outcome.ERROR:
        return RecordCheck(RecordStatus.ERROR, f"PTR is right but {forward.describe()}")
    if ip not in forward.addresses():
        return RecordCheck(
            RecordStatus.MISMATCH,
            f"PTR of {ip} is {hostname}, but {hostname} resolves to "
            f"{', '.join(forward.addresses()) or 'nothing'}: not forward-confirmed",
            tuple(names),
        )
    return RecordCheck(
        RecordStatus.VERIFIED,
        f"PTR of {ip} is {hostname}, which resolves back to {ip}",
        tuple(names),
    )


async def check_tag_record(resolver: Resolver, name: str, version: str, needed: str) -> RecordCheck:
    """MTA-STS (`v=STSv1; id=`) and TLS-RPT (`v=TLSRPTv1; rua=`): exactly one record with the
    tag `needed`. The MTA-STS policy file itself (HTTPS) is not fetched."""
    answer = await resolver.query(name, "TXT")
    missing = _not_found(answer, f"a {version} record at {name}", f"v={version}; {needed}=...")
    if missing:
        return missing
    records = [t for t in answer.texts() if re.match(rf"^v\s*=\s*{version}\s*(;|$)", t)]
    if not records:
        return RecordCheck(
            RecordStatus.MISSING, f"no v={version} record at {name}", tuple(answer.texts())
        )
    if len(records) > 1:
        return RecordCheck(
            RecordStatus.INVALID, f"{len(records)} v={version} records at {name}", tuple(records)
        )
    try:
        parsed = tags(records[0])
    except ValueError as exc:
        return RecordCheck(RecordStatus.INVALID, str(exc), tuple(records))
    if not parsed.get(needed):
        return RecordCheck(RecordStatus.INVALID, f"{name}: {needed}= is required", tuple(records))
    return RecordCheck(
        RecordStatus.VERIFIED, f"one valid v={version} record at {name}", tuple(records)
    )


async def check_srv(resolver: Resolver, name: str, target: str, port: int) -> RecordCheck:
    answer = await resolver.query(name, "SRV")
    missing = _not_found(answer, f"an SRV record at {name}", f"0 1 {port} {target}.")
    if missing:
        return missing
    target = normalize(target)
    found = tuple(f"{rd.port} {normalize(rd.target)}" for rd in answer.rdatas)
    if f"{port} {target}" in found:
        return RecordCheck(RecordStatus.VERIFIED, f"{name} points to {target}:{port}", found)
    return RecordCheck(
        RecordStatus.MISMATCH,
        f"{name} points to {', '.join(found)}; expected {target}:{port}",
        found,
    )
