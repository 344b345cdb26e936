"""Bearer-token authentication, roles and ``verb@resource`` permissions."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import math
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from jose import JWTError, jwk, jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from polis_api.config import ConfigError, Settings, is_pem
from polis_api.edge.context import note_tenant
from polis_api.errors import FieldError, Forbidden, Unauthorized, ValidationFailed

VERBS = ("read", "insert", "modify", "destroy")
RESOURCES = (
    "campaigns",
    "contact-household-campaigns",
    "interactions",
    "statuses",
    "households",
    "contact-households",
    "surveys",
    "segments",
    "contacts",
    "notes",
    "lists",
    "turfs",
    "walklists",
    # The tenant's settings (/v1/settings): everyone reads them, admins change them.
    "settings",
    # Read-only for everyone (the catalogue is the same for every tenant); the other
    # verbs exist but no route asks for them.
    "status-groups",
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
        "insert@notes",
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
    # Every role the token names is canvasser or viewer: when the tenant switches
    # viewUnassignedData off, it reads only what is assigned to it (docs/visibility.md).
    assigned_only: bool = False

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
    """Verifies bearer tokens; keeps recent results to spare the crypto.

    Which key: with POLIS_JWT_KEYS set, a token's ``kid`` header must name one of
    them, and a token without ``kid`` is verified with the single key
    (POLIS_JWT_SECRET or POLIS_JWT_PUBLIC_KEY) if one is configured. Without
    POLIS_JWT_KEYS every token is verified with the single key and ``kid`` is
    ignored. Which algorithm: one of POLIS_JWT_ALGORITHMS that fits the key (HS* for
    a shared secret, RS256/ES256 for a PEM key); the ``alg`` header only picks among
    those, so it can never downgrade to ``none`` or turn a public key into an HMAC
    secret.

    A phone sends the same token for an hour, so a small cache of verified claims
    (dropped when the token stops being valid: ``exp`` plus the clock-skew leeway,
    the same instant the decoder would refuse it) removes signature checks from the
    hot path.

    Only a token in its one canonical spelling is accepted (see ``check_token_text``):
    base64 decoders skip trailing junk and padding, so without that rule every
    ``<token>!!!`` would verify as another entry in the cache. The cache is keyed by
    a digest of the token, holds at most POLIS_TOKEN_CACHE_SIZE entries and drops
    the least recently used first, so its memory is bounded whatever clients send.
    """

    def __init__(
        self,
        settings: Settings,
        cache_size: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        default, by_kid = settings.verification_keys()
        algorithms = settings.jwt_algorithms
        single = "POLIS_JWT_SECRET" if settings.uses_hmac else "POLIS_JWT_PUBLIC_KEY"
        self._default = None if default is None else _keys_for(single, default, algorithms)
        self._by_kid = {
            kid: _keys_for(f"POLIS_JWT_KEYS[{kid!r}]", key, algorithms)
            for kid, key in by_kid.items()
        }
        self._leeway = float(settings.jwt_leeway_seconds)
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._cache_size = cache_size if cache_size is not None else settings.token_cache_size
        self._max_length = settings.max_token_length
        # create_app builds one verifier per worker: the point where tokens enter.
        redact_tokens_in_logs()

    def verify(self, token: str) -> Principal:
        now = self._clock()
        _check_length(token, self._max_length)
        key = hashlib.sha256(token.encode()).digest()
        cached = self._cache.get(key)
        if cached is not None:
            if cached[0] > now:
                self._cache.move_to_end(key)
                note_tenant(cached[1].customer_id)  # for the request's log lines
                return cached[1]
            del self._cache[key]
        check_token_text(token, self._max_length)
        claims = self._decode(token)
        valid_until = _check_lifetime(claims, now, self._leeway)
        self._check_issuer_and_audience(claims)
        principal = _principal_from_claims(claims)
        self._cache[key] = (valid_until, principal)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        note_tenant(principal.customer_id)
        return principal

    @property
    def cached_tokens(self) -> int:
        """How many verified tokens are remembered (at most POLIS_TOKEN_CACHE_SIZE)."""
        return len(self._cache)

    def _decode(self, token: str) -> dict[str, Any]:
        """The claims, once the signature checks out with the key the token names."""
        try:
            key, algorithm = self._key_for(jwt.get_unverified_header(token))
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[algorithm], options=_SIGNATURE_ONLY
            )
        except JWTError as exc:
            raise Unauthorized(f"The bearer token is not valid: {_jose_reason(exc)}.") from exc
        except (TypeError, ValueError) as exc:
            # Whatever else a hand-made token may shake loose from the parser.
            raise Unauthorized("The bearer token is not valid: it could not be read.") from exc
        return claims

    def _key_for(self, header: dict[str, Any]) -> tuple[Key, str]:
        kid = header.get("kid")
        if self._by_kid and kid is not None:
            keys = self._by_kid.get(kid) if isinstance(kid, str) else None
            if keys is None:
                # The kid is not echoed: it is the caller's own text.
                raise Unauthorized(
                    "The bearer token is not valid: its key id (kid) names no key "
                    "this server accepts."
                )
        elif self._default is not None:
            keys = self._default
        else:
            raise Unauthorized(
                "The bearer token is not valid: it has no key id (kid), and this server "
                "only accepts tokens that name their key."
            )
        algorithm = header.get("alg")
        key = keys.get(algorithm) if isinstance(algorithm, str) else None
        if key is None:
            raise Unauthorized(
                f"The bearer token is not valid: its algorithm (alg) must be {' or '.join(keys)}."
            )
        return key, str(algorithm)

    def _check_issuer_and_audience(self, claims: dict[str, Any]) -> None:
        if self._issuer is not None and claims.get("iss") != self._issuer:
            raise Unauthorized(
                f"The bearer token is not valid: its 'iss' claim must be '{self._issuer}'."
            )
        if self._audience is not None:
            # RFC 7519 §4.1.3: one string, or an array of them.
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if self._audience not in audiences:
                raise Unauthorized(
                    f"The bearer token is not valid: its 'aud' claim must include "
                    f"'{self._audience}'."
                )


_NOT_CANONICAL = (
    "The bearer token is not valid: it must be three base64url parts (A-Z, a-z, 0-9, "
    "'-' and '_', without '=' padding) joined by dots, exactly as issued."
)
# The signature may be empty (alg "none"), so that such a token is refused for its
# algorithm rather than its spelling.
_JWS_COMPACT = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def _check_length(token: str, max_length: int) -> None:
    if len(token) > max_length:
        raise Unauthorized(
            f"The bearer token is not valid: it is longer than {max_length} characters."
        )


def check_token_text(token: str, max_length: int) -> None:
    """Refuse any spelling of a token but its canonical one (RFC 7515 §7.1, §2).

    Three base64url segments without padding, each the exact encoding of the bytes it
    decodes to: the decoders would also take padding, characters outside the
    alphabet and stray low bits in the last character, each spelling a "new" token
    with the same signature.
    """
    _check_length(token, max_length)
    if not _JWS_COMPACT.fullmatch(token) or not all(
        _is_canonical_base64url(part) for part in token.split(".")
    ):
        raise Unauthorized(_NOT_CANONICAL)


def _is_canonical_base64url(segment: str) -> bool:
    if len(segment) % 4 == 1:  # no byte string encodes to this length
        return False
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return False
    return base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") == segment


# The lifetime claims are checked below, against the verifier's clock and leeway.
_SIGNATURE_ONLY = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
}


def _keys_for(name: str, material: str, algorithms: Iterable[str]) -> dict[str, Key]:
    """One prepared key per configured algorithm that fits ``material``.

    A PEM key is never offered to HS*, nor a secret to RS256/ES256; a PEM that fits
    none of the algorithms is a configuration error at start-up, not a 401 later.
    """
    pem = is_pem(material)
    keys: dict[str, Key] = {}
    for algorithm in algorithms:
        if algorithm.startswith("HS") == pem:
            continue
        try:
            keys[algorithm] = jwk.construct(material, algorithm)
        except (JOSEError, ValueError, TypeError):
            continue  # an RSA key offered to ES256, say
    if not keys:
        raise ConfigError(f"{name} is not a usable key for {', '.join(algorithms)}.")
    return keys


def _check_lifetime(claims: dict[str, Any], now: float, leeway: float) -> float:
    """Refuses a token outside its lifetime, allowing ``leeway`` seconds of clock
    skew either way; returns the instant it stops being valid.

    RFC 7519 §4.1.4 refuses a token "on or after" ``exp``; with the leeway that is on
    or after ``exp + leeway``, in whole and fractional seconds alike.
    """
    exp = _numeric_date(claims, "exp")
    if exp is None:
        raise Unauthorized("The bearer token is not valid: it has no exp claim.")
    if exp + leeway <= now:
        raise Unauthorized("The bearer token is not valid: it has expired.")
    nbf = _numeric_date(claims, "nbf")
    if nbf is not None and nbf - leeway > now:
        raise Unauthorized("The bearer token is not valid: it is not valid yet (nbf).")
    iat = _numeric_date(claims, "iat")
    if iat is not None and iat - leeway > now:
        raise Unauthorized("The bearer token is not valid: it was issued in the future (iat).")
    return exp + leeway


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        seconds = float(value) if is_number else math.nan
    except OverflowError:  # an integer of hundreds of digits
        seconds = math.nan
    if not math.isfinite(seconds):
        raise Unauthorized(
            "The bearer token is not valid: its exp, nbf and iat claims must be numbers."
        )
    return seconds


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
        assigned_only=_assigned_only(roles),
    )


# The roles a tenant's viewUnassignedData=false restricts to their assigned doors.
RESTRICTABLE_ROLES = frozenset({"canvasser", "viewer"})


def _assigned_only(roles: list[Any]) -> bool:
    named = {role for role in roles if isinstance(role, str)}
    return bool(named) and named <= RESTRICTABLE_ROLES


def _uuid_claim(claims: dict[str, Any], name: str, default: uuid.UUID | None = None) -> uuid.UUID:
    value = claims.get(name)
    if value is None and default is not None:
        return default
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise Unauthorized(f"The token's '{name}' claim must be a UUID.") from exc


def bearer_token(request: Request) -> str:
    return token_from_header(authorization_header(request.scope["headers"]))


def authorization_header(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The request's one Authorization header, or None; 400 when it has several.

    Every reader (rate limiter, read fast path, idempotency, route dependencies)
    goes through here, so none can pick a different header than the others.
    """
    found: str | None = None
    for name, value in headers:
        if name.lower() == b"authorization":
            if found is not None:
                raise ValidationFailed(
                    "Send exactly one Authorization header; this request has several.",
                    errors=[FieldError(path="header:authorization", message="must appear once")],
                )
            found = bytes(value).decode("latin-1")
    return found


