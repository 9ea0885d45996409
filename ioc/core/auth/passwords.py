"""Access control: password policy and argon2id hashing (argon2-cffi); clear passwords are
never stored, logged or compared directly."""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ioc.core.errors import IocError

MIN_LENGTH: Final = 10
# argon2 cost does not grow with length, but a megabyte "password" is an attack, not a password.
MAX_LENGTH: Final = 1024


class PasswordPolicyError(IocError, ValueError):
    """A password that may not be set; the message says why in one line (never echoes it)."""


@lru_cache(maxsize=1)
def hasher() -> PasswordHasher:
    """argon2id with the library's defaults (RFC 9106 low-memory profile)."""
    return PasswordHasher()


def check_policy(password: str) -> None:
    """Raise PasswordPolicyError unless `password` is acceptable."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"password too short (at least {MIN_LENGTH} characters)")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"password too long (at most {MAX_LENGTH} characters)")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise PasswordPolicyError("password contains control characters")
    if password.strip() != password:
        raise PasswordPolicyError("password starts or ends with white space")


def hash_password(password: str) -> str:
    """The PHC string ($argon2id$...) to store; the policy is checked first."""
    check_policy(password)
    return hasher().hash(password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hasher().hash("not-a-real-password-only-burns-time")


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches; an unknown user (None) costs the same time as a known one,
    so response times do not tell which user names exist."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return hasher().verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
