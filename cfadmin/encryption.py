"""Secrets at rest: MultiFernet over the keys in settings.SECRETS_ENCRYPTION_KEYS.

Encrypts with the first key, decrypts with any, so keys rotate without downtime. A token that no
key can open raises `InvalidToken`: we let it, because returning the ciphertext would push it to
Coolify as if it were the API key.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt", "encrypt", "mask", "needs_rotation", "rotate"]

MASK = "••••"
# Below this length even a partial reveal gives away too much of the value.
MASK_REVEAL_MIN_LENGTH = 16


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip().encode()))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"SECRETS_ENCRYPTION_KEYS: key #{position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes, 44 characters)."
            ) from exc
    if not fernets:
        raise ImproperlyConfigured("SECRETS_ENCRYPTION_KEYS is empty.")
    return MultiFernet(fernets)


def _fernet() -> MultiFernet:
    return _multifernet(tuple(settings.SECRETS_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode("ascii")).decode("utf-8")


def rotate(token: str) -> str:
    """Re-encrypt a token under the current first key."""
    return _fernet().rotate(token.encode("ascii")).decode("ascii")


def needs_rotation(token: str) -> bool:
    """True when the first (current) key cannot open the token."""
    current = _multifernet((settings.SECRETS_ENCRYPTION_KEYS[0],))
    try:
        current.decrypt(token.encode("ascii"))
    except InvalidToken:
        return True
    return False


def mask(plaintext: str) -> str:
    """`sk-…f3a9` for long values, `••••` for short ones: enough to recognise, not to use."""
    if len(plaintext) < MASK_REVEAL_MIN_LENGTH:
        return MASK
    return f"{plaintext[:3]}…{plaintext[-4:]}"
