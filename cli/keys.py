"""keys dkim|ssh: fresh key pairs in the formats the stack config wants, as one JSON object on
stdout (`dkimPublicKey` is the DNS p= value of a `penguinmails:domains` entry and
`dkimPrivateKey` the PEM for the secret `penguinmails:dkimPrivateKeys["<domain>"]`;
`sshPublicKey` the OpenSSH line for `penguinmails:sshPublicKey` and `sshPrivateKey` the OpenSSH
PEM for the secret `penguinmails:sshPrivateKey`). With `--private-key-file PATH` the private half
is written there (mode 0600) instead of printed."""

import argparse
import json
import os
from typing import Any


def _write_private(path: str, pem: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(pem)


def _emit(doc: dict[str, str], private_key: str, private_field: str, path: str | None) -> int:
    if path:
        _write_private(path, private_key)
    else:
        doc[private_field] = private_key
    print(json.dumps(doc, indent=2))
    return 0


def _dkim(args: argparse.Namespace) -> int:
    from domain.mail_domains.service import generate_dkim_key

    public, private = generate_dkim_key(args.algorithm, args.bits)
    doc = {"dkimAlgorithm": args.algorithm, "dkimPublicKey": public}
    return _emit(doc, private, "dkimPrivateKey", args.private_key_file)


def _ssh(args: argparse.Namespace) -> int:
    from kit.sshkeys import new_keypair

    public, private = new_keypair()
    return _emit({"sshPublicKey": public}, private, "sshPrivateKey", args.private_key_file)


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="print fresh key pairs for a hand-written stack config")
    ksub = keys.add_subparsers(dest="keys_command", metavar="KIND", required=True)
    p = ksub.add_parser("dkim", help="a DKIM key pair: dkimPublicKey (p=) and the private PEM")
    p.add_argument("--algorithm", choices=("rsa", "ed25519"), default="rsa")
    p.add_argument("--bits", type=int, default=2048, help="RSA key size (default 2048)")
    p.add_argument("--private-key-file", help="write the private key here (0600), not stdout")
    p.set_defaults(handler=_dkim)
    p = ksub.add_parser("ssh", help="an Ed25519 SSH key pair for sshPublicKey / sshPrivateKey")
    p.add_argument("--private-key-file", help="write the private key here (0600), not stdout")
    p.set_defaults(handler=_ssh)
