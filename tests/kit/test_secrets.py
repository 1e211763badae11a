"""Generated passwords (kit.secrets.new_password)."""

import string

from kit.secrets import _ALPHABET as ALPHABET
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


def test_every_character_is_equally_likely() -> None:
    # 57 characters, 57,000 draws: each about 1,000 times. A modulo bias (bytes above the last
    # multiple of 57 kept) would draw the first 28 characters 5/4 as often as the rest.
    counts: dict[str, int] = {}
    for ch in "".join(new_password(1000) for _ in range(57)):
        counts[ch] = counts.get(ch, 0) + 1
    assert len(counts) == 57
    # Biased, the first 28 would average about 1,113 and the rest 890; fair, both about 1,000
    # (a group mean's standard deviation is about 6).
    first = [counts[ch] for ch in ALPHABET[:28]]
    rest = [counts[ch] for ch in ALPHABET[28:]]
    assert abs(sum(first) / len(first) - sum(rest) / len(rest)) < 60
