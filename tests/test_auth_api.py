"""Tokens, roles and tenancy through HTTP (SPEC §3, §1)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from jose import jwt

from polis_api.auth import mint_token
from polis_api.config import Settings
from tests.builders import SEED_CAMPAIGN, assert_problem, campaign, create, if_match
from tests.conftest import TEST_SECRET, Tenant

WRONG_SECRET = "a-different-secret-that-is-also-long-enough-0123456789"


def _b64url(value: dict[str, Any] | list[Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_DROP = object()  # a claim to leave out


def _claims(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": str(tenant.user_id),
        "customerId": str(tenant.customer_id),
        "roles": ["admin"],
        "exp": int(time.time()) + 600,
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not _DROP}


def _signed(claims: dict[str, Any], *, secret: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return str(jwt.encode(claims, secret, algorithm=algorithm))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    problem = assert_problem(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer"), response.headers
    return problem


# --- 401: who is calling ----------------------------------------------------------


async def test_no_authorization_header_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/campaigns")

    problem = assert_unauthorized(response)
    assert "Bearer" in problem["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc.def.ghi",
        "Bearer not-a-jwt",
        "Bearer a.b.c",
        "Bearer " + "x" * 5000,
    ],
)
async def test_malformed_authorization_is_401(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/v1/campaigns", headers={"Authorization": header})

    assert_unauthorized(response)


@pytest.mark.parametrize(
    "name",
    [
        "wrong signing key",
        "alg none",
        "alg none with a signature",
        "HS512 when HS256 is pinned",
        "expired",
        "no exp",
        "exp not a number",
        "exp null",
        "exp a list",
        "exp overflowing",
        "not yet valid",
        "nbf null",
        "iat a list",
        "customerId not a UUID",
        "customerId a number",
        "no customerId",
        "no sub",
        "sub not a UUID",
        "securityGroupId not a UUID",
        "roles a string",
        "payload a JSON array",
        "header a JSON array",
    ],
)
async def test_bad_tokens_are_401_never_500(
    client: httpx.AsyncClient, tenant: Tenant, name: str
) -> None:
    now = int(time.time())
    header_none = _b64url({"alg": "none", "typ": "JWT"})
    tokens = {
        "wrong signing key": lambda: _signed(_claims(tenant), secret=WRONG_SECRET),
        "alg none": lambda: f"{header_none}.{_b64url(_claims(tenant))}.",
        "alg none with a signature": lambda: (
            f"{header_none}.{_b64url(_claims(tenant))}."
            + _signed(_claims(tenant)).rsplit(".", 1)[1]
        ),
        "HS512 when HS256 is pinned": lambda: _signed(_claims(tenant), algorithm="HS512"),
        "expired": lambda: _signed(_claims(tenant, exp=now - 5)),
        "no exp": lambda: _signed(_claims(tenant, exp=_DROP)),
        "exp not a number": lambda: _signed(_claims(tenant, exp="tomorrow")),
        "exp null": lambda: _signed(_claims(tenant, exp=None)),
        "exp a list": lambda: _signed(_claims(tenant, exp=[now + 600])),
        "exp overflowing": lambda: _raw_signed(_claims(tenant), '"exp":1e400'),
        "not yet valid": lambda: _signed(_claims(tenant, nbf=now + 3600)),
        "nbf null": lambda: _signed(_claims(tenant, nbf=None)),
        "iat a list": lambda: _signed(_claims(tenant, iat=[now])),
        "customerId not a UUID": lambda: _signed(_claims(tenant, customerId="acme-corp")),
        "customerId a number": lambda: _signed(_claims(tenant, customerId=42)),
        "no customerId": lambda: _signed(_claims(tenant, customerId=_DROP)),
        "no sub": lambda: _signed(_claims(tenant, sub=_DROP)),
        "sub not a UUID": lambda: _signed(_claims(tenant, sub="alice")),
        "securityGroupId not a UUID": lambda: _signed(_claims(tenant, securityGroupId="x")),
        "roles a string": lambda: _signed(_claims(tenant, roles="admin")),
        "payload a JSON array": lambda: _raw_token(
            {"alg": "HS256", "typ": "JWT"}, _b64url([_claims(tenant)])
        ),
        "header a JSON array": lambda: _raw_token(["HS256"], _b64url(_claims(tenant))),
    }

    response = await client.get("/v1/campaigns", headers=_bearer(tokens[name]()))

    assert_unauthorized(response)


def _raw_token(header: Any, payload_b64: str) -> str:
    """A token signed with the right secret whose parts are exactly what we say."""
    signing_input = f"{_b64url(header)}.{payload_b64}"
    digest = hmac.new(TEST_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return f"{signing_input}.{signature}"


def _raw_signed(claims: dict[str, Any], extra_member: str) -> str:
    """Claims plus one member spelled verbatim (JSON that json.dumps would not write)."""
    claims = {key: value for key, value in claims.items() if f'"{key}"' not in extra_member}
    text = json.dumps(claims, separators=(",", ":"))[:-1] + "," + extra_member + "}"
    payload = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
    return _raw_token({"alg": "HS256", "typ": "JWT"}, payload)


async def test_a_token_is_refused_once_it_expires(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    # Accepted first (and so remembered by the verifier's cache), then refused.
    exp = int(time.time()) + 2
    token = _signed(_claims(tenant, exp=exp))
    assert (await client.get("/v1/campaigns", headers=_bearer(token))).status_code == 200

    await asyncio.sleep(max(0.0, exp - time.time()) + 0.2)

    assert_unauthorized(await client.get("/v1/campaigns", headers=_bearer(token)))


async def test_lower_case_bearer_scheme_is_accepted(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await client.get(
        "/v1/campaigns", headers={"Authorization": f"bearer {tenant.token()}"}
    )

    assert response.status_code == 200, response.text


async def test_a_bad_token_is_401_on_writes_too(client: httpx.AsyncClient, tenant: Tenant) -> None:
    token = _signed(_claims(tenant), secret=WRONG_SECRET)
    missing = uuid.uuid4()

    assert_unauthorized(await client.post("/v1/campaigns", json=SEED_CAMPAIGN))
    assert_unauthorized(
        await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=_bearer(token))
    )
    assert_unauthorized(
        await client.patch(f"/v1/campaigns/{missing}", json={"data": []}, headers=_bearer(token))
    )
    assert_unauthorized(await client.delete(f"/v1/statuses/{missing}", headers=_bearer(token)))


# --- 403: what the caller may do ----------------------------------------------------


async def test_viewer_reads_campaigns_and_statuses(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    viewer = tenant.headers("viewer")

    listed = await client.get("/v1/campaigns", headers=viewer)
    one = await client.get(f"/v1/campaigns/{doc['id']}", headers=viewer)
    statuses = await client.get("/v1/statuses", headers=viewer)

    assert listed.status_code == 200 and [d["id"] for d in listed.json()["data"]] == [doc["id"]]
    assert one.status_code == 200 and one.json() == doc
    assert statuses.status_code == 200 and len(statuses.json()["data"]) == 10


async def test_viewer_cannot_write_and_is_told_which_permission_is_missing(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    viewer = tenant.headers("viewer")
    rename = {"data": [{"op": "replace", "path": "/name", "value": "Hijacked"}]}

    created = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=viewer)
    patched = await client.patch(
        f"/v1/campaigns/{doc['id']}", json=rename, headers={**viewer, **if_match(doc)}
    )
    deleted = await client.delete(f"/v1/campaigns/{doc['id']}", headers={**viewer, **if_match(doc)})
    status_created = await client.post(
        "/v1/statuses", json={"data": {"name": "X", "contactState": "unknown"}}, headers=viewer
    )

    for response, permission in [
        (created, "insert@campaigns"),
        (patched, "modify@campaigns"),
        (deleted, "destroy@campaigns"),
        (status_created, "insert@statuses"),
    ]:
        problem = assert_problem(response, 403, "FORBIDDEN")
        assert permission in problem["detail"], problem
    after = await client.get(f"/v1/campaigns/{doc['id']}", headers=admin)
    assert after.json() == doc, "nothing was written"


async def test_permission_is_checked_before_the_body_or_the_etag(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    viewer = tenant.headers("viewer")

    invalid_body = await client.post("/v1/campaigns", json={"data": {}}, headers=viewer)
    no_etag = await client.delete(f"/v1/campaigns/{doc['id']}", headers=viewer)

    assert_problem(invalid_body, 403, "FORBIDDEN")
    assert_problem(no_etag, 403, "FORBIDDEN")


async def test_canvasser_cannot_create_campaigns(client: httpx.AsyncClient, tenant: Tenant) -> None:
    canvasser = tenant.headers("canvasser")

    response = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=canvasser)

    problem = assert_problem(response, 403, "FORBIDDEN")
    assert "insert@campaigns" in problem["detail"]
    assert (await client.get("/v1/campaigns", headers=canvasser)).status_code == 200


async def test_explicit_permissions_grant_exactly_what_they_name(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    reader = tenant.headers(permissions=["read@campaigns"])

    one = await client.get(f"/v1/campaigns/{doc['id']}", headers=reader)
    statuses = await client.get("/v1/statuses", headers=reader)
    created = await client.post("/v1/campaigns", json=SEED_CAMPAIGN, headers=reader)

    assert one.status_code == 200
    assert "read@statuses" in assert_problem(statuses, 403, "FORBIDDEN")["detail"]
    assert "insert@campaigns" in assert_problem(created, 403, "FORBIDDEN")["detail"]


async def test_unknown_roles_and_permissions_grant_nothing(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = tenant.headers("superuser", permissions=["read@*", "everything"])

    response = await client.get("/v1/campaigns", headers=headers)

    assert "read@campaigns" in assert_problem(response, 403, "FORBIDDEN")["detail"]


# --- tenancy: another tenant's documents do not exist ----------------------------------


async def test_another_tenants_campaign_is_404_for_every_verb(
    client: httpx.AsyncClient, other_tenant: Tenant, admin: dict[str, str]
) -> None:
    theirs = await create(client, "/v1/campaigns", SEED_CAMPAIGN, other_tenant.headers("admin"))
    path = f"/v1/campaigns/{theirs['id']}"
    rename = {"data": [{"op": "replace", "path": "/name", "value": "Hijacked"}]}

    got = await client.get(path, headers=admin)
    patched = await client.patch(path, json=rename, headers={**admin, **if_match(theirs)})
    deleted = await client.delete(path, headers={**admin, **if_match(theirs)})
    missing_id = str(uuid.uuid4())
    missing = await client.get(f"/v1/campaigns/{missing_id}", headers=admin)

    for response in (got, patched, deleted):
        assert_problem(response, 404, "NOT_FOUND")
        assert theirs["meta"]["etag"] not in response.text
    # A stranger's document reads exactly like one that does not exist (but for the
    # request id each problem names).
    stranger = {k: v for k, v in got.json().items() if k != "instance"}
    nobody = json.loads(missing.text.replace(missing_id, theirs["id"]))
    assert stranger == {k: v for k, v in nobody.items() if k != "instance"}
    still = await client.get(path, headers=other_tenant.headers("admin"))
    assert still.json() == theirs, "the owner's document is untouched"


async def test_lists_never_show_another_tenants_documents(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, admin: dict[str, str]
) -> None:
    theirs = await create(client, "/v1/campaigns", SEED_CAMPAIGN, other_tenant.headers("admin"))
    mine = await create(client, "/v1/campaigns", SEED_CAMPAIGN, admin)
    queries = [
        "",
        "?count=true",
        "?" + urlencode({"filter": f'/id eq "{theirs["id"]}"'}),
        "?" + urlencode({"filter": f'/customerId eq "{other_tenant.customer_id}"'}),
        "?" + urlencode({"filter": '/data/name eq "My Campaign" or /id neq nil'}),
        "?" + urlencode({"filter[/customerId]": str(other_tenant.customer_id)}),
        "?limit=9007199254740991",
    ]

    for query in queries:
        response = await client.get(f"/v1/campaigns{query}", headers=admin)
        assert response.status_code == 200, (query, response.text)
        ids = [d["id"] for d in response.json()["data"]]
        assert theirs["id"] not in ids, query
        assert set(ids) <= {mine["id"]}, query
    counted = await client.get("/v1/campaigns?count=true", headers=admin)
    assert counted.json()["meta"] == {"total": 1}


async def test_a_client_chosen_id_taken_by_another_tenant_does_not_leak(
    client: httpx.AsyncClient, other_tenant: Tenant, admin: dict[str, str]
) -> None:
    theirs = await create(client, "/v1/campaigns", SEED_CAMPAIGN, other_tenant.headers("admin"))

    mine = await client.post(
        "/v1/campaigns", json={**campaign(name="Mine"), "id": theirs["id"]}, headers=admin
    )

    assert mine.status_code == 201, mine.text
    assert mine.json()["id"] == theirs["id"]
    again = await client.get(f"/v1/campaigns/{theirs['id']}", headers=other_tenant.headers())
    assert again.json() == theirs


async def test_a_body_naming_another_tenant_is_403(
    client: httpx.AsyncClient, other_tenant: Tenant, admin: dict[str, str]
) -> None:
    body = {**SEED_CAMPAIGN, "customerId": str(other_tenant.customer_id)}

    response = await client.post("/v1/campaigns", json=body, headers=admin)

    problem = assert_problem(response, 403, "FORBIDDEN")
    assert "customerId" in problem["detail"]
    listed = await client.get("/v1/campaigns", headers=other_tenant.headers())
    assert listed.json()["data"] == []


async def test_a_body_naming_its_own_tenant_is_accepted(
    client: httpx.AsyncClient, tenant: Tenant, admin: dict[str, str]
) -> None:
    body = {**SEED_CAMPAIGN, "customerId": str(tenant.customer_id)}

    response = await client.post("/v1/campaigns", json=body, headers=admin)

    assert response.status_code == 201, response.text
    assert response.json()["customerId"] == str(tenant.customer_id)


async def test_a_body_with_meta_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = {**SEED_CAMPAIGN, "meta": {"createdBy": str(uuid.uuid4()), "isDeleted": False}}

    response = await client.post("/v1/campaigns", json=body, headers=admin)

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert "meta" in problem["detail"]
    listed = await client.get("/v1/campaigns", headers=admin)
    assert listed.json()["data"] == []


@pytest.mark.parametrize("meta", [None, {}, {"etag": "x"}], ids=["null", "empty", "etag"])
async def test_any_meta_key_in_a_create_body_is_400_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], meta: Any
) -> None:
    response = await client.post(
        "/v1/campaigns", json={**SEED_CAMPAIGN, "meta": meta}, headers=admin
    )

    problem = assert_problem(response, 400, "VALIDATION_ERROR")
    assert [error["path"] for error in problem["errors"]] == ["/meta"]
    assert (await client.get("/v1/campaigns", headers=admin)).json()["data"] == []


async def test_security_group_defaults_to_the_tokens(
    client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    group = uuid.uuid4()
    token = mint_token(
        settings,
        roles=["admin"],
        customer_id=tenant.customer_id,
        sub=tenant.user_id,
        security_group_id=group,
    )

    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, _bearer(token))

    assert doc["securityGroupId"] == str(group)
    assert doc["customerId"] == str(tenant.customer_id)


async def test_without_a_security_group_claim_the_tenant_is_the_group(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    token = _signed(_claims(tenant))

    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, _bearer(token))

    assert doc["securityGroupId"] == str(tenant.customer_id)


async def test_the_author_is_the_tokens_subject(
    client: httpx.AsyncClient, tenant: Tenant, settings: Settings
) -> None:
    author, editor = uuid.uuid4(), uuid.uuid4()

    def as_user(user: uuid.UUID) -> dict[str, str]:
        token = mint_token(settings, roles=["admin"], customer_id=tenant.customer_id, sub=user)
        return _bearer(token)

    doc = await create(client, "/v1/campaigns", SEED_CAMPAIGN, as_user(author))
    patched = await client.patch(
        f"/v1/campaigns/{doc['id']}",
        json={"data": [{"op": "replace", "path": "/name", "value": "Renamed"}]},
        headers={**as_user(editor), **if_match(doc)},
    )

    assert doc["meta"]["createdBy"] == doc["meta"]["modifiedBy"] == str(author)
    meta = patched.json()["meta"]
    assert (meta["createdBy"], meta["modifiedBy"]) == (str(author), str(editor))
