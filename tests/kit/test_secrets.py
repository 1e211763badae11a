"""Generated passwords (kit.secrets.new_password)."""

import string

from kit.secrets import new_password

LOOK_ALIKES = set("0O1lI")


def test_default_length_and_charset() -> None:
    passwords = [new_password() for _ in range(300)]
    assert {len(p) for p in passwords} == {24}
    used = set("".join(passwords))
    assert used <= set(string.ascii_letters + string.digits)
    assert not used & LOOK_ALIKES
    # 7200 characters drawn: lower case, upper case and digits all show up.
    assert used & set(string.ascii_lowercase)
    assert used & set(string.ascii_uppercase)
    assert used & set(string.digits)


def test_passwords_are_unique() -> None:
    passwords = [new_password() for _ in range(500)]
    assert len(set(passwords)) == len(passwords)


def test_length_is_honoured() -> None:
    for length in (1, 8, 16, 64):
        assert len(new_password(length)) == length
