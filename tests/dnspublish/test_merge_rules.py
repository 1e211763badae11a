"""publish_record's merge rules against an in-memory backend: every outcome's exact detail, what
it owns, and the one change it asks for (or none)."""

from collections.abc import Sequence
from typing import Any

import pytest

from dnspublish.publish import Want, publish_record

ZONE = "example.test."


class Memory:
    description = "memory"

    def __init__(self, records: dict[tuple[str, str], list[str]]) -> None:
        self.records = records
        self.changes: list[dict[str, Any]] = []

    def find_zone(self, fqdn: str) -> str:
        return ZONE

    def read(self, zone: str, fqdn: str, rtype: str) -> list[str]:
        return list(self.records.get((fqdn, rtype), []))

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
        self.changes.append({"fqdn": fqdn, "type": rtype, "add": list(add), "remove": list(remove)})


MX = Want("mx", "MX", ZONE, "10 mail.example.test.")
A = Want("a", "A", "mail.example.test.", "192.0.2.10")
DKIM = Want("dkim", "TXT", "pm1._domainkey.example.test.", "v=DKIM1; p=X")
DMARC = Want("dmarc", "TXT", "_dmarc.example.test.", "v=DMARC1; p=none")

CASES = [
    # want, existing, mx_policy, status, detail, owned, change (add, remove) or None
    (DMARC, [], "keep", "published", "added at _dmarc.example.test.",
     {"added": ["v=DMARC1; p=none"]}, (["v=DMARC1; p=none"], [])),
    (DMARC, ["v=DMARC1; p=none"], "keep", "published",
     "_dmarc.example.test. already has this record", {}, None),
    (DMARC, ["V=DMARC1; p=reject"], "keep", "published",
     "kept the zone's own record at _dmarc.example.test. ('V=DMARC1; p=reject'); "
     "its policy is yours",
     {}, None),
    (MX, ["20 b.other.", "10 a.other."], "keep", "conflict",
     "example.test. already has MX 10 a.other., 20 b.other.: mail to the domain, replies to this "
     "inbox included, goes there and never reaches 10 mail.example.test.; remove it, or set the "
     "domain's mx_policy to replace", {}, None),
    (MX, ["10 a.other."], "replace", "published", "replaced MX 10 a.other. (mx_policy replace)",
     {"added": ["10 mail.example.test."], "replaced": ["10 a.other."]},
     (["10 mail.example.test."], ["10 a.other."])),
    (MX, ["10 MAIL.example.test", "10 a.other."], "replace", "published",
     "replaced MX 10 a.other. (mx_policy replace)", {"added": [], "replaced": ["10 a.other."]},
     ([], ["10 a.other."])),
    (MX, ["10 mail.example.test."], "keep", "published", "example.test. already has this record",
     {}, None),
    (A, ["192.0.2.99"], "replace", "conflict",
     "mail.example.test. already has A 192.0.2.99; the mail host must resolve to 192.0.2.10 only. "
     "Remove it or use another hostname", {}, None),
    (A, [], "keep", "published", "added at mail.example.test.",
     {"added": ["192.0.2.10"], "replaced": []}, (["192.0.2.10"], [])),
    (DKIM, ["v=DKIM1; p=OLD"], "keep", "published", "added at pm1._domainkey.example.test.",
     {"added": ["v=DKIM1; p=X"], "replaced": []}, (["v=DKIM1; p=X"], [])),
]  # fmt: skip


@pytest.mark.parametrize(
    ("want", "existing", "policy", "status", "detail", "owned", "change"), CASES
)
def test_merge_rule(
    want: Want,
    existing: list[str],
    policy: str,
    status: str,
    detail: str,
    owned: dict[str, Any],
    change: tuple[list[str], list[str]] | None,
) -> None:
    backend = Memory({(want.fqdn, want.type): existing})
    out = publish_record(backend, want, mx_policy=policy)
    assert (out.status, out.detail, out.owned, out.zone) == (status, detail, owned, ZONE)
    if change is None:
        assert backend.changes == []
    else:
        assert backend.changes == [
            {"fqdn": want.fqdn, "type": want.type, "add": change[0], "remove": change[1]}
        ]
