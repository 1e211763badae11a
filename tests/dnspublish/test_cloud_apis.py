"""The Cloudflare and Hetzner Cloud DNS backends: the requests they send (paths, bodies, auth)
against in-memory fakes of the documented APIs mounted as the session's transport, and the
merge rules through them."""

import requests

from dnspublish.cloudflare import CloudflareBackend
from dnspublish.hetzner import HetznerBackend
from dnspublish.publish import Want, publish_record, remove_record
from tests.support.fake_dns_apis import FakeCloudflare, FakeHetzner

TOKEN = "cf-token-0123456789abcdef"
THEIRS = "v=spf1 include:_spf.google.com ~all"


def cloudflare(zones: dict[str, list[dict[str, object]]], token: str = TOKEN):  # type: ignore[no-untyped-def]
    fake = FakeCloudflare(token=TOKEN, zones=zones)
    session = requests.Session()
    session.mount("https://api.cloudflare.com/", fake)
    return fake, CloudflareBackend(token, session=session)


def test_cloudflare_request_shapes_and_merge() -> None:
    fake, b = cloudflare(
        {
            "corp.example": [
                {
                    "id": "a" * 32,
                    "type": "TXT",
                    "name": "corp.example",
                    "content": THEIRS,
                    "ttl": 1,
                },
                {
                    "id": "b" * 32,
                    "type": "TXT",
                    "name": "corp.example",
                    "content": "MS=ms1",
                    "ttl": 1,
                },
            ]
        }
    )
    mx = publish_record(b, Want("mx", "MX", "corp.example", "10 mail.corp.example.", 300))
    assert mx.status == "published" and mx.zone == "corp.example", mx.detail
    post = next(s for s in fake.requests if s.method == "POST")
    assert post.path == f"/client/v4/zones/{fake.zone_id('corp.example')}/dns_records"
    assert post.body == {
        "type": "MX",
        "name": "corp.example",
        "content": "mail.corp.example",
        "priority": 10,
        "ttl": 300,
    }
    assert post.headers["Authorization"] == f"Bearer {TOKEN}"
    lookup = fake.requests[0]
    assert (lookup.method, lookup.path, lookup.params) == (
        "GET",
        "/client/v4/zones",
        {"name": "corp.example"},
    )

    spf = Want("spf", "TXT", "corp.example", "v=spf1 ip4:192.0.2.5 ~all", 300)
    out = publish_record(b, spf)
    assert out.status == "published", out.detail
    merged = "v=spf1 include:_spf.google.com ip4:192.0.2.5 ~all"
    assert fake.values("corp.example", "corp.example", "TXT") == sorted([merged, "MS=ms1"])
    deleted = [s for s in fake.requests if s.method == "DELETE"]
    assert [d.path.rsplit("/", 1)[1] for d in deleted] == ["a" * 32]  # only the old SPF
    remove_record(b, spf, out.owned, zone="corp.example")
    assert fake.values("corp.example", "corp.example", "TXT") == sorted([THEIRS, "MS=ms1"])
    assert fake.values("corp.example", "corp.example", "MX") == ["10 mail.corp.example"]


def test_cloudflare_wrong_token_is_a_clear_error() -> None:
    _, b = cloudflare({"corp.example": []}, token="wrong")
    out = publish_record(b, Want("a", "A", "mail.corp.example", "192.0.2.5"))
    assert out.status == "error"
    assert "HTTP 403" in out.detail and "Authentication error" in out.detail


def hetzner(zones: dict[str, dict[tuple[str, str], list[str]]], token: str = TOKEN):  # type: ignore[no-untyped-def]
    fake = FakeHetzner(token=TOKEN, zones=zones)
    session = requests.Session()
    session.mount("https://api.hetzner.cloud/", fake)
    return fake, HetznerBackend(token, session=session)


def test_hetzner_request_shapes_and_merge() -> None:
    fake, b = hetzner({"corp.example": {("@", "TXT"): [f'"{THEIRS}"', '"site=x"']}})
    dkim_value = "v=DKIM1; k=rsa; p=" + "C" * 300
    dkim = publish_record(
        b, Want("dkim", "TXT", "pm1._domainkey.mail.corp.example", dkim_value, 600)
    )
    assert dkim.status == "published" and dkim.zone == "corp.example", dkim.detail
    # The zone is found by walking up the name: each candidate asked until one exists.
    assert [s.path for s in fake.requests[:4]] == [
        "/v1/zones/pm1._domainkey.mail.corp.example",
        "/v1/zones/_domainkey.mail.corp.example",
        "/v1/zones/mail.corp.example",
        "/v1/zones/corp.example",
    ]
    add = next(s for s in fake.requests if s.path.endswith("/add_records"))
    assert add.method == "POST"
    assert add.path == "/v1/zones/corp.example/rrsets/pm1._domainkey.mail/TXT/actions/add_records"
    chunks = add.body["records"][0]["value"]
    assert add.body["ttl"] == 600 and chunks.startswith('"v=DKIM1; k=rsa; p=C') and '" "' in chunks
    assert add.headers["Authorization"] == f"Bearer {TOKEN}"

    spf = Want("spf", "TXT", "corp.example", "v=spf1 ip4:192.0.2.5 ~all")
    out = publish_record(b, spf)
    assert out.status == "published", out.detail
    assert fake.zones["corp.example"][("@", "TXT")] == [
        '"site=x"',
        '"v=spf1 include:_spf.google.com ip4:192.0.2.5 ~all"',
    ]
    remove_record(b, spf, out.owned, zone="corp.example")
    assert sorted(fake.zones["corp.example"][("@", "TXT")]) == sorted([f'"{THEIRS}"', '"site=x"'])


def test_hetzner_wrong_token_is_a_clear_error() -> None:
    _, b = hetzner({"corp.example": {}}, token="wrong")
    out = publish_record(b, Want("a", "A", "mail.corp.example", "192.0.2.5"))
    assert out.status == "error" and "HTTP 401" in out.detail and "unauthorized" in out.detail
