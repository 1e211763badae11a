"""The records a mail domain needs for one server: exact values the user publishes.

Names are relative to the domain (`@` is the apex) except the PTR, which lives in the reverse
zone of the server's IP and is written absolute with its trailing dot. TXT values longer than
255 characters are shown as the quoted strings a zone file needs (RFC 1035 character-strings);
shorter ones are shown bare, as DNS hosting panels expect them.
"""

import functools
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from dnspublish.backends import txt_join

TXT_CHUNK = 255
__all__ = ["txt_join"]  # re-exported: the publisher owns it

# purpose -> (type, relative name pattern, required)
MX, A, AAAA, SPF, DKIM, DMARC, PTR = "mx", "a", "aaaa", "spf", "dkim", "dmarc", "ptr"
MTA_STS, TLS_RPT, SRV_SUBMISSIONS, SRV_IMAPS = "mta_sts", "tls_rpt", "srv_submissions", "srv_imaps"
PURPOSE_ORDER = (MX, A, AAAA, SPF, DKIM, DMARC, PTR, MTA_STS, TLS_RPT, SRV_SUBMISSIONS, SRV_IMAPS)


@dataclass(frozen=True)
class PlannedRecord:
    purpose: str
    type: str
    name: str
    value: str
    required: bool
    ttl: int
    domain: str

    @property
    def fqdn(self) -> str:
        return absolute_name(self.name, self.domain)

    def zone_line(self) -> str:
        return f"{self.fqdn}. {self.ttl} IN {self.type} {zone_rdata(self.type, self.value)}"


def absolute_name(name: str, domain: str) -> str:
    """`@` / relative / absolute (trailing dot) name -> FQDN without the trailing dot."""
    if name.endswith("."):
        return name[:-1].lower()
    if name in ("@", ""):
        return domain
    return f"{name}.{domain}".lower()


def relative_name(fqdn: str, domain: str) -> str:
    fqdn = fqdn.rstrip(".").lower()
    if fqdn == domain:
        return "@"
    if fqdn.endswith("." + domain):
        return fqdn[: -len(domain) - 1]
    return fqdn + "."


def txt_value(text: str) -> str:
    if len(text) <= TXT_CHUNK:
        return text
    chunks = [text[i : i + TXT_CHUNK] for i in range(0, len(text), TXT_CHUNK)]
    return " ".join(f'"{c}"' for c in chunks)


def zone_rdata(rtype: str, value: str) -> str:
    if rtype != "TXT" or value.startswith('"'):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dkim_value(public_key: str, algorithm: str) -> str:
    return f"v=DKIM1; k={algorithm}; p={public_key}"


def spf_value(ips: Sequence[str]) -> str:
    return _spf_value(tuple(ips))


# Generation plans every inbox of a domain with the same addresses: parsing them once per
# distinct value (not per inbox) was a sixth of a large fleet's generation time.
@functools.lru_cache(maxsize=4096)
def _spf_value(ips: tuple[str, ...]) -> str:
    terms = []
    for ip in ips:
        address = ipaddress.ip_address(ip)
        terms.append(f"ip{address.version}:{address}")
    return "v=spf1 " + " ".join(terms) + " ~all"


@functools.lru_cache(maxsize=4096)
def _reverse_pointer(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def mta_sts_id(hostnames: Sequence[str]) -> str:
    # Changes exactly when the MX hosts (and so the policy) change, as RFC 8461 3.1 asks.
    return hashlib.sha256(",".join(sorted(hostnames)).encode()).hexdigest()[:16]


def plan(
    *,
    domain: str,
    hostname: str,
    ip: str,
    ipv6: str | None = None,
    spf_ips: Sequence[str] = (),
    dkim_selector: str,
    dkim_public_key: str,
    dkim_algorithm: str = "rsa",
    dmarc_rua: str = "mailto:dmarc@{domain}",
    tlsrpt_rua: str = "mailto:tls-reports@{domain}",
    ttl: int = 3600,
) -> list[PlannedRecord]:
    """Every record for `domain` served by the server `hostname` at `ip` (and `ipv6`).
    `spf_ips` lists every sending address of the domain (all its servers); default: this one."""
    domain = domain.rstrip(".").lower()
    hostname = hostname.rstrip(".").lower()
    host_in_domain = hostname == domain or hostname.endswith("." + domain)
    sending = list(spf_ips) or [ip, *([ipv6] if ipv6 else [])]
    out: list[tuple[str, str, str, str, bool]] = [(MX, "MX", "@", f"10 {hostname}.", True)]
    if host_in_domain:
        out.append((A, "A", relative_name(hostname, domain), ip, True))
        if ipv6:
            out.append((AAAA, "AAAA", relative_name(hostname, domain), ipv6, False))
    out += [
        (SPF, "TXT", "@", spf_value(sending), True),
        (
            DKIM,
            "TXT",
            f"{dkim_selector}._domainkey",
            txt_value(dkim_value(dkim_public_key, dkim_algorithm)),
            True,
        ),
        (DMARC, "TXT", "_dmarc", f"v=DMARC1; p=none; rua={dmarc_rua.format(domain=domain)}", True),
        (PTR, "PTR", _reverse_pointer(ip) + ".", f"{hostname}.", True),
        (MTA_STS, "TXT", "_mta-sts", f"v=STSv1; id={mta_sts_id([hostname])}", False),
        (
            TLS_RPT,
            "TXT",
            "_smtp._tls",
            f"v=TLSRPTv1; rua={tlsrpt_rua.format(domain=domain)}",
            False,
        ),
        (SRV_SUBMISSIONS, "SRV", "_submissions._tcp", f"0 1 465 {hostname}.", False),
        (SRV_IMAPS, "SRV", "_imaps._tcp", f"0 1 993 {hostname}.", False),
    ]
    return [PlannedRecord(p, t, n, v, r, ttl, domain) for p, t, n, v, r in out]
