"""Mail domains: one row per (workspace, domain) with the domain's DKIM key pair. The private
half is stored encrypted (EncryptedText) and never leaves the service except into the stack's
secret config.

Ownership: each domain has one owner tenant (`domain_owners`), the only one that may add inboxes
on it. The first tenant to add an inbox on a domain owns it; another tenant takes it over only by
publishing a TXT token (`create_claim`, `verify_claim`), which moves nothing the previous owner
has (docs/dns.md, "Domain ownership")."""

import asyncio
import base64
import concurrent.futures
import secrets
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from database.models.mail_domains import DomainClaim, DomainOwner, MailDomain
from database.models.workspaces import Workspace
from database.scoping import get_owned
from database.transactions import Transaction
from domain.mail_domains.claim_schemas import (
    CLAIM_LABEL,
    CLAIM_PREFIX,
    DomainClaimCreate,
    DomainClaimRead,
)
from kit.errors import Conflict, NotFound, ValidationFailed
from kit.time import utcnow
from maildns.resolver import Answer, Outcome, Resolver
from settings.dns import DnsSettings

_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def normalize_domain(name: str, field: str = "domain") -> str:
    """Lowercase A-label form without the root dot, or a ValidationFailed naming `field`."""
    raw = name.strip().rstrip(".")
    try:
        domain = raw.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValidationFailed(f"{name!r} is not a valid domain name", field=field) from exc
    labels = domain.split(".")
    ok = (
        len(domain) <= 253
        and len(labels) >= 2
        and all(
            0 < len(label) <= 63
            and set(label) <= _LABEL_CHARS
            and not label.startswith("-")
            and not label.endswith("-")
            for label in labels
        )
        and not labels[-1].isdigit()
    )
    if not ok:
        raise ValidationFailed(f"{name!r} is not a valid domain name", field=field)
    return domain


def generate_dkim_key(algorithm: str, bits: int = 2048) -> tuple[str, str]:
    """(public key as published in p=, private key PEM). RSA: SubjectPublicKeyInfo DER in
    base64 (RFC 6376 3.6.1); Ed25519: the raw 32-byte key in base64 (RFC 8463)."""
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return base64.b64encode(public).decode(), private


def new_selector() -> str:
    # Dated, so a rotated key gets a new selector and old signatures stay verifiable.
    return f"pm{utcnow():%Y%m}"


def find(session: Session, workspace_id: uuid.UUID, name: str) -> MailDomain | None:
    return session.scalars(
        select(MailDomain).where(MailDomain.workspace_id == workspace_id, MailDomain.name == name)
    ).first()


def ensure_domain(
    session: Session, workspace: Workspace, domain_name: str, *, settings: DnsSettings
) -> MailDomain:
    """The workspace's mail domain `domain_name`, created with a new DKIM key pair if it does
    not exist yet. Idempotent, also under concurrent calls (the unique constraint decides)."""
    name = normalize_domain(domain_name)
    existing = find(session, workspace.id, name)
    if existing is not None:
        return existing
    algorithm = settings.dkim_algorithm
    public, private = generate_dkim_key(algorithm, settings.dkim_rsa_bits)
    session.execute(
        insert(MailDomain)
        .values(
            id=uuid.uuid4(),
            tenant_id=workspace.tenant_id,
            workspace_id=workspace.id,
            name=name,
            dkim_selector=new_selector(),
            dkim_algorithm=algorithm,
            dkim_public_key=public,
            dkim_private_key_encrypted=private,
        )
        .on_conflict_do_nothing(constraint="uq_mail_domains_workspace_id_name")
    )
    created = find(session, workspace.id, name)
    assert created is not None
    return created


def get(session: Session, tenant_id: uuid.UUID, domain_id: uuid.UUID) -> MailDomain:
    return get_owned(
        session, MailDomain, tenant_id, domain_id, noun="mail domain", field="domain_id"
    )


# Ownership: a domain has one owner tenant, which alone may add inboxes on it (module docs:
# docs/dns.md "Domain ownership").


class DomainClaimed(Conflict):
    """The domain belongs to another tenant. Deliberately the same answer for every address on
    it, existing or not: the caller learns that the domain is taken, nothing per mailbox."""

    code = "domain_claimed"


class ClaimNotVerified(Conflict):
    code = "claim_not_verified"


