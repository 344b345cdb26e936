"""Token hardening: pinned algorithms, clock skew, iss/aud, key rotation by kid, and
no token in any log (issue 5, item 6)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jose import jwt
from pydantic import ValidationError

from polis_api import cli
from polis_api.app import create_app
from polis_api.auth import TokenVerifier, mint_token
from polis_api.config import ConfigError, Settings, get_settings
from polis_api.errors import Unauthorized
from tests.builders import assert_problem
from tests.conftest import TEST_DATA_DIR, TEST_SECRET, Tenant, _free_port

OLD_KEY = "the-2024-signing-secret-retired-after-rotation-000"
NEW_KEY = "the-2025-signing-secret-that-replaces-the-old-one-1"
ISSUER = "https://id.polis.test/"
AUDIENCE = "polis-api"
LEEWAY = 30
EXP = 1_700_000_000.0  # a fixed instant for the verifier's injected clock


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_secret": TEST_SECRET,
        "data_dir": TEST_DATA_DIR,
        "jwt_leeway_seconds": LEEWAY,
        "jwt_keys": {},
        "jwt_issuer": None,
        "jwt_audience": None,
    }
    return Settings(**{**values, **overrides})


def _claims(tenant: Tenant | None = None, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": str(tenant.user_id if tenant else uuid.uuid4()),
        "customerId": str(tenant.customer_id if tenant else uuid.uuid4()),
        "roles": ["admin"],
        "exp": int(time.time()) + 600,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _signed(
    claims: dict[str, Any], secret: str = TEST_SECRET, *, kid: str | None = None, alg: str = "HS256"
) -> str:
    headers = {"kid": kid} if kid is not None else None
    return str(jwt.encode(claims, secret, algorithm=alg, headers=headers))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        verifier.verify(token)
    return caught.value.detail


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- clock skew: the decoder and the cache agree on the last valid instant ------------


@pytest.mark.parametrize("leeway", [0, LEEWAY])
@pytest.mark.parametrize("path", ["decoder", "cache"])
@pytest.mark.parametrize(("after", "accepted"), [(-0.001, True), (0.0, False), (5.0, False)])
def test_a_token_is_valid_until_exp_plus_the_leeway(
    monkeypatch: pytest.MonkeyPatch, leeway: int, path: str, after: float, accepted: bool
) -> None:
    clock = Clock(EXP - 60)
    verifier = TokenVerifier(_settings(jwt_leeway_seconds=leeway), clock=clock)
    token = _signed(_claims(exp=int(EXP)))
    decoded: list[str] = []
    decode = verifier._decode

    def counted(token: str) -> dict[str, Any]:
        decoded.append(token)
        return decode(token)

    monkeypatch.setattr(verifier, "_decode", counted)
    if path == "cache":
        verifier.verify(token)  # remembered while comfortably valid
        decoded.clear()

    clock.now = EXP + leeway + after

    if accepted:
        verifier.verify(token)
        assert decoded == ([] if path == "cache" else [token]), "cache hit or fresh decode"
    else:
        assert "expired" in _refused(verifier, token)
        assert decoded == [token], "an expired cache entry falls through to the decoder"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize(("ahead", "accepted"), [(LEEWAY - 1, True), (LEEWAY + 1, False)])
def test_nbf_and_iat_may_be_ahead_of_our_clock_by_the_leeway(
    claim: str, ahead: int, accepted: bool
) -> None:
    clock = Clock(EXP - 600)
    verifier = TokenVerifier(_settings(), clock=clock)
    token = _signed(_claims(exp=int(EXP), **{claim: int(clock.now) + ahead}))

    if accepted:
        verifier.verify(token)
    else:
        assert f"({claim})" in _refused(verifier, token)


def test_exp_is_required_whatever_the_leeway() -> None:
    verifier = TokenVerifier(_settings(jwt_leeway_seconds=300))
    token = _signed({k: v for k, v in _claims().items() if k != "exp"})

    assert "no exp claim" in _refused(verifier, token)


def test_leeway_is_bounded() -> None:
    with pytest.raises(ValidationError, match="jwt_leeway_seconds"):
        _settings(jwt_leeway_seconds=301)
    with pytest.raises(ValidationError, match="jwt_leeway_seconds"):
        _settings(jwt_leeway_seconds=-1)


# --- algorithms are pinned by configuration ----------------------------------------------


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def test_rs256_tokens_verify_with_the_public_key(rsa_keys: tuple[str, str]) -> None:
    private_pem, public_pem = rsa_keys
    verifier = TokenVerifier(
        _settings(jwt_secret=None, jwt_algorithms="RS256", jwt_public_key=public_pem)
    )

    verifier.verify(_signed(_claims(), private_pem, alg="RS256"))


@pytest.mark.parametrize("algorithms", ["RS256", "HS256,RS256"])
def test_the_public_key_is_never_an_hmac_secret(rsa_keys: tuple[str, str], algorithms: str) -> None:
    # The classic confusion: sign HS256 with the (public) PEM text as the secret.
    _, public_pem = rsa_keys
    verifier = TokenVerifier(
        _settings(jwt_secret=None, jwt_algorithms=algorithms, jwt_public_key=public_pem)
    )
    forged = _raw_hs256(_claims(), public_pem)

    assert "algorithm (alg) must be RS256" in _refused(verifier, forged)


def test_a_pem_in_the_key_set_is_never_an_hmac_secret(rsa_keys: tuple[str, str]) -> None:
    _, public_pem = rsa_keys
    verifier = TokenVerifier(
        _settings(jwt_algorithms="HS256,RS256", jwt_keys={"idp": public_pem, "ours": NEW_KEY})
    )

    forged = _raw_hs256(_claims(), public_pem, kid="idp")

    assert "algorithm (alg) must be RS256" in _refused(verifier, forged)
    verifier.verify(_signed(_claims(), NEW_KEY, kid="ours"))


@pytest.mark.parametrize("alg", ["HS384", "HS512", "none"])
def test_an_algorithm_not_configured_is_refused_even_with_a_kid(alg: str) -> None:
    verifier = TokenVerifier(_settings(jwt_keys={"new": NEW_KEY}))
    token = (
        _unsigned(_claims(), kid="new")
        if alg == "none"
        else _signed(_claims(), NEW_KEY, kid="new", alg=alg)
    )

    assert "algorithm (alg) must be HS256" in _refused(verifier, token)


def _part(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw_hs256(claims: dict[str, Any], secret: str, kid: str | None = None) -> str:
    """HS256 by hand: python-jose itself refuses a PEM as an HMAC secret."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{_part(header)}.{_part(claims)}"
    digest = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def _unsigned(claims: dict[str, Any], kid: str) -> str:
    return f"{_part({'alg': 'none', 'kid': kid})}.{_part(claims)}."


