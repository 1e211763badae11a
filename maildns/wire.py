"""Reading DNS replies: only what the resolver and the checks use.

`dns.message.from_wire` builds a Message, an RRset and a typed Rdata (with Name objects) for every
record of every section; in the sweep that was 45% of the CPU. The sweep needs far less: the
header (id, flags, rcode), the answer records of the asked type and the CNAMEs on the way, and
whether the authority section holds a SOA (a negative answer from the zone itself). So `parse`
skips the question (the transport has already matched it byte for byte), decodes the rdata of
the answer records the resolver asked for or follows (A, AAAA, TXT, MX, SRV, PTR, CNAME; other
types are kept as raw bytes), only looks at the type of authority records, and reads the
additional section only for the EDNS extended rcode.

Names come out as dnspython writes them (`str(dns.name.Name)`: absolute, with the trailing dot,
special characters escaped), so every comparison the checks make is unchanged; owner names are
lowercased for matching, as DNS compares names without regard to case (RFC 4343).
"""

import socket
from dataclasses import dataclass

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41
IN = 1
FLAG_TC = 0x0200
NXDOMAIN = 3


class WireError(ValueError):
    """The reply is malformed: it is dropped, as dnspython's parse error dropped it."""


@dataclass(frozen=True, slots=True)
class Rdata:
    """One answer record's data. `address` for A/AAAA, `strings` for TXT, `target` for CNAME,
    PTR, MX (the exchange) and SRV, with `preference` (MX) and `port` (SRV)."""

    rdtype: int
    address: str = ""
    strings: tuple[bytes, ...] = ()
    target: str = ""
    preference: int = 0
    port: int = 0
    raw: bytes = b""


@dataclass(frozen=True, slots=True)
class Record:
    owner: str  # lowercased, absolute with the trailing dot
    rdtype: int
    rdclass: int
    rdata: Rdata


@dataclass(frozen=True, slots=True)
class Reply:
    flags: int
    rcode: int
    answer: tuple[Record, ...]
    authority_soa: bool

    @property
    def truncated(self) -> bool:
        return bool(self.flags & FLAG_TC)


# dnspython's escaping in Name.to_text: these are backslash-escaped, bytes outside 0x21-0x7e
# are written as \DDD.
_ESCAPED = frozenset(b'"().;\\@$')
_PLAIN = frozenset(range(0x21, 0x7F)) - _ESCAPED


def _label_text(label: bytes) -> str:
    if _PLAIN.issuperset(label):
        return label.decode("ascii")
    out = []
    for byte in label:
        if byte in _ESCAPED:
            out.append("\\" + chr(byte))
        elif 0x20 < byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    return "".join(out)


def read_name(data: bytes, offset: int, cache: dict[int, tuple[str, int]]) -> tuple[str, int]:
    """The name at `offset` as text, and the offset after it. Compression pointers must point
    backwards (RFC 1035 4.1.4), which bounds the walk. `cache` keeps the names already read by
    offset: the records of an answer point at the same few names again and again."""
    return _read_name(data, offset, cache, 0)


def _read_name(
    data: bytes, offset: int, cache: dict[int, tuple[str, int]], depth: int
) -> tuple[str, int]:
    known = cache.get(offset)
    if known is not None:
        return known
    if depth > 127:  # a name has at most 127 labels
        raise WireError("name has too many labels")
    labels: list[str] = []
    position = offset
    while True:
        if position >= len(data):
            raise WireError("name runs past the end of the message")
        length = data[position]
        if length >= 0xC0:
            if position + 1 >= len(data):
                raise WireError("truncated compression pointer")
            pointer = ((length & 0x3F) << 8) | data[position + 1]
            if pointer >= position:
                raise WireError("compression pointer does not point backwards")
            rest = _read_name(data, pointer, cache, depth + len(labels) + 1)[0]
            head = ".".join(labels) + "." if labels else ""
            text = head + rest if rest != "." else head or "."
            end = position + 2
            break
        if length > 63:
            raise WireError("label type not supported")
        if length == 0:
            text, end = ".".join(labels) + ".", position + 1
            break
        label = data[position + 1 : position + 1 + length]
        if len(label) != length:
            raise WireError("label runs past the end of the message")
        labels.append(_label_text(label))
        position += 1 + length
    cache[offset] = (text, end)
    return text, end


