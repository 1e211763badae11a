"""The reply reader against dnspython's: the same names, addresses, strings and numbers for every
record the checks read, on messages dnspython builds (compressed, mixed case, escaped labels)."""

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from maildns import wire
from maildns.transport import encode_question


def reply(qname: str, qtype: str, *answers: tuple[str, str, str], soa: bool = False) -> bytes:
    query = dns.message.make_query(qname, qtype, use_edns=0, payload=1232)
    response = dns.message.make_response(query)
    for owner, rtype, *values in answers:
        response.answer.append(dns.rrset.from_text(owner, 300, "IN", rtype, *values))
    if soa:
        response.authority.append(
            dns.rrset.from_text("example.com.", 300, "IN", "SOA", "ns. h. 1 2 3 4 5")
        )
    return response.to_wire()


def parse(data: bytes, qname: str, qtype: str) -> wire.Reply:
    question = encode_question(qname, dns.rdatatype.from_text(qtype))
    assert question is not None
    return wire.parse(data, len(question), dns.rdatatype.from_text(qtype))


def reference(data: bytes, qtype: str) -> list[tuple[str, int, str]]:
    """(owner, type, what the checks read) per record, as dnspython reads them."""
    out = []
    for rrset in dns.message.from_wire(data).answer:
        if rrset.rdtype not in (dns.rdatatype.from_text(qtype), dns.rdatatype.CNAME):
            continue
        for rd in rrset:
            if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                read = rd.address
            elif rrset.rdtype == dns.rdatatype.TXT:
                read = repr(tuple(rd.strings))
            elif rrset.rdtype == dns.rdatatype.MX:
                read = f"{rd.preference} {rd.exchange}"
            elif rrset.rdtype == dns.rdatatype.SRV:
                read = f"{rd.port} {rd.target}"
            else:
                read = str(rd.target)
            out.append((str(rrset.name).lower(), int(rrset.rdtype), read))
    return sorted(out)


def ours(parsed: wire.Reply) -> list[tuple[str, int, str]]:
    out = []
    for r in parsed.answer:
        d = r.rdata
        if r.rdtype in (wire.A, wire.AAAA):
            read = d.address
        elif r.rdtype == wire.TXT:
            read = repr(d.strings)
        elif r.rdtype == wire.MX:
            read = f"{d.preference} {d.target}"
        elif r.rdtype == wire.SRV:
            read = f"{d.port} {d.target}"
        else:
            read = d.target
        out.append((r.owner, r.rdtype, read))
    return sorted(out)


WEIRD = "we\\(ird\\)\\032na\\;me\\@."  # escaped in dnspython's text form
CASES = [
    ("Ex.Example.com.", "A", [("ex.example.com.", "A", "192.0.2.1", "192.0.2.2")]),
    ("ex.example.com.", "AAAA", [("ex.example.com.", "AAAA", "2001:db8::1", "::ffff:1.2.3.4")]),
    (
        "alias.example.com.",
        "MX",
        [
            ("alias.example.com.", "CNAME", "Mail.Example.com."),
            ("mail.example.com.", "MX", "10 mx.example.com.", "20 a\\.b.Example.org.", "0 ."),
        ],
    ),
    ("t.example.com.", "TXT", [("t.example.com.", "TXT", '"v=spf1 " "-all"', '"q\\"uote\\255"')]),
    ("_imaps._tcp.example.com.", "SRV", [("_imaps._tcp.example.com.", "SRV", "0 1 993 mx.x.")]),
    ("4.3.2.1.in-addr.arpa.", "PTR", [("4.3.2.1.in-addr.arpa.", "PTR", WEIRD)]),
    ("x.example.com.", "A", [("x.example.com.", "TXT", '"not asked for"')]),
]


@pytest.mark.parametrize(("qname", "qtype", "answers"), CASES)
def test_answers_read_as_dnspython_reads_them(
    qname: str, qtype: str, answers: list[tuple[str, ...]]
) -> None:
    data = reply(qname, qtype, *answers)  # type: ignore[arg-type]
    parsed = parse(data, qname, qtype)
    assert ours(parsed) == reference(data, qtype)
    assert parsed.rcode == 0 and not parsed.truncated and not parsed.authority_soa


def test_header_rcodes_flags_and_authority() -> None:
    query = dns.message.make_query("gone.example.com.", "TXT", use_edns=0)
    response = dns.message.make_response(query)
    response.set_rcode(dns.rcode.NXDOMAIN)
    response.flags |= dns.flags.TC
    response.authority.append(
        dns.rrset.from_text("example.com.", 300, "IN", "SOA", "ns. h. 1 2 3 4 5")
    )
    parsed = parse(response.to_wire(), "gone.example.com.", "TXT")
    assert parsed.rcode == dns.rcode.NXDOMAIN and parsed.truncated and parsed.authority_soa
    assert parsed.answer == ()

    response.set_rcode(dns.rcode.BADVERS)  # 16: carried in the OPT record's TTL
    assert parse(response.to_wire(), "gone.example.com.", "TXT").rcode == dns.rcode.BADVERS


def test_malformed_replies_are_refused() -> None:
    good = reply("t.example.com.", "A", ("t.example.com.", "A", "192.0.2.1"))
    for broken in (
        good[:11],  # shorter than a header
        good[:-3],  # the rdata runs past the end
        good[:2] + good[2:4] + b"\x00\x02" + good[6:],  # two questions
    ):
        with pytest.raises(wire.WireError):
            parse(broken, "t.example.com.", "A")
    # A compression pointer that points forward (a loop, if allowed).
    question = encode_question("t.example.com", 1)
    assert question is not None
    forward = good[: 12 + len(question)] + b"\xff\xff" + good[12 + len(question) + 2 :]
    with pytest.raises(wire.WireError):
        parse(forward, "t.example.com.", "A")
