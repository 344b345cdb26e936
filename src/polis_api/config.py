"""Settings, read once from the environment at start-up (SPEC §7)."""

from __future__ import annotations

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

    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_bulk_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_filter_length: int = Field(default=4096, gt=0)
    max_filter_clauses: int = Field(default=64, gt=0)
    max_filter_depth: int = Field(default=32, gt=0)
    max_page_size: int = Field(default=1000, gt=0)
    max_bulk_items: int = Field(default=10_000, gt=0)
    idempotency_ttl_hours: int = Field(default=48, ge=24)
    rate_limit_per_minute: int = Field(default=1200, ge=0)  # 0 turns rate limiting off
    rate_limit_sync_seconds: float = Field(default=0.2, gt=0, le=10)
    pool_min_size: int = Field(default=2, ge=0)
    pool_max_size: int = Field(default=10, gt=0)
    statement_timeout_ms: int = Field(default=30_000, ge=0)

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

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

    def verification_key(self) -> str:
        """The key tokens are verified with: the shared secret or the public key."""
        if self.uses_hmac:
            return self.signing_secret()
        if not self.jwt_public_key:
            raise ConfigError(
                f"POLIS_JWT_ALGORITHMS={','.join(self.jwt_algorithms)} needs "
                "POLIS_JWT_PUBLIC_KEY (a PEM public key)."
            )
        return self.jwt_public_key

    def signing_secret(self) -> str:
        """POLIS_JWT_SECRET, or a generated development secret kept in the data dir.

        A generated secret lets `make run` work with no configuration at all while
        staying stable across restarts, so printed tokens keep working.
        """
        if self.jwt_secret:
            if len(self.jwt_secret) < 32:
                raise ConfigError("POLIS_JWT_SECRET must be at least 32 characters long.")
            return self.jwt_secret
        return _dev_secret(self.data_dir)


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
