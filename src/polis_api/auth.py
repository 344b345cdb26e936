"""Bearer-token authentication, roles and ``verb@resource`` permissions (SPEC §3)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from jose import JWTError, jwt

from polis_api.config import ConfigError, Settings
from polis_api.errors import Forbidden, Unauthorized

VERBS = ("read", "insert", "modify", "destroy")
RESOURCES = (
    "campaigns",
    "contact-household-campaigns",
    "interactions",
    "statuses",
    "households",
    "contact-households",
)
ALL_PERMISSIONS = frozenset(f"{verb}@{resource}" for verb in VERBS for resource in RESOURCES)
_VIEWER = frozenset(f"read@{resource}" for resource in RESOURCES)
ROLES: dict[str, frozenset[str]] = {
    "viewer": _VIEWER,
    "canvasser": _VIEWER
    | {
        "insert@interactions",
        "insert@contact-household-campaigns",
        "modify@contact-household-campaigns",
    },
    "admin": ALL_PERMISSIONS,
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, for which tenant, allowed to do what."""

    user_id: uuid.UUID
    customer_id: uuid.UUID
    security_group_id: uuid.UUID
    permissions: frozenset[str]

    def require(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Forbidden(f"This token lacks the permission '{permission}'.")


def permissions_for(roles: Iterable[str], permissions: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLES.get(role, frozenset())
    granted |= {p for p in permissions if p in ALL_PERMISSIONS}
    return frozenset(granted)


class TokenVerifier:
    """Decodes tokens with pinned algorithms; keeps recent results to spare the crypto.

    A phone sends the same token for an hour, so a small cache of verified claims
    (dropped at the token's own ``exp``) removes signature checks from the hot path.
    """

    def __init__(self, settings: Settings, cache_size: int = 4096) -> None:
        self._key = settings.verification_key()
        self._algorithms = list(settings.jwt_algorithms)
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._cache_size = cache_size

    def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None and cached[0] > now:
            return cached[1]
        claims = self._decode(token)
        expires = _expiry(claims, now)
        principal = _principal_from_claims(claims)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = (expires, principal)
        return principal

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                options={"require_exp": True, "verify_aud": False},
            )
        except JWTError as exc:
            raise Unauthorized(f"The bearer token is not valid: {_jose_reason(exc)}.") from exc
        except (TypeError, ValueError, OverflowError) as exc:
            # python-jose lets a null, list or infinite exp/nbf/iat escape as these.
            raise Unauthorized(
                "The bearer token is not valid: its exp, nbf and iat claims must be numbers."
            ) from exc
        return claims


def _expiry(claims: dict[str, Any], now: float) -> float:
    """``exp`` as seconds, refused once reached (RFC 7519 §4.1.4: "on or after").

    python-jose compares whole seconds and lets a token live through its last one;
    checking here keeps the decoder and the cache in agreement.
    """
    exp = claims["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise Unauthorized("The bearer token is not valid: its exp claim must be a number.")
    if exp <= now:
        raise Unauthorized("The bearer token is not valid: signature has expired.")
    return float(exp)


def _jose_reason(exc: JWTError) -> str:
    text = str(exc).rstrip(".")
    return text[:1].lower() + text[1:] if text else "it could not be verified"


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    roles = claims.get("roles") or []
    permissions = claims.get("permissions") or []
    if not isinstance(roles, list) or not isinstance(permissions, list):
        raise Unauthorized("The token's 'roles' and 'permissions' claims must be lists.")
    customer_id = _uuid_claim(claims, "customerId")
    return Principal(
        user_id=_uuid_claim(claims, "sub"),
        customer_id=customer_id,
        security_group_id=_uuid_claim(claims, "securityGroupId", default=customer_id),
        permissions=permissions_for(
            (r for r in roles if isinstance(r, str)),
            (p for p in permissions if isinstance(p, str)),
        ),
    )


def _uuid_claim(claims: dict[str, Any], name: str, default: uuid.UUID | None = None) -> uuid.UUID:
    value = claims.get(name)
    if value is None and default is not None:
        return default
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise Unauthorized(f"The token's '{name}' claim must be a UUID.") from exc


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("Send a bearer token: 'Authorization: Bearer <JWT>'.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <JWT>'.")
    return token.strip()


def authenticate(request: Request) -> Principal:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(bearer_token(request))


def require(permission: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency that authenticates and checks one ``verb@resource`` permission."""

    async def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        principal.require(permission)
        await request.app.state.tenants.ensure(principal.customer_id)
        return principal

    dependency.__name__ = f"require_{permission.replace('@', '_at_').replace('-', '_')}"
    return dependency


def mint_token(
    settings: Settings,
    *,
    roles: list[str],
    customer_id: uuid.UUID,
    sub: uuid.UUID,
    security_group_id: uuid.UUID | None = None,
    ttl_seconds: int = 3600,
    permissions: list[str] | None = None,
) -> str:
    """A signed token for the configured HMAC secret (``polis-api token``, tests)."""
    if not settings.uses_hmac:
        raise ConfigError(
            f"POLIS_JWT_ALGORITHMS={','.join(settings.jwt_algorithms)}: polis-api can only "
            "mint tokens with a shared secret (HS256, HS384, HS512); sign RS256/ES256 "
            "tokens with the private key that belongs to POLIS_JWT_PUBLIC_KEY."
        )
    claims: dict[str, Any] = {
        "sub": str(sub),
        "customerId": str(customer_id),
        "securityGroupId": str(security_group_id or customer_id),
        "roles": roles,
        "exp": int(time.time()) + ttl_seconds,
        "iat": int(time.time()),
    }
    if permissions:
        claims["permissions"] = permissions
    return str(jwt.encode(claims, settings.signing_secret(), algorithm=settings.jwt_algorithms[0]))
