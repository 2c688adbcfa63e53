"""Encryption at rest for personal data: Fernet with key rotation (first key encrypts)."""

from __future__ import annotations

from cryptography.fernet import Fernet as _Fernet
from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_keyring: MultiFernet | None = None
_current: _Fernet | None = None  # the first key: what encrypts, what re-keying moves data to


class DecryptionError(RuntimeError):
    """Stored data cannot be read with the configured keys (a key was removed too early)."""


def configure(keys: tuple[str, ...]) -> None:
    """Install the process's keys; called once by create_app from the settings."""
    global _keyring, _current  # noqa: PLW0603 -- the column type needs the keys outside any app context
    fernets = [_Fernet(key) for key in keys]
    _keyring = MultiFernet(fernets)
    _current = fernets[0]


def _ring() -> MultiFernet:
    if _keyring is None:
        raise RuntimeError("encryption keys are not configured (create_app was not called)")
    return _keyring


def encrypt(plain: str) -> str:
    return _ring().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _ring().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise DecryptionError("ciphertext not readable with ALI_ENCRYPTION_KEYS") from None


def rotate(token: str) -> str:
    """Re-encrypt with the current key, for a re-keying job after a key change."""
    try:
        return _ring().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken:
        raise DecryptionError("ciphertext not readable with ALI_ENCRYPTION_KEYS") from None


def is_current(token: str) -> bool:
    """Whether the current (first) key already reads this token: re-keying skips it, so a
    re-keying run stopped halfway resumes where it was."""
    if _current is None:
        raise RuntimeError("encryption keys are not configured (create_app was not called)")
    try:
        _current.decrypt(token.encode("ascii"))
    except InvalidToken:
        return False
    return True


class EncryptedText(TypeDecorator[str]):
    """A text column the database only ever sees encrypted."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else decrypt(value)
