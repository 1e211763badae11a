"""cli.stack.load_stack_file on its own: what each kind of value in a Pulumi.<stack>.yaml turns
into, which secrets are noted as encrypted or in clear, and how given secrets lay over them."""

import json

from cli.stack import load_stack_file

PEM = "-----BEGIN PRIVATE KEY-----\nencrypted\n-----END PRIVATE KEY-----\n"
FILE = """
config:
  aws:region: eu-west-1
  penguinmails:hetznerToken: tok-in-clear
  penguinmails:stalwartAdminPassword:
    secure: v1:abc
  penguinmails:sshPrivateKey:
    secure: v1:abc
  penguinmails:zoneTtl: 300
  penguinmails:domains:
    - name: Example.COM
    - name: other.test
    - not-a-mapping
  penguinmails:mailboxes:
    - address: a@example.com
  penguinmails:dkimPrivateKeys:
    secure: v1:abc
  penguinmails:mailboxPasswords:
    a@example.com:
      secure: v1:abc
    b@example.com: plain
"""


def test_each_kind_of_value_and_the_secrets_noted() -> None:
    values, encrypted, in_clear = load_stack_file(FILE)
    assert "aws:region" not in values
    assert values["penguinmails:hetznerToken"] == "tok-in-clear"
    assert values["penguinmails:stalwartAdminPassword"] == "encrypted-placeholder-password"
    assert (
        values["penguinmails:sshPrivateKey"] == "-----BEGIN OPENSSH PRIVATE KEY-----\nencrypted\n"
    )
    assert values["penguinmails:zoneTtl"] == "300"  # not a str: JSON text
    assert json.loads(values["penguinmails:dkimPrivateKeys"]) == {
        "example.com": PEM,
        "other.test": PEM,
    }
    assert json.loads(values["penguinmails:mailboxPasswords"]) == {
        "a@example.com": "encrypted-placeholder-password",
        "b@example.com": "plain",
    }
    assert encrypted == [
        "penguinmails:stalwartAdminPassword",
        "penguinmails:sshPrivateKey",
        "penguinmails:dkimPrivateKeys",
        'penguinmails:mailboxPasswords["a@example.com"]',
    ]
    assert in_clear == [
        "penguinmails:hetznerToken",
        'penguinmails:mailboxPasswords["b@example.com"]',
    ]


def test_given_secrets_lay_over_the_file_and_are_no_longer_encrypted() -> None:
    values, encrypted, in_clear = load_stack_file(
        FILE,
        {
            "penguinmails:sshPrivateKey": "KEY",
            'mailboxPasswords["a@example.com"]': "pw",
            'hostwindsApiKey["x"]': "h",
        },
    )
    assert values["penguinmails:sshPrivateKey"] == "KEY"
    assert json.loads(values["penguinmails:mailboxPasswords"]) == {
        "a@example.com": "pw",
        "b@example.com": "plain",
    }
    assert json.loads(values["penguinmails:hostwindsApiKey"]) == {"x": "h"}
    assert encrypted == ["penguinmails:stalwartAdminPassword", "penguinmails:dkimPrivateKeys"]
    assert in_clear == [
        "penguinmails:hetznerToken",
        'penguinmails:mailboxPasswords["b@example.com"]',
    ]


def test_an_empty_file_has_no_values() -> None:
    assert load_stack_file("") == ({}, [], [])
