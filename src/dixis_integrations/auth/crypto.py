"""Encryption at rest for stored tokens: AES-256-GCM with a fresh nonce per write.

The key is 32 bytes, base64 urlsafe encoded, passed in or read from ``DIXIS_TOKEN_KEY``.
Each ciphertext is bound to its (provider, tenant) as associated data, so a row copied to
another tenant does not decrypt. Errors name the setting, never the key.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dixis_integrations.auth.tokens import Token
from dixis_integrations.errors import ConfigurationError

__all__ = ["KEY_ENV", "TokenCipher"]

KEY_ENV = "DIXIS_TOKEN_KEY"
_VERSION = b"\x01"
_NONCE_BYTES = 12


def _decode_key(encoded: str | bytes) -> bytes:
    text = encoded.decode("ascii", "replace") if isinstance(encoded, bytes) else encoded
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "is not valid base64 (urlsafe); create one with TokenCipher.generate_key()",
            key=KEY_ENV,
        ) from None
    if len(raw) != 32:
        raise ConfigurationError(
            f"must decode to 32 bytes, got {len(raw)}; create one with TokenCipher.generate_key()",
            key=KEY_ENV,
        )
    return raw


class TokenCipher:
    """Encrypts and decrypts token blobs with AES-256-GCM.

    ``previous_keys`` are tried for decryption only, so a key can be rotated without
    losing stored tokens: new writes always use ``key``.
    """

    __slots__ = ("_aead", "_previous")

    def __init__(self, key: str | bytes, *, previous_keys: tuple[str | bytes, ...] = ()) -> None:
        self._aead = AESGCM(_decode_key(key))
        self._previous = tuple(AESGCM(_decode_key(k)) for k in previous_keys)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TokenCipher:
        """A cipher keyed by ``DIXIS_TOKEN_KEY``; a missing key is a ``ConfigurationError``."""
        env = os.environ if environ is None else environ
        value = env.get(KEY_ENV)
        if not value:
            raise ConfigurationError(
                "is not set; tokens are encrypted at rest and need a key "
                "(create one with TokenCipher.generate_key())",
                key=KEY_ENV,
            )
        return cls(value)

    @staticmethod
    def generate_key() -> str:
        """A new random key, ready for ``DIXIS_TOKEN_KEY``."""
        return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii")

    def encrypt(self, plaintext: bytes, *, associated_data: bytes = b"") -> bytes:
        """``version || nonce || ciphertext+tag``, with a fresh random nonce."""
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated_data)

    def decrypt(self, blob: bytes, *, associated_data: bytes = b"") -> bytes:
        """The plaintext of a blob made by :meth:`encrypt` with the same associated data."""
        if len(blob) < 1 + _NONCE_BYTES + 16 or blob[:1] != _VERSION:
            raise ConfigurationError("stored token blob is not in a known format", key=KEY_ENV)
        nonce, body = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        for aead in (self._aead, *self._previous):
            try:
                return aead.decrypt(nonce, body, associated_data)
            except InvalidTag:
                continue
        raise ConfigurationError(
            "cannot decrypt a stored token: the key is not the one it was written with, "
            "or the row was altered",
            key=KEY_ENV,
        )

    def seal(self, provider: str, tenant: str, token: Token) -> bytes:
        """``token`` encrypted and bound to (provider, tenant): what a store writes."""
        return self.encrypt(token.to_bytes(), associated_data=_binding(provider, tenant))

    def open(self, provider: str, tenant: str, blob: bytes) -> Token:
        """The token a store read back; fails if the blob belongs to another row."""
        return Token.from_bytes(
            self.decrypt(bytes(blob), associated_data=_binding(provider, tenant))
        )

    def __repr__(self) -> str:
        return "TokenCipher(<key hidden>)"


def _binding(provider: str, tenant: str) -> bytes:
    return b"dixis-token\x00" + provider.encode() + b"\x00" + tenant.encode()
