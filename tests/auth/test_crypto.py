"""TokenCipher: AES-256-GCM at rest, keys from the environment, errors that hide the key."""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from dixis_integrations.auth import Token, TokenCipher
from dixis_integrations.errors import ConfigurationError


def test_encrypt_then_decrypt_returns_the_plaintext_and_a_new_nonce_each_time() -> None:
    cipher = TokenCipher(TokenCipher.generate_key())
    one = cipher.encrypt(b"hello", associated_data=b"row")
    two = cipher.encrypt(b"hello", associated_data=b"row")
    assert one != two
    assert b"hello" not in one
    assert cipher.decrypt(one, associated_data=b"row") == b"hello"
    assert cipher.decrypt(two, associated_data=b"row") == b"hello"


def test_generated_key_is_32_urlsafe_base64_bytes() -> None:
    key = TokenCipher.generate_key()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert TokenCipher.generate_key() != key


def test_from_env_reads_dixis_token_key() -> None:
    key = TokenCipher.generate_key()
    sealed = TokenCipher(key).encrypt(b"x")
    assert TokenCipher.from_env({"DIXIS_TOKEN_KEY": key}).decrypt(sealed) == b"x"


def test_missing_key_is_a_configuration_error_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError) as info:
        TokenCipher.from_env({})
    assert info.value.key == "DIXIS_TOKEN_KEY"


@pytest.mark.parametrize(
    "bad_key",
    [
        base64.urlsafe_b64encode(b"sixteen-byte-key").decode(),  # AES-128 is not enough
        "not base64 at all: ###-secret-material-###",
        base64.urlsafe_b64encode(b"k" * 33).decode(),
    ],
)
def test_bad_key_is_a_configuration_error_that_never_quotes_the_key(bad_key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        TokenCipher.from_env({"DIXIS_TOKEN_KEY": bad_key})
    assert info.value.key == "DIXIS_TOKEN_KEY"
    for text in (str(info.value), repr(info.value)):
        assert bad_key not in text
        assert "secret-material" not in text


def test_decrypting_with_the_wrong_key_is_a_configuration_error() -> None:
    sealed = TokenCipher(TokenCipher.generate_key()).encrypt(b"x")
    with pytest.raises(ConfigurationError, match="cannot decrypt"):
        TokenCipher(TokenCipher.generate_key()).decrypt(sealed)


def test_a_sealed_token_does_not_open_for_another_tenant() -> None:
    cipher = TokenCipher(TokenCipher.generate_key())
    blob = cipher.seal("xero", "tenant-a", Token(access_token=SecretStr("a")))
    assert cipher.open("xero", "tenant-a", blob).access_token.get_secret_value() == "a"
    with pytest.raises(ConfigurationError):
        cipher.open("xero", "tenant-b", blob)


def test_tampered_blob_is_refused() -> None:
    cipher = TokenCipher(TokenCipher.generate_key())
    blob = bytearray(cipher.encrypt(b"payload"))
    blob[-1] ^= 0x01
    with pytest.raises(ConfigurationError):
        cipher.decrypt(bytes(blob))


def test_previous_keys_still_decrypt_after_rotation() -> None:
    old, new = TokenCipher.generate_key(), TokenCipher.generate_key()
    sealed = TokenCipher(old).encrypt(b"kept")
    rotated = TokenCipher(new, previous_keys=(old,))
    assert rotated.decrypt(sealed) == b"kept"
    # New writes use the new key only.
    with pytest.raises(ConfigurationError):
        TokenCipher(old).decrypt(rotated.encrypt(b"fresh"))


def test_repr_hides_the_key() -> None:
    key = TokenCipher.generate_key()
    assert key not in repr(TokenCipher(key))
