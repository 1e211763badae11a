"""Mail domains: one row per (workspace, domain) with the domain's DKIM key pair. The private
half is stored encrypted (EncryptedText) and never leaves the service except into the stack's
secret config."""

import base64
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from database.models.mail_domains import MailDomain
from database.models.workspaces import Workspace
from database.scoping import get_owned
from kit.errors import ValidationFailed
from kit.time import utcnow
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
