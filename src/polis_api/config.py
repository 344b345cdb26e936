"""Settings, read once from the environment at start-up."""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

JwtAlgorithm = Literal["HS256", "HS384", "HS512", "RS256", "ES256"]
DEV_SECRET_FILE = "jwt-secret"


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message says which variable to set."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POLIS_", extra="ignore", frozen=True)

    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    data_dir: Path = Path(".polis")
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    # NoDecode: "HS256,RS256" is split by the validator below, not parsed as JSON.
    jwt_algorithms: Annotated[tuple[JwtAlgorithm, ...], NoDecode] = ("HS256",)
    # {"kid": "<HMAC secret or PEM public key>", ...}; parsed below so a typo is a
    # clear configuration error rather than pydantic-settings' own.
    jwt_keys: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    jwt_leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None

    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_bulk_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_filter_length: int = Field(default=4096, gt=0)
    max_filter_clauses: int = Field(default=64, gt=0)
    max_filter_depth: int = Field(default=32, gt=0)
    max_page_size: int = Field(default=1000, gt=0)
    max_bulk_items: int = Field(default=10_000, gt=0)
    # Contacts come in voter-file batches: POST and PATCH /v2/contacts/bulk take at
    # most this many items per call (each answered on its own).
    max_contact_bulk_items: int = Field(default=1000, gt=0)
    # How long deleted documents stay findable by the change feed (since=); a sync
    # token older than this is refused with 410 so the client resyncs from scratch.
    tombstone_days: int = Field(default=90, gt=0)
    max_patch_operations: int = Field(
        default=1000,
        gt=0,
        description="Operations one JSON Patch may hold; more is a 400 before any is applied.",
    )
    max_sort_terms: int = Field(
        default=8,
        gt=0,
        description="Sort keys one list request may name (each path counts once); more is a 400.",
    )
    max_near_radius_miles: float = Field(
        default=100,
        gt=0,
        description="The largest radius= (miles) a near= list takes; more is a 400.",
    )
    max_token_length: int = Field(
        default=8192,
        gt=0,
        description="Characters a bearer token may have; a longer one is a 401 before decoding.",
    )
    token_cache_size: int = Field(
        default=4096,
        gt=0,
        description="Verified tokens each worker remembers (least recently used dropped first).",
    )
    idempotency_ttl_hours: int = Field(default=48, ge=24)
    rate_limit_per_minute: int = Field(default=1200, ge=0)  # 0 turns rate limiting off
    rate_limit_sync_seconds: float = Field(default=0.2, gt=0, le=10)
    pool_min_size: int = Field(default=2, ge=0)
    pool_max_size: int = Field(default=10, gt=0)
    statement_timeout_ms: int = Field(default=30_000, ge=0)
    # Every wait on the database is bounded, so a dead or stuck one costs a request
    # seconds, not a worker: opening a connection, and waiting for a free one.
    db_connect_timeout_seconds: float = Field(default=3, gt=0)
    pool_acquire_timeout_seconds: float = Field(default=5, gt=0)
    # How long `serve` lets in-flight requests finish after SIGTERM before cancelling them.
    shutdown_timeout_seconds: int = Field(default=10, ge=0)

    # Connection-level bounds (docs/connections.md): no client holds a worker, a
    # database connection or a transaction for longer than these allow.
    stream_send_timeout_seconds: float = Field(
        default=30,
        gt=0,
        description="A streamed list whose client accepts no bytes for this long is cut off "
        "and its database transaction released.",
    )
    stream_max_seconds: float = Field(
        default=900,
        gt=0,
        description="The longest a streamed list may take from start to end; past it the "
        "body is cut off (page with limit/skip for more).",
    )
    max_streams_per_identity: int = Field(
        default=4,
        gt=0,
        description="Streamed lists one user of one tenant may have open at once, across all "
        "workers; one more is 429 with Retry-After.",
    )
    header_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="A client must send a request's line and headers within this many "
        "seconds of starting it (or of connecting); slower ones are answered 408 and dropped.",
    )
    max_header_bytes: int = Field(
        # 64 KiB: a filter at its 4 KiB bound, percent-encoded (up to 12 bytes a
        # character), still fits, so it is answered by the filter's own 400.
        default=64 * 1024,
        ge=1024,
        description="The most bytes a request's line and headers may take; more is 431.",
    )
    max_survey_questions: int = Field(
        default=200,
        gt=0,
        description="Questions one survey may hold; more is a 400 naming /data/questions.",
    )
    max_survey_options: int = Field(
        default=50,
        gt=0,
        description="Options one survey question may offer; more is a 400 naming the question.",
    )
    max_segment_clauses: int = Field(
        default=50,
        gt=0,
        description="Clauses in one segment's criteria; more is a 400 naming /data/criteria.",
    )
    max_connections: int = Field(
        default=1000,
        gt=0,
        description="Open connections per worker; a request on one past this is 503.",
    )
    # Turfs and walk lists (docs/turfs.md).
    max_turf_positions: int = Field(
        default=10_000,
        gt=0,
        description="Positions a turf's boundary may hold, all rings together; more is a 400.",
    )
    max_walklist_doors: int = Field(
        default=500,
        gt=0,
        description="Doors one walk list may hold: the bound on `size`, on explicit `doors` "
        "(more is a 400) and on the free doors a turf's walk list takes.",
    )
    reservation_hours: float = Field(
        default=8,
        gt=0,
        description="How long a walk list holds its doors: each create and renew sets "
        "expiresAt this far ahead; an expired reservation counts as free.",
    )
    # Data quality (docs/quality.md): the flags' thresholds and the review's bounds.
    far_from_door_miles: float = Field(
        default=0.25,
        gt=0,
        description="An interaction recorded further than this from its household "
        "(data.distance) is flagged far-from-door.",
    )
    low_gps_accuracy_metres: float = Field(
        default=100,
        gt=0,
        description="An interaction whose location.confidence (the phone's accuracy "
        "radius in metres) is larger is flagged low-gps-confidence.",
    )
    max_canvasser_speed_mph: float = Field(
        default=20,
        gt=0,
        description="A knock that implies travelling faster than this from the canvasser's "
        "previous knock is flagged impossible-speed.",
    )
    burst_knocks: int = Field(
        default=10,
        gt=0,
        description="More knocks than this by one canvasser within POLIS_BURST_SECONDS "
        "are flagged burst.",
    )
    burst_seconds: float = Field(default=60, gt=0, le=86_400)
    max_review_canvassers: int = Field(
        default=1000,
        gt=0,
        description="The most canvassers one review answer lists (its `limit`).",
    )
    max_rollback_interactions: int = Field(
        default=10_000,
        gt=0,
        description="The most interactions one rollback may delete; a wider window is a 400.",
    )

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("jwt_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(
                    'must be a JSON object of key ids to keys: {"kid": "<secret or PEM>"}'
                ) from None
        if isinstance(value, dict) and not all(kid and key for kid, key in value.items()):
            raise ValueError("every key id and every key must be a non-empty string")
        return value

    @field_validator("jwt_issuer", "jwt_audience")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @field_validator("database_url")
    @classmethod
    def _asyncpg_scheme(cls, value: str | None) -> str | None:
        # SQLAlchemy-style URLs name the driver; asyncpg wants the plain scheme.
        if value is None or not value.strip():
            return None
        for prefix in ("postgresql+asyncpg://", "postgres+asyncpg://"):
            if value.startswith(prefix):
                return "postgresql://" + value[len(prefix) :]
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("DATABASE_URL must start with postgresql://")
        return value

    @property
    def uses_hmac(self) -> bool:
        return all(alg.startswith("HS") for alg in self.jwt_algorithms)

    def verification_keys(self) -> tuple[str | None, dict[str, str]]:
        """The key for tokens without a ``kid`` (None: such tokens are refused), and
        the keys of POLIS_JWT_KEYS by ``kid``.

        The single key is POLIS_JWT_SECRET (HMAC) or POLIS_JWT_PUBLIC_KEY; the generated
        development secret stands in for it only when no key at all is configured.
        """
        for kid, key in self.jwt_keys.items():
            name = f"POLIS_JWT_KEYS[{kid!r}]"
            if is_pem(key):
                if self.uses_hmac:
                    raise ConfigError(
                        f"{name} is a PEM key, but POLIS_JWT_ALGORITHMS="
                        f"{','.join(self.jwt_algorithms)} has no RS256 or ES256."
                    )
            elif not any(alg.startswith("HS") for alg in self.jwt_algorithms):
                raise ConfigError(
                    f"{name} is a shared secret, but POLIS_JWT_ALGORITHMS="
                    f"{','.join(self.jwt_algorithms)} has no HS256, HS384 or HS512."
                )
            else:
                _check_secret(key, name)
        if self.uses_hmac:
            default = self.signing_secret() if self.jwt_secret or not self.jwt_keys else None
        elif self.jwt_public_key or self.jwt_keys:
            default = self.jwt_public_key or None
        else:
            raise ConfigError(
                f"POLIS_JWT_ALGORITHMS={','.join(self.jwt_algorithms)} needs "
                "POLIS_JWT_PUBLIC_KEY (a PEM public key) or POLIS_JWT_KEYS."
            )
        return default, dict(self.jwt_keys)

    def verification_key(self) -> str | None:
        """Checks every verification key; returns the one for tokens without a ``kid``."""
        return self.verification_keys()[0]

    def signing_key(self, kid: str | None = None) -> tuple[str | None, str]:
        """``(kid, secret)`` that ``polis-api token`` signs with.

        With a kid, that HMAC key of POLIS_JWT_KEYS. Without one, POLIS_JWT_SECRET;
        failing that the last shared secret listed in POLIS_JWT_KEYS (list the newest
        last); failing that the development secret.
        """
        if kid is not None:
            if kid not in self.jwt_keys:
                known = ", ".join(self.jwt_keys) or "none"
                raise ConfigError(f"POLIS_JWT_KEYS has no key {kid!r} (it has: {known}).")
            key = self.jwt_keys[kid]
            if is_pem(key):
                raise ConfigError(
                    f"POLIS_JWT_KEYS[{kid!r}] is a public key; polis-api can only sign "
                    "with a shared secret."
                )
            return kid, _check_secret(key, f"POLIS_JWT_KEYS[{kid!r}]")
        secrets_by_kid = [(k, key) for k, key in self.jwt_keys.items() if not is_pem(key)]
        if self.jwt_secret or not secrets_by_kid:
            return None, self.signing_secret()
        newest, key = secrets_by_kid[-1]
        return newest, _check_secret(key, f"POLIS_JWT_KEYS[{newest!r}]")

    def signing_secret(self) -> str:
        """POLIS_JWT_SECRET, or a generated development secret kept in the data dir.

        A generated secret lets `make run` work with no configuration at all while
        staying stable across restarts, so printed tokens keep working.
        """
        if self.jwt_secret:
            return _check_secret(self.jwt_secret, "POLIS_JWT_SECRET")
        return _dev_secret(self.data_dir)


def is_pem(key: str) -> bool:
    """A PEM public key or certificate, as opposed to a shared HMAC secret."""
    return key.lstrip().startswith("-----BEGIN")


def _check_secret(secret: str, name: str) -> str:
    if len(secret) < 32:
        raise ConfigError(f"{name} must be at least 32 characters long.")
    return secret


def _dev_secret(data_dir: Path) -> str:
    path = data_dir / DEV_SECRET_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return secret


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"POLIS_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"] != ("DATABASE_URL",)
            else f"DATABASE_URL: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid configuration: {problems}") from exc
