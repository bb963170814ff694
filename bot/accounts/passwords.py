"""Password hashing with Argon2id (argon2-cffi, RFC 9106 parameters), and generated passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.accounts.records import BadAccountInput

PASSWORD_MIN = 12
PASSWORD_MAX = 1024  # Argon2 takes any length; a cap keeps a huge body from costing a hash of it

_hasher = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4: the library's RFC 9106 "low memory" profile
# Checked when an account does not exist, so that a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def check_strength(password: str) -> None:
    """Refuse passwords too short (under 12 characters) or absurdly long."""
    if len(password) < PASSWORD_MIN:
        raise BadAccountInput(f"a password has at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise BadAccountInput(f"a password has at most {PASSWORD_MAX} characters")


def hash_password(password: str) -> str:
    """The Argon2id hash to store (salt and parameters included)."""
    check_strength(password)
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored hash; with no hash, spends the same time and says no."""
    if len(password) > PASSWORD_MAX:
        return False
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a hash was made with older parameters and should be replaced at the next sign-in."""
    return _hasher.check_needs_rehash(stored)


def generate_password() -> str:
    """A random password for a new account or a reset: 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)
