"""RFC 2136 DNS UPDATE with TSIG (dnspython): BIND, Knot, PowerDNS and most self-hosted DNS.

Reads go straight to the configured server over TCP (no resolver, no cache), so what we merge
into is what the server holds. A conditional change carries a prerequisite (RFC 2136 2.4): the
RRset exists with exactly the values we read, or does not exist; the server applies the update
and the check in one step, so a concurrent editor makes ours fail with YXRRSET/NXRRSET
(`Changed`) instead of being overwritten."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from dnspublish.backends import Changed, PublishError, Unreachable, txt_rdata

ALGORITHMS = {
    "hmac-sha256": dns.tsig.HMAC_SHA256,
    "hmac-sha384": dns.tsig.HMAC_SHA384,
    "hmac-sha512": dns.tsig.HMAC_SHA512,
    "hmac-sha224": dns.tsig.HMAC_SHA224,
    "hmac-sha1": dns.tsig.HMAC_SHA1,
    "hmac-md5": dns.tsig.HMAC_MD5,
}


def parse_server(server: str) -> tuple[str, int]:
    """`host[:port]` or `[v6]:port` -> (host, port); port 53 by default."""
    server = server.strip()
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if server.count(":") == 1:
        host, _, port = server.partition(":")
        return host, int(port)
    return server, 53


def check_secret(secret: str) -> None:
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be the base64 TSIG secret") from None


@dataclass
class Rfc2136:
    server: str
    key_name: str
    secret: str = field(repr=False)
    algorithm: str = "hmac-sha256"
    timeout: float = 3.0

    def __post_init__(self) -> None:
        self.host, self.port = parse_server(self.server)
        self.keyname = dns.name.from_text(self.key_name)
        self.keyring = dns.tsigkeyring.from_text({self.key_name: self.secret})
        self.description = f"{self.host}:{self.port}"
        # The rdata as the server holds it, by joined value: a customer's TXT split into strings
        # other than ours must be named exactly in prerequisites and deletions.
        self._raw: dict[tuple[str, str, str], dns.rdata.Rdata] = {}

    def _tcp(self, message: dns.message.Message, what: str) -> dns.message.Message:
        try:
            return dns.query.tcp(message, self.host, port=self.port, timeout=self.timeout)
        except dns.exception.Timeout:
            raise Unreachable(
                f"{what}: no answer from {self.description} within {self.timeout:g}s"
            ) from None
        except ConnectionRefusedError:
            raise Unreachable(f"{what}: {self.description} refused the connection") from None
        except OSError as exc:
            raise Unreachable(f"{what}: cannot reach {self.description}: {exc}") from None
        except dns.tsig.PeerError as exc:
            raise PublishError(
                f"{what}: {self.description} rejected TSIG key {self.key_name} "
                f"({type(exc).__name__}: {exc or 'wrong secret or algorithm'})"
            ) from None
        except dns.exception.DNSException as exc:
            raise PublishError(f"{what}: {self.description}: {exc}") from None

    def find_zone(self, fqdn: str) -> str:
        """The zone the server is authoritative for that holds `fqdn` (its SOA owner)."""
        name = dns.name.from_text(fqdn)
        reply = self._tcp(
            dns.message.make_query(name, dns.rdatatype.SOA), f"finding the zone of {fqdn}"
        )
        if reply.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise PublishError(
                f"{self.description} answered {dns.rcode.to_text(reply.rcode())} for {fqdn}: "
                "it is not authoritative for a zone holding that name"
            )
        for section in (reply.answer, reply.authority):
            for rrset in section:
                if rrset.rdtype == dns.rdatatype.SOA:
                    return rrset.name.to_text(omit_final_dot=True).lower()
        raise PublishError(f"{self.description} gave no SOA for {fqdn}: no zone holds it there")

    def read(self, zone: str, fqdn: str, rtype: str) -> list[str]:
        reply = self._tcp(dns.message.make_query(fqdn + ".", rtype), f"reading {rtype} {fqdn}")
        if reply.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise PublishError(
                f"reading {rtype} {fqdn}: {self.description} answered "
                f"{dns.rcode.to_text(reply.rcode())}"
            )
        want = dns.rdatatype.from_text(rtype)
        out: list[str] = []
        for rrset in reply.answer:
            if rrset.rdtype != want or rrset.name != dns.name.from_text(fqdn):
                continue
            for rdata in rrset:
                if want == dns.rdatatype.TXT:
                    text = b"".join(rdata.strings).decode(errors="replace")
                else:
                    text = rdata.to_text()
                self._raw[(fqdn.lower(), rtype, text)] = rdata
                out.append(text)
        return out

    def _rdata(self, rtype: str, value: str, fqdn: str = "") -> dns.rdata.Rdata:
        raw = self._raw.get((fqdn.lower(), rtype, value))
        if raw is not None:
            return raw
        text = txt_rdata(value) if rtype == "TXT" else value
        return dns.rdata.from_text(dns.rdataclass.IN, rtype, text)

    def change(
        self,
        zone: str,
        fqdn: str,
        rtype: str,
        ttl: int,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        expect: Sequence[str] | None = None,
    ) -> None:
        update = dns.update.UpdateMessage(
            zone + ".",
            keyring=self.keyring,
            keyname=self.keyname,
            keyalgorithm=ALGORITHMS[self.algorithm],
        )
        name = dns.name.from_text(fqdn)
        if expect is not None:
            if expect:
                rdataset = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.from_text(rtype))
                for value in expect:
                    rdataset.add(self._rdata(rtype, value, fqdn), 0)  # prerequisites carry TTL 0
                update.present(name, rdataset)
            else:
                update.absent(name, rtype)
        for value in remove:
            update.delete(name, self._rdata(rtype, value, fqdn))
        for value in add:
            update.add(name, ttl, self._rdata(rtype, value))
        reply = self._tcp(update, f"updating {rtype} {fqdn}")
        rcode = reply.rcode()
        if rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.YXDOMAIN, dns.rcode.NXDOMAIN):
            raise Changed(f"{rtype} {fqdn} changed while we wrote it")
        if rcode != dns.rcode.NOERROR:
            hint = {
                dns.rcode.REFUSED: "the key may not update this zone",
                dns.rcode.NOTAUTH: "the server is not authoritative or refused the TSIG key",
                dns.rcode.NOTZONE: "the name is outside the zone",
            }.get(rcode, "")
            raise PublishError(
                f"updating {rtype} {fqdn}: {self.description} answered "
                f"{dns.rcode.to_text(rcode)}" + (f" ({hint})" if hint else "")
            )
