"""A token is accepted only as issued, in one Authorization header (issue 9).

Base64url decoders skip padding and characters outside the alphabet, so without a
canonical-form rule ``<token>!!!!`` verified as a new token: a new cache entry and a
new rate-limit budget each time. A second Authorization header placed first made
the rate limiter and the read fast path look at different tokens.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from polis_api.auth import TokenVerifier, mint_token
from polis_api.config import Settings
from polis_api.errors import Unauthorized
from tests.builders import SEED_CAMPAIGN, assert_problem, create
from tests.conftest import Tenant

LIMIT = 5
CACHE_SIZE = 3
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _stray_low_bits(last: str) -> str:
    # The last of the 43 characters of an HS256 signature (32 bytes) carries 4 bits
    # of it and 2 zero bits; the next letter of the alphabet sets one of those.
    index = BASE64URL.index(last)
    assert index % 4 == 0
    return BASE64URL[index + 1]


def _respellings(token: str) -> dict[str, str]:
    """Spellings that base64 decoders read as the same bytes as ``token``."""
    header, payload, signature = token.split(".")
    return {
        "trailing junk": token + "!!!!",
        "padding": token + "==",
        "padded payload": f"{header}.{payload}{'=' * (-len(payload) % 4)}=.{signature}",
        "junk inside": f"{header}.{payload[:5]}!{payload[5:]}.{signature}",
        "stray low bits": token[:-1] + _stray_low_bits(token[-1]),
        "standard alphabet": token.replace("-", "+").replace("_", "/")
        if "-" in token or "_" in token
        else token + "+",
    }


@pytest.fixture(scope="module")
async def limited_app(settings: Settings) -> AsyncIterator[FastAPI]:
    from polis_api.app import create_app

    update = {"rate_limit_per_minute": LIMIT, "token_cache_size": CACHE_SIZE}
    app = create_app(settings.model_copy(update=update))
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def limited(limited_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=limited_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
        yield http


@pytest.fixture(scope="module")
async def unlimited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Rate limiting off: the fast path and the routes must refuse two headers alone."""
    from polis_api.app import create_app

    app = create_app(settings.model_copy(update={"rate_limit_per_minute": 0}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
            yield http


@pytest.fixture(autouse=True)
def _not_at_a_window_edge() -> None:
    # A budget resets on the minute; a test straddling it would see two budgets.
    left = 60 - time.time() % 60
    if left < 3:
        time.sleep(left + 0.1)


# --- one spelling per token ----------------------------------------------------------


async def test_the_token_as_issued_is_accepted(client: httpx.AsyncClient, tenant: Tenant) -> None:
    response = await client.get("/v1/campaigns", headers=_bearer(tenant.token("admin")))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "spelling",
    [
        "trailing junk",
        "padding",
        "padded payload",
        "junk inside",
        "stray low bits",
        "standard alphabet",
    ],
)
async def test_any_other_spelling_of_a_valid_token_is_401(
    client: httpx.AsyncClient, tenant: Tenant, spelling: str
) -> None:
    token = tenant.token("admin")
    respelt = _respellings(token)[spelling]
    assert respelt != token

    response = await client.get("/v1/campaigns", headers=_bearer(respelt))

    problem = assert_problem(response, 401, "UNAUTHORIZED")
    assert "base64url" in problem["detail"]


async def test_respellings_neither_grow_the_cache_nor_get_a_budget(
    limited: httpx.AsyncClient, limited_app: FastAPI, tenant: Tenant
) -> None:
    token = tenant.token("admin")
    verifier: TokenVerifier = limited_app.state.verifier
    assert (await limited.get("/v1/campaigns", headers=_bearer(token))).status_code == 200
    cached = verifier.cached_tokens

    for count in range(LIMIT * 3):
        junk = await limited.get("/v1/campaigns", headers=_bearer(token + "!" * (count + 1)))
        assert junk.status_code == 401
        assert "RateLimit-Limit" not in junk.headers

    assert verifier.cached_tokens == cached
    assert (await limited.get("/v1/campaigns", headers=_bearer(token))).headers[
        "RateLimit-Remaining"
    ] == str(LIMIT - 2)


# --- the length bound ------------------------------------------------------------------


def _verifier(settings: Settings, max_length: int) -> TokenVerifier:
    return TokenVerifier(settings.model_copy(update={"max_token_length": max_length}))


def test_a_token_of_the_maximum_length_is_verified(settings: Settings, tenant: Tenant) -> None:
    token = tenant.token("admin")

    principal = _verifier(settings, len(token)).verify(token)

    assert principal.user_id == tenant.user_id


def test_a_token_one_character_longer_than_the_maximum_is_refused(
    settings: Settings, tenant: Tenant
) -> None:
    token = tenant.token("admin")

    with pytest.raises(Unauthorized) as refused:
        _verifier(settings, len(token) - 1).verify(token)

    assert f"longer than {len(token) - 1} characters" in refused.value.detail


async def test_a_two_megabyte_token_is_401_without_being_decoded(
    client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    token = tenant.token("admin")
    header, payload, signature = token.split(".")
    huge = f"{header}.{payload}{'A' * 2_000_000}.{signature}"

    response = await client.get("/v1/campaigns", headers=_bearer(huge))

    problem = assert_problem(response, 401, "UNAUTHORIZED")
    assert f"longer than {settings.max_token_length}" in problem["detail"]


# --- the verified-token cache ----------------------------------------------------------


async def test_the_cache_keeps_at_most_its_size_and_the_most_recent_tokens(
    limited: httpx.AsyncClient, limited_app: FastAPI, settings: Settings
) -> None:
    verifier: TokenVerifier = limited_app.state.verifier
    tenants = [Tenant(settings) for _ in range(CACHE_SIZE + 2)]

    for one in tenants:
        response = await limited.get("/v1/campaigns", headers=one.headers("viewer"))
        assert response.status_code == 200, response.text

    assert verifier.cached_tokens == CACHE_SIZE


def test_the_least_recently_used_token_is_dropped_first(settings: Settings) -> None:
    verifier = TokenVerifier(settings, cache_size=2)
    first, second, third = (Tenant(settings).token("viewer") for _ in range(3))
    verifier.verify(first)
    verifier.verify(second)
    verifier.verify(first)  # now the most recent

    verifier.verify(third)  # drops ``second``

    assert verifier.cached_tokens == 2
    decoded: list[str] = []
    original = verifier._decode  # count the signature checks that the cache spares

    def counting(token: str) -> dict[str, Any]:
        decoded.append(token)
        return original(token)

    verifier._decode = counting  # type: ignore[method-assign]
    verifier.verify(first)
    verifier.verify(third)
    verifier.verify(second)
    assert decoded == [second]


# --- one budget per verified identity --------------------------------------------------


async def test_two_tokens_of_one_user_share_one_budget(
    limited: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    viewer = _bearer(tenant.token("viewer"))
    admin = _bearer(
        mint_token(
            settings,
            roles=["admin"],
            customer_id=tenant.customer_id,
            sub=tenant.user_id,
            ttl_seconds=900,
        )
    )
    assert viewer != admin

    for _ in range(LIMIT):
        assert (await limited.get("/v1/campaigns", headers=viewer)).status_code == 200

    assert_problem(await limited.get("/v1/campaigns", headers=admin), 429, "RATE_LIMITED")


async def test_another_user_of_the_same_tenant_has_a_budget_of_their_own(
    limited: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    for _ in range(LIMIT):
        await limited.get("/v1/campaigns", headers=tenant.headers("viewer"))
    colleague = mint_token(
        settings, roles=["viewer"], customer_id=tenant.customer_id, sub=uuid.uuid4()
    )

    response = await limited.get("/v1/campaigns", headers=_bearer(colleague))

    assert response.status_code == 200, response.text
    assert response.headers["RateLimit-Remaining"] == str(LIMIT - 1)


# --- exactly one Authorization header --------------------------------------------------


def _two_headers(first: str, second: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {first}"), ("Authorization", f"Bearer {second}")]


@pytest.mark.parametrize("junk_first", [True, False], ids=["junk-first", "junk-last"])
@pytest.mark.parametrize("app_name", ["limited", "unlimited"])
async def test_two_authorization_headers_are_400_on_every_route(
    limited: httpx.AsyncClient,
    unlimited: httpx.AsyncClient,
    app_name: str,
    junk_first: bool,
    client: httpx.AsyncClient,
    tenant: Tenant,
) -> None:
    http = limited if app_name == "limited" else unlimited
    token = tenant.token("admin")
    document = await create(client, "/v1/campaigns", SEED_CAMPAIGN, _bearer(token))
    pair = ("junk", token) if junk_first else (token, "junk")
    headers = _two_headers(*pair)

    answers = [
        await http.get(f"/v1/campaigns/{document['id']}", headers=headers),  # fast path
        await http.get("/v1/campaigns", headers=headers),
        await http.post(
            "/v1/campaigns",
            json=SEED_CAMPAIGN,
            headers=[*headers, ("Idempotency-Key", str(uuid.uuid4()))],
        ),
        await http.patch(
            f"/v1/campaigns/{document['id']}",
            json={"data": []},
            headers=[*headers, ("If-Match", document["meta"]["etag"])],
        ),
    ]

    for response in answers:
        problem = assert_problem(response, 400, "VALIDATION_ERROR")
        assert "exactly one Authorization header" in problem["detail"]
    listed = await client.get("/v1/campaigns", headers=_bearer(token))
    assert len(listed.json()["data"]) == 1, "the POST wrote nothing"


async def test_two_identical_authorization_headers_are_400_too(
    limited: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = tenant.token("viewer")

    response = await limited.get("/v1/campaigns", headers=_two_headers(token, token))

    assert_problem(response, 400, "VALIDATION_ERROR")
