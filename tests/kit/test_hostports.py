"""The host[:port] list syntax of the nameserver settings (kit.hostports)."""

import pytest

from kit.hostports import parse_host_ports, split_host_port


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("ns1.example.com:54", ("ns1.example.com", 54)),
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("ns1.example.com", ("ns1.example.com", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("::1", ("::1", 53)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("10.0.0.1:1", ("10.0.0.1", 1)),
        ("10.0.0.1:65535", ("10.0.0.1", 65535)),
    ],
)
def test_split_host_port(item: str, expected: tuple[str, int]) -> None:
    assert split_host_port(item, 53) == expected


@pytest.mark.parametrize(
    "item", ["10.0.0.1:0", "10.0.0.1:65536", "[::1]:70000", "host:-1", "host:dns", "[::1]:"]
)
def test_a_bad_port_raises_value_error(item: str) -> None:
    with pytest.raises(ValueError):
        split_host_port(item, 53)


def test_an_out_of_range_default_port_raises_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        split_host_port("10.0.0.1", 0)


def test_parse_host_ports_separators() -> None:
    expected = [("10.0.0.1", 53), ("::1", 5353), ("ns.example.com", 54), ("2001:db8::1", 53)]
    for spec in (
        "10.0.0.1,[::1]:5353,ns.example.com:54,2001:db8::1",
        "10.0.0.1 [::1]:5353 ns.example.com:54 2001:db8::1",
        " 10.0.0.1 , [::1]:5353,,ns.example.com:54   2001:db8::1 ",
    ):
        assert parse_host_ports(spec, 53) == expected


@pytest.mark.parametrize("spec", [None, "", " , ,"])
def test_parse_host_ports_empty(spec: str | None) -> None:
    assert parse_host_ports(spec, 53) == []


def test_parse_host_ports_refuses_one_bad_item() -> None:
    with pytest.raises(ValueError, match="99999"):
        parse_host_ports("10.0.0.1, 10.0.0.2:99999", 53)
