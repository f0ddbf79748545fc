"""OAuth2 and the token store: tokens per (provider, tenant), encrypted at rest, refreshed once.

Everything here is importable without psycopg; :class:`PostgresTokenStore` imports it on
first use. See :mod:`.oauth` for the refresh protocol and :mod:`.tokens` for the store Protocol.
"""

from dixis_integrations.auth.crypto import KEY_ENV, TokenCipher
from dixis_integrations.auth.oauth import (
    AuthorizationRequest,
    OAuth2Auth,
    OAuth2Config,
    TokenManager,
    aclient_credentials,
    aexchange_code,
    authorization_url,
    client_credentials,
    code_from_callback,
    exchange_code,
)
from dixis_integrations.auth.postgres import PostgresTokenStore
from dixis_integrations.auth.sqlite import SQLiteTokenStore
from dixis_integrations.auth.tokens import MemoryTokenStore, Token, TokenLockTimeout, TokenStore

__all__ = [
    "KEY_ENV",
    "AuthorizationRequest",
    "MemoryTokenStore",
    "OAuth2Auth",
    "OAuth2Config",
    "PostgresTokenStore",
    "SQLiteTokenStore",
    "Token",
    "TokenCipher",
    "TokenLockTimeout",
    "TokenManager",
    "TokenStore",
    "aclient_credentials",
    "aexchange_code",
    "authorization_url",
    "client_credentials",
    "code_from_callback",
    "exchange_code",
]