# --- configuration ---------------------------------------------------------------------


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A clean POLIS_* environment for get_settings() and the CLI."""
    for name in list(os.environ):
        if name.startswith("POLIS_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("POLIS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_keys_are_read_from_a_json_object(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("POLIS_JWT_KEYS", f'{{"2024": "{OLD_KEY}", "2025": "{NEW_KEY}"}}')
    environment.setenv("POLIS_JWT_LEEWAY_SECONDS", "10")
    environment.setenv("POLIS_JWT_ISSUER", ISSUER)
    environment.setenv("POLIS_JWT_AUDIENCE", "")

    settings = get_settings()

    assert settings.jwt_keys == {"2024": OLD_KEY, "2025": NEW_KEY}
    assert (settings.jwt_leeway_seconds, settings.jwt_issuer) == (10, ISSUER)
    assert settings.jwt_audience is None, "an empty variable is unset"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024=secret", "POLIS_JWT_KEYS: Value error, must be a JSON object"),
        ('["a"]', "POLIS_JWT_KEYS: Input should be a valid dictionary"),
        ('{"": "' + NEW_KEY + '"}', "non-empty"),
        ('{"2025": 42}', "POLIS_JWT_KEYS_2025: Input should be a valid string"),
    ],
)
def test_malformed_keys_are_a_configuration_error(
    environment: pytest.MonkeyPatch, value: str, message: str
) -> None:
    environment.setenv("POLIS_JWT_KEYS", value)

    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        get_settings()


def test_a_short_secret_in_the_key_set_is_refused_by_kid() -> None:
    with pytest.raises(ConfigError, match=r"POLIS_JWT_KEYS\['weak'\] must be at least 32"):
        TokenVerifier(_settings(jwt_keys={"weak": "too-short"}))


def test_a_pem_key_needs_an_asymmetric_algorithm(rsa_keys: tuple[str, str]) -> None:
    with pytest.raises(ConfigError, match="has no RS256 or ES256"):
        TokenVerifier(_settings(jwt_keys={"idp": rsa_keys[1]}))


def test_a_malformed_pem_fails_at_start_up() -> None:
    broken = "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"
    with pytest.raises(ConfigError, match="POLIS_JWT_PUBLIC_KEY is not a usable key"):
        TokenVerifier(_settings(jwt_secret=None, jwt_algorithms="RS256", jwt_public_key=broken))


# --- key rotation by kid --------------------------------------------------------------


def test_a_kid_selects_its_key_and_an_unknown_kid_is_refused() -> None:
    verifier = TokenVerifier(_settings(jwt_keys={"2024": OLD_KEY, "2025": NEW_KEY}))

    verifier.verify(_signed(_claims(), OLD_KEY, kid="2024"))
    verifier.verify(_signed(_claims(), NEW_KEY, kid="2025"))
    assert "signature verification failed" in _refused(
        verifier, _signed(_claims(), OLD_KEY, kid="2025")
    )
    for kid in ("2023", "", "2024 "):
        assert "key id (kid) names no key" in _refused(
            verifier, _signed(_claims(), OLD_KEY, kid=kid)
        )
    assert "key id (kid)" in _refused(verifier, _raw_kid(_claims(), 2024))


def _raw_kid(claims: dict[str, Any], kid: Any) -> str:
    return str(jwt.encode(claims, OLD_KEY, algorithm="HS256", headers={"kid": kid}))


def test_without_a_kid_the_single_key_is_used() -> None:
    both = TokenVerifier(_settings(jwt_keys={"2025": NEW_KEY}))
    keys_only = TokenVerifier(_settings(jwt_secret=None, jwt_keys={"2025": NEW_KEY}))

    both.verify(_signed(_claims(), TEST_SECRET))
    assert "no key id (kid)" in _refused(keys_only, _signed(_claims(), TEST_SECRET))
    assert "no key id (kid)" in _refused(keys_only, _signed(_claims(), NEW_KEY))


def test_without_a_key_set_a_kid_is_ignored() -> None:
    # Identity providers put a kid in every token; a single configured key still applies.
    verifier = TokenVerifier(_settings())

    verifier.verify(_signed(_claims(), TEST_SECRET, kid="whatever-the-idp-calls-it"))


# --- over HTTP: an app configured for rotation, issuer and audience ----------------------


def _hardened(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_keys": {"2024": OLD_KEY, "2025": NEW_KEY},
        "jwt_issuer": ISSUER,
        "jwt_audience": AUDIENCE,
        "pool_min_size": 1,
        "pool_max_size": 4,
    }
    return _settings(**{**values, **overrides})


@asynccontextmanager
async def _serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


@pytest.fixture(scope="module")
def hardened_settings(database_url: str) -> Settings:
    return _hardened(database_url)


@pytest.fixture(scope="module")
async def hardened(hardened_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with _serving(hardened_settings) as http:
        yield http


def _token(settings: Settings, tenant: Tenant, kid: str | None = None) -> str:
    return mint_token(
        settings, roles=["viewer"], customer_id=tenant.customer_id, sub=tenant.user_id, kid=kid
    )


async def test_both_keys_work_during_rotation_and_the_old_one_stops_after(
    hardened: httpx.AsyncClient, hardened_settings: Settings, tenant: Tenant, database_url: str
) -> None:
    old = _token(hardened_settings, tenant, kid="2024")
    new = _token(hardened_settings, tenant, kid="2025")
    assert jwt.get_unverified_header(old)["kid"] == "2024"

    during = [await hardened.get("/v1/statuses", headers=_bearer(t)) for t in (old, new)]

    assert [r.status_code for r in during] == [200, 200], [r.text for r in during]
    # The old key is removed from POLIS_JWT_KEYS and the server restarted.
    async with _serving(_hardened(database_url, jwt_keys={"2025": NEW_KEY})) as after:
        refused = await after.get("/v1/statuses", headers=_bearer(old))
        problem = assert_problem(refused, 401, "UNAUTHORIZED")
        assert "key id (kid)" in problem["detail"]
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await after.get("/v1/statuses", headers=_bearer(new))).status_code == 200


async def test_without_kid_the_newest_key_signs(
    hardened: httpx.AsyncClient, database_url: str, tenant: Tenant
) -> None:
    # With no POLIS_JWT_SECRET, `polis-api token` (and the serve banner) use the last key.
    keys_only = _hardened(database_url, jwt_secret=None)
    token = _token(keys_only, tenant)

    assert jwt.get_unverified_header(token)["kid"] == "2025"
    assert (await hardened.get("/v1/statuses", headers=_bearer(token))).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "claim"),
    [
        ({"iss": None}, "'iss'"),
        ({"iss": "https://evil.test/"}, "'iss'"),
        ({"iss": ISSUER.rstrip("/")}, "'iss'"),
        ({"aud": None}, "'aud'"),
        ({"aud": "another-api"}, "'aud'"),
        ({"aud": ["another-api"]}, "'aud'"),
        ({"aud": {"polis-api": True}}, "'aud'"),
    ],
)
async def test_issuer_and_audience_must_match_when_configured(
    hardened: httpx.AsyncClient, tenant: Tenant, overrides: dict[str, Any], claim: str
) -> None:
    claims = _claims(tenant, **{"iss": ISSUER, "aud": AUDIENCE, **overrides})
    token = _signed(claims, NEW_KEY, kid="2025")

    response = await hardened.get("/v1/statuses", headers=_bearer(token))

    problem = assert_problem(response, 401, "UNAUTHORIZED")
    assert claim in problem["detail"], problem
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("audience", [AUDIENCE, ["another-api", AUDIENCE]])
async def test_matching_issuer_and_audience_are_accepted(
    hardened: httpx.AsyncClient, tenant: Tenant, audience: str | list[str]
) -> None:
    token = _signed(_claims(tenant, iss=ISSUER, aud=audience), NEW_KEY, kid="2025")

    response = await hardened.get("/v1/statuses", headers=_bearer(token))

    assert response.status_code == 200, response.text


async def test_issuer_and_audience_are_not_checked_when_unset(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = _signed(_claims(tenant, iss="https://anyone.test/", aud="anything"))

    response = await client.get("/v1/statuses", headers=_bearer(token))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("expired_ago", "status"), [(LEEWAY - 10, 200), (LEEWAY + 10, 401)])
async def test_a_lately_expired_token_is_accepted_within_the_leeway(
    hardened: httpx.AsyncClient, tenant: Tenant, expired_ago: int, status: int
) -> None:
    claims = _claims(tenant, iss=ISSUER, aud=AUDIENCE, exp=int(time.time()) - expired_ago)

    response = await hardened.get(
        "/v1/statuses", headers=_bearer(_signed(claims, NEW_KEY, kid="2025"))
    )

    assert response.status_code == status, response.text


# --- polis-api token -------------------------------------------------------------------


def test_the_token_command_signs_with_kid_and_adds_iss_and_aud(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("POLIS_JWT_KEYS", f'{{"2024": "{OLD_KEY}", "2025": "{NEW_KEY}"}}')
    environment.setenv("POLIS_JWT_ISSUER", ISSUER)
    environment.setenv("POLIS_JWT_AUDIENCE", AUDIENCE)

    assert cli.main(["token", "--role", "viewer", "--kid", "2024"]) == 0

    token = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(token)["kid"] == "2024"
    claims = jwt.decode(token, OLD_KEY, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert (claims["iss"], claims["aud"], claims["roles"]) == (ISSUER, AUDIENCE, ["viewer"])
    TokenVerifier(get_settings()).verify(token)


def test_the_token_command_without_configuration_has_no_kid_iss_or_aud(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["token", "--role", "admin"]) == 0

    token = capsys.readouterr().out.strip()
    assert "kid" not in jwt.get_unverified_header(token)
    assert not {"iss", "aud"} & jwt.get_unverified_claims(token).keys()
    TokenVerifier(get_settings()).verify(token)


@pytest.mark.parametrize(
    ("kid", "message"),
    [("2023", "POLIS_JWT_KEYS has no key '2023' (it has: 2025, idp)"), ("idp", "public key")],
)
def test_the_token_command_refuses_a_kid_it_cannot_sign_with(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    rsa_keys: tuple[str, str],
    kid: str,
    message: str,
) -> None:
    environment.setenv("POLIS_JWT_KEYS", json.dumps({"2025": NEW_KEY, "idp": rsa_keys[1]}))
    environment.setenv("POLIS_JWT_ALGORITHMS", "HS256,RS256")
    environment.setenv("POLIS_JWT_SECRET", TEST_SECRET)

    assert cli.main(["token", "--role", "admin", "--kid", kid]) == 2

    assert message in capsys.readouterr().err


# --- tokens never appear in logs or responses -------------------------------------------


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The suite's app behind a real uvicorn with its access log on, as users run it."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, port=_free_port(), lifespan="off", log_config=None, ws="none", access_log=True
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        await serving


async def test_tokens_appear_in_no_log_record_and_no_response(
    served: str, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    valid = tenant.token()
    invalid = _signed(_claims(tenant), "a-secret-this-server-has-never-heard-of-00000")
    expired = _signed(_claims(tenant, exp=int(time.time()) - 3600))
    requests = [
        ("/v1/statuses", _bearer(valid), 200),
        ("/v1/statuses", _bearer(invalid), 401),
        ("/v1/statuses", _bearer(expired), 401),
        ("/v1/statuses", _bearer(valid[:-3]), 401),
        # The token anywhere but the Authorization header is never read, nor echoed.
        (f"/v1/statuses?token={valid}", {}, 401),
        (f"/v1/statuses?access_token={valid}", _bearer(invalid), 401),
        (f"/v1/statuses/{valid}", _bearer(valid), 400),
        ("/v1/statuses", {"X-Api-Key": valid}, 401),
        ("/v1/statuses", {"Cookie": f"token={valid}"}, 401),
        ("/v1/statuses", {"Authorization": f"Token {valid}"}, 401),
        ("/v1/statuses", {"Authorization": valid}, 401),
    ]

    async with httpx.AsyncClient(base_url=served) as http:
        responses = [await http.get(path, headers=headers) for path, headers, _ in requests]

    for response, (path, _, status) in zip(responses, requests, strict=True):
        assert response.status_code == status, (path[:40], response.text)
        shown = response.text + str(response.headers)
        for token in (valid, invalid, expired):
            assert token.split(".")[1] not in shown, (path[:40], shown)
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert len(access) == len(requests), "every request line was logged"
    assert "GET /v1/statuses?token=[token] HTTP/1.1" in "\n".join(access)
    _assert_no_token_logged(caplog, valid, invalid, expired)


def test_our_own_loggers_mask_tokens_too(app: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    token = _signed(_claims())

    logging.getLogger("polis_api").warning("unhandled error on GET /v1/x?t=%s", token)
    logging.getLogger("uvicorn.error").error(f"Invalid request {token}")

    assert [r.getMessage() for r in caplog.records[-2:]] == [
        "unhandled error on GET /v1/x?t=[token]",
        "Invalid request [token]",
    ]


def _assert_no_token_logged(caplog: pytest.LogCaptureFixture, *tokens: str) -> None:
    # httpx and httpcore are the test's own client, which logs the URLs it requests.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = [logging.Formatter().format(record) for record in server_side]
    for token in tokens:
        payload = token.split(".")[1]
        leaks = [text for text in logged if payload in text]
        assert not leaks, leaks