def _rdata(
    data: bytes, rdtype: int, start: int, end: int, cache: dict[int, tuple[str, int]]
) -> Rdata:
    if rdtype == A and end - start == 4:
        return Rdata(rdtype, address=socket.inet_ntop(socket.AF_INET, data[start:end]))
    if rdtype == AAAA and end - start == 16:
        return Rdata(rdtype, address=socket.inet_ntop(socket.AF_INET6, data[start:end]))
    if rdtype == TXT:
        strings = []
        position = start
        while position < end:
            length = data[position]
            if position + 1 + length > end:
                raise WireError("TXT string runs past its record")
            strings.append(data[position + 1 : position + 1 + length])
            position += 1 + length
        return Rdata(rdtype, strings=tuple(strings))
    if rdtype in (CNAME, PTR, NS):
        return Rdata(rdtype, target=read_name(data, start, cache)[0])
    if rdtype == MX and end - start >= 3:
        return Rdata(
            rdtype,
            preference=int.from_bytes(data[start : start + 2], "big"),
            target=read_name(data, start + 2, cache)[0],
        )
    if rdtype == SRV and end - start >= 7:
        return Rdata(
            rdtype,
            port=int.from_bytes(data[start + 4 : start + 6], "big"),
            target=read_name(data, start + 6, cache)[0],
        )
    if rdtype in (A, AAAA, MX, SRV):
        raise WireError(f"malformed rdata of type {rdtype}")
    return Rdata(rdtype, raw=data[start:end])


def parse(data: bytes, question_length: int, wanted: int) -> Reply:
    """The reply `data` to a one-question query whose question section is `question_length`
    bytes. Answer records of type `wanted` and CNAMEs are decoded; the rest is skipped."""
    if len(data) < 12:
        raise WireError("shorter than a DNS header")
    flags = int.from_bytes(data[2:4], "big")
    qdcount = int.from_bytes(data[4:6], "big")
    ancount = int.from_bytes(data[6:8], "big")
    nscount = int.from_bytes(data[8:10], "big")
    arcount = int.from_bytes(data[10:12], "big")
    if qdcount != 1:
        raise WireError("the reply does not carry our one question")
    position = 12 + question_length
    cache: dict[int, tuple[str, int]] = {}
    answer: list[Record] = []
    authority_soa = False
    extended = 0
    for section, count in ((0, ancount), (1, nscount), (2, arcount)):
        for _ in range(count):
            if section == 0:
                owner, position = read_name(data, position, cache)
            else:
                position = _skip_name(data, position)
            if position + 10 > len(data):
                raise WireError("record header runs past the end of the message")
            rdtype = int.from_bytes(data[position : position + 2], "big")
            rdclass = int.from_bytes(data[position + 2 : position + 4], "big")
            ttl = int.from_bytes(data[position + 4 : position + 8], "big")
            length = int.from_bytes(data[position + 8 : position + 10], "big")
            start, position = position + 10, position + 10 + length
            if position > len(data):
                raise WireError("rdata runs past the end of the message")
            if section == 0 and rdtype in (wanted, CNAME):
                record = _rdata(data, rdtype, start, position, cache)
                answer.append(Record(owner.lower(), rdtype, rdclass, record))
            elif section == 1 and rdtype == SOA:
                authority_soa = True
            elif section == 2 and rdtype == OPT:
                extended = (ttl >> 24) & 0xFF
    return Reply(flags, (extended << 4) | (flags & 0x000F), tuple(answer), authority_soa)


def _skip_name(data: bytes, position: int) -> int:
    while True:
        if position >= len(data):
            raise WireError("name runs past the end of the message")
        length = data[position]
        if length >= 0xC0:
            return position + 2
        if length > 63:
            raise WireError("label type not supported")
        position += 1 + length
        if length == 0:
            return position