def token_from_header(header: str | None) -> str:
    if not header:
        raise Unauthorized("Send a bearer token: 'Authorization: Bearer <JWT>'.")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("The Authorization header must be 'Bearer <JWT>'.")
    return token.strip()


# Three base64url parts, the first a JSON object ('{"' encodes as 'eyJ'): a JWS.
_TOKEN_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# The loggers that see request data: uvicorn's request lines (path and query) and
# errors, and our own handlers' messages (method and path).
LOGGERS_WITH_REQUEST_DATA = ("uvicorn.access", "uvicorn.error", "polis_api")


class RedactTokens(logging.Filter):
    """Masks anything shaped like a JWT in a log record.

    polis-api reads tokens only from the Authorization header, which nothing logs;
    this catches the client that sends one where it does not belong (``?token=…``
    in a URL, which uvicorn's access log would otherwise write out verbatim).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redact(arg) for key, arg in record.args.items()}
        return True


def _redact(value: object) -> object:
    return redact_tokens(value) if isinstance(value, str) else value


def redact_tokens(text: str) -> str:
    """``text`` with anything shaped like a JWT masked (the log formatters' last pass)."""
    return _TOKEN_SHAPED.sub("[token]", text)


def redact_tokens_in_logs() -> None:
    for name in LOGGERS_WITH_REQUEST_DATA:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(RedactTokens())


def authenticate(request: Request) -> Principal:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier.verify(bearer_token(request))


async def admit(state: Any, authorization: str | None, permission: str) -> Principal:
    """Who is calling, checked for one permission, with their tenant made to exist."""
    verifier: TokenVerifier = state.verifier
    principal = verifier.verify(token_from_header(authorization))
    principal.require(permission)
    await state.tenants.ensure(principal.customer_id)
    return principal


# Where ``require`` lists the permissions it checked, when the scope asks (idempotency).
CHECKED_PERMISSIONS = "polis.checked_permissions"


def require(permission: str) -> Callable[[Request], Coroutine[Any, Any, Principal]]:
    """A dependency that authenticates and checks one ``verb@resource`` permission."""

    async def dependency(request: Request) -> Principal:
        authorization = authorization_header(request.scope["headers"])
        principal = await admit(request.app.state, authorization, permission)
        checked = request.scope.get(CHECKED_PERMISSIONS)
        if checked is not None:
            checked.append(permission)  # kept with an idempotent answer, asked of a replay
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
    kid: str | None = None,
) -> str:
    """A token signed with a configured HMAC secret (``polis-api token``, tests).

    ``kid`` picks a key of POLIS_JWT_KEYS and is written to the header; without it
    see ``Settings.signing_key``. ``iss`` and ``aud`` are added when configured.
    """
    hmac_algorithms = [alg for alg in settings.jwt_algorithms if alg.startswith("HS")]
    # Without a kid the token would be checked with the single key, which is the
    # public key unless every configured algorithm is HMAC.
    if not hmac_algorithms or (kid is None and not settings.uses_hmac):
        raise ConfigError(
            f"POLIS_JWT_ALGORITHMS={','.join(settings.jwt_algorithms)}: polis-api can only "
            "mint tokens with a shared secret (HS256, HS384, HS512); sign RS256/ES256 "
            "tokens with the private key that belongs to POLIS_JWT_PUBLIC_KEY."
        )
    kid, secret = settings.signing_key(kid)
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
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    headers = {"kid": kid} if kid is not None else None
    return str(jwt.encode(claims, secret, algorithm=hmac_algorithms[0], headers=headers))
