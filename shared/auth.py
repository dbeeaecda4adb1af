"""Who may connect: a JWT checked on $connect (HS256 with a secret, or RS256 against a JWKS).

PyJWT is imported on first use, so that only $connect, and only with auth on, pays for it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from shared.config import AuthSettings
from shared.errors import Unauthorized
from shared.validation import dashboard_id

logger = logging.getLogger(__name__)

TOKEN_PARAMETER = "token"
MAX_SUBJECT_LENGTH = 256
MAX_ALLOWED_DASHBOARDS = 1000
LEEWAY_SECONDS = 30
REFUSED = "Unauthorized"  # all a refused client learns; the log says why

_jwks_clients: dict[str, Any] = {}
_jwks_lock = threading.Lock()


@dataclass(frozen=True)
class Identity:
    user_id: str
    dashboards: list[str] | None  # None: any dashboard


def authenticate(settings: AuthSettings, query: dict[str, str]) -> Identity:
    """The identity a valid token proves; Unauthorized for a missing, malformed, expired or forged one."""
    token = query.get(TOKEN_PARAMETER)
    if not token:
        raise Unauthorized(REFUSED)
    import jwt

    try:
        key, algorithms = _key(settings, token)
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "exp"], "verify_aud": settings.audience is not None},
        )
    except jwt.PyJWTError as error:
        # PyJWT's messages name the failed check, never the token itself.
        logger.info("token refused: %s: %s", type(error).__name__, error)
        raise Unauthorized(REFUSED) from None
    return Identity(user_id=_subject(claims.get("sub")), dashboards=_dashboards(claims))


def _key(settings: AuthSettings, token: str) -> tuple[Any, list[str]]:
    if settings.jwks_url:
        return _jwks_client(settings.jwks_url).get_signing_key_from_jwt(token).key, ["RS256"]
    return settings.jwt_secret, ["HS256"]


def _jwks_client(url: str) -> Any:
    """One PyJWKClient per URL and process: it caches the keys and refetches on an unknown `kid`."""
    from jwt import PyJWKClient

    with _jwks_lock:
        if url not in _jwks_clients:
            _jwks_clients[url] = PyJWKClient(url, cache_keys=True, lifespan=300, timeout=5)
        return _jwks_clients[url]


def _subject(sub: Any) -> str:
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUBJECT_LENGTH or not sub.isprintable():
        logger.info("token refused: unusable sub claim")
        raise Unauthorized(REFUSED)
    return sub


def _dashboards(claims: dict[str, Any]) -> list[str] | None:
    if "dashboards" not in claims:
        return None
    value = claims["dashboards"]
    if not isinstance(value, list) or len(value) > MAX_ALLOWED_DASHBOARDS:
        logger.info("token refused: the dashboards claim is not a list of at most %d", MAX_ALLOWED_DASHBOARDS)
        raise Unauthorized(REFUSED)
    try:
        return sorted({dashboard_id(item) for item in value})
    except Exception:
        logger.info("token refused: the dashboards claim holds an invalid dashboardId")
        raise Unauthorized(REFUSED) from None