def require_owner(
    session: Session, tenant_id: uuid.UUID, domain_name: str, *, field: str = "email_address"
) -> str:
    """The normalised domain, owned by `tenant_id`: the first tenant to use a domain becomes its
    owner; for anyone else it is a DomainClaimed. The owner row is held `FOR SHARE` until the
    transaction ends, so a claim being verified (which takes it `FOR UPDATE`) waits for this
    inbox and the inbox never lands on a domain that just changed hands."""
    name = normalize_domain(domain_name, field=field)
    session.execute(
        insert(DomainOwner)
        .values(name=name, tenant_id=tenant_id)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    owner = session.scalar(
        select(DomainOwner.tenant_id).where(DomainOwner.name == name).with_for_update(read=True)
    )
    if owner != tenant_id:
        raise DomainClaimed(
            f"the domain {name} is claimed by another account; to add inboxes on it, prove "
            "control of its DNS with POST /api/v1/workspaces/{id}/domain-claims",
            field=field,
            domain=name,
        )
    return name


def check_owner(
    owner: uuid.UUID | None, tenant_id: uuid.UUID, name: str, *, field: str = "email_address"
) -> None:
    """`require_owner`'s answer for an owner read elsewhere (servers.placement reads it in the
    same statement as the rest of an inbox create's checks)."""
    if owner != tenant_id:
        raise DomainClaimed(
            f"the domain {name} is claimed by another account; to add inboxes on it, prove "
            "control of its DNS with POST /api/v1/workspaces/{id}/domain-claims",
            field=field,
            domain=name,
        )


def owner_of(session: Session, name: str) -> uuid.UUID | None:
    return session.scalar(select(DomainOwner.tenant_id).where(DomainOwner.name == name))


def claim_view(claim: DomainClaim) -> DomainClaimRead:
    return DomainClaimRead(
        id=claim.id,
        workspace_id=claim.workspace_id,
        domain=claim.domain,
        record_name=f"{CLAIM_LABEL}.{claim.domain}",
        value=f"{CLAIM_PREFIX}{claim.token}",
        verified=claim.verified_at is not None,
        verified_at=claim.verified_at,
        created_at=claim.created_at,
    )


def create_claim(
    session: Session, tenant_id: uuid.UUID, workspace_id: uuid.UUID, data: DomainClaimCreate
) -> DomainClaim:
    """A new claim with a fresh token. Claiming a domain the caller already owns is a
    Conflict; an unowned one may be claimed (its first inbox would also make it the
    caller's)."""
    workspace = get_owned(
        session, Workspace, tenant_id, workspace_id, noun="workspace", field="workspace_id"
    )
    name = normalize_domain(data.domain)
    if owner_of(session, name) == tenant_id:
        raise Conflict(f"this account already owns {name}", field="domain")
    claim = DomainClaim(
        tenant_id=tenant_id,
        workspace_id=workspace.id,
        domain=name,
        token=secrets.token_urlsafe(24),
    )
    session.add(claim)
    session.flush()
    session.refresh(claim)
    return claim


def get_claim(session: Session, tenant_id: uuid.UUID, claim_id: uuid.UUID) -> DomainClaim:
    return get_owned(
        session, DomainClaim, tenant_id, claim_id, noun="domain claim", field="claim_id"
    )


def _lookup(record_name: str, settings: DnsSettings) -> Answer:
    """The TXT lookup through our resolver, from synchronous code (also from a thread that
    already runs an event loop)."""

    async def query() -> Answer:
        async with Resolver.from_settings(settings) as resolver:
            return await resolver.query(record_name, "TXT")

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(query())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, query()).result()


def verify_claim(
    tenant_id: uuid.UUID,
    claim_id: uuid.UUID,
    transaction: Transaction,
    settings: DnsSettings,
) -> DomainClaimRead:
    """Look the claim's TXT record up (no transaction open during the lookup) and, when it
    holds the token, make the claimant the domain's owner. Only future inboxes follow the
    owner: the previous owner's inboxes, mail domains (DKIM keys) and DNS records stay as they
    are. Verifying a verified claim answers it again."""
    view = transaction(lambda session: claim_view(get_claim(session, tenant_id, claim_id)))
    if view.verified:
        return view
    answer = _lookup(view.record_name, settings)
    found = [t.strip() for t in answer.texts()] if answer.outcome is Outcome.OK else []
    if view.value not in found:
        seen = f"found {found!r}" if found else answer.describe()
        raise ClaimNotVerified(
            f"the TXT record {view.record_name} does not hold {view.value!r} ({seen}); "
            "publish it, wait for DNS to serve it, then verify again",
            field="domain",
            record_name=view.record_name,
            value=view.value,
        )

    def transfer(session: Session) -> DomainClaimRead:
        # Lock order: the claim, then the domain's owner row (an inbox create holds its
        # workspace, then the owner row FOR SHARE; neither waits for the other's first lock).
        claim = session.scalars(
            select(DomainClaim)
            .where(DomainClaim.tenant_id == tenant_id, DomainClaim.id == claim_id)
            .with_for_update()
        ).first()
        if claim is None:
            raise NotFound("domain claim not found", field="claim_id")
        if claim.verified_at is None:
            now = utcnow()
            session.execute(
                insert(DomainOwner)
                .values(name=claim.domain, tenant_id=tenant_id, claim_id=claim.id)
                .on_conflict_do_update(
                    index_elements=["name"],
                    set_={"tenant_id": tenant_id, "claim_id": claim.id, "updated_at": now},
                )
            )
            claim.verified_at = now
            session.flush()
        return claim_view(claim)

    return transaction(transfer)
