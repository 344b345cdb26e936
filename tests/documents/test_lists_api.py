"""Lists through HTTP against real PostgreSQL (SPEC §5), with campaigns as the vehicle.

Campaigns allow a filter or sort on any ``/data`` path, so every part of the list
mechanism (both filter spellings, every operator, paging, both sort spellings,
counting, streaming, bad input and tenancy) can be driven through one resource.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from polis_api.config import Settings
from tests.builders import assert_problem, campaign, create, if_match
from tests.conftest import Tenant

CAMPAIGNS = "/v1/campaigns"
LIMIT_ALL = 9007199254740991  # JavaScript's Number.MAX_SAFE_INTEGER, the app's "all"
ORG_A = "eb4dfe83-f1fd-46dd-a69d-b7cf7b566319"
ORG_B = "118d0436-4243-4810-94e9-13713fdfa31c"
HOSTILE = "'; DROP TABLE campaigns; --"

Value = str | int | float | bool | None
Params = Mapping[str, Value] | Sequence[tuple[str, Value]]


def query(params: Params) -> list[tuple[str, Value]]:
    """Query parameters in order, so a key may repeat (sort=/data/name&sort=DESC)."""
    pairs = params.items() if isinstance(params, Mapping) else params
    return [(key, value) for key, value in pairs]


async def add(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, **data: Any
) -> dict[str, Any]:
    return await create(client, CAMPAIGNS, campaign(name=name, **data), headers)


async def add_without_description(
    client: httpx.AsyncClient, headers: dict[str, str], name: str
) -> dict[str, Any]:
    body = campaign(name=name)
    del body["data"]["description"]
    return await create(client, CAMPAIGNS, body, headers)


async def add_spaced(
    client: httpx.AsyncClient, headers: dict[str, str], *names: str
) -> list[dict[str, Any]]:
    """Campaigns created at distinct milliseconds, so their timestamps order them."""
    documents = []
    for name in names:
        await asyncio.sleep(0.003)
        documents.append(await add(client, headers, name))
    return documents


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], params: Params = ()
) -> dict[str, Any]:
    response = await client.get(CAMPAIGNS, params=query(params), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


async def names(
    client: httpx.AsyncClient, headers: dict[str, str], params: Params = ()
) -> list[str]:
    """The names listed, sorted by name unless the request sorts itself."""
    items = query(params)
    if not any(key == "sort" for key, _ in items):
        items.append(("sort", '["data/name","ASC"]'))
    return [doc["data"]["name"] for doc in (await listed(client, headers, items))["data"]]


async def ids(client: httpx.AsyncClient, headers: dict[str, str], params: Params = ()) -> list[str]:
    return [doc["id"] for doc in (await listed(client, headers, params))["data"]]


async def matching(
    client: httpx.AsyncClient, headers: dict[str, str], expression: str
) -> list[str]:
    return await names(client, headers, {"filter": expression})


# --- the two filter spellings -----------------------------------------------------------


async def test_expression_and_bracket_filters_select_the_same_campaigns(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await add(client, admin, "a", status="complete", organizationId=ORG_A)
    await add(client, admin, "b", status="complete", organizationId=ORG_B)
    await add(client, admin, "c", status="started", organizationId=ORG_A)

    assert await matching(client, admin, '/data/status eq "complete"') == ["a", "b"]
    assert await names(client, admin, {"filter[/data/status]": "complete"}) == ["a", "b"]
    # Polis clients also write the path without its leading slash and quote values.
    assert await names(client, admin, {"filter[data/status]": '"complete"'}) == ["a", "b"]


async def test_bracket_filters_repeat_and_combine_with_an_expression_by_and(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await add(client, admin, "a", status="complete", organizationId=ORG_A)
    await add(client, admin, "b", status="complete", organizationId=ORG_B)
    await add(client, admin, "c", status="started", organizationId=ORG_A)
    await add(client, admin, "d", status="complete", organizationId=ORG_A)

    both = [("filter[/data/status]", "complete"), ("filter[/data/organizationId]", ORG_A)]
    assert await names(client, admin, both) == ["a", "d"]
    with_expression = [*both, ("filter", '/data/name neq "a"')]
    assert await names(client, admin, with_expression) == ["d"]
    # The expression's "or" stays inside it: c is named but not complete.
    either = [
        ("filter[/data/status]", "complete"),
        ("filter", '/data/name eq "a" or /data/name eq "c"'),
    ]
    assert await names(client, admin, either) == ["a"]
    # The same attribute twice is ANDed too: nothing is both complete and started.
    contradiction = [("filter[/data/status]", "complete"), ("filter[/data/status]", "started")]
    assert await names(client, admin, contradiction) == []


async def test_bracket_filter_on_an_envelope_column(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    wanted = await add(client, admin, "wanted")
    await add(client, admin, "other")

    assert await ids(client, admin, {"filter[/id]": wanted["id"]}) == [wanted["id"]]


async def test_bracket_filter_compares_text_while_the_expression_is_typed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await add(client, admin, "5")

    # A query string has no types: filter[...]=5 means the text "5".
    assert await names(client, admin, {"filter[/data/name]": "5"}) == ["5"]
    assert await matching(client, admin, '/data/name eq "5"') == ["5"]
    # In an expression 5 is a number, and a number never equals a string.
    assert await matching(client, admin, "/data/name eq 5") == []
    assert await matching(client, admin, "/data/name gt 0") == []


# --- comparison operators ---------------------------------------------------------------


async def test_eq_and_neq_where_a_missing_or_null_field_is_not_equal(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await add(client, admin, "x", description="x")
    await add(client, admin, "y", description="y")
    await add_without_description(client, admin, "absent")
    await add(client, admin, "null", description=None)

    assert await matching(client, admin, '/data/description eq "x"') == ["x"]
    assert await matching(client, admin, '/data/description neq "x"') == ["absent", "null", "y"]
    assert await matching(client, admin, 'not /data/description eq "x"') == [
        "absent",
        "null",
        "y",
    ]


async def test_eq_nil_matches_null_and_absent_fields(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await add(client, admin, "present", description="here")
    await add(client, admin, "empty", description="")
    await add_without_description(client, admin, "absent")
    await add(client, admin, "null", description=None)

    assert await matching(client, admin, "/data/description eq nil") == ["absent", "null"]
    assert await matching(client, admin, "/data/description EQ NULL") == ["absent", "null"]
    assert await matching(client, admin, "/data/description neq nil") == ["empty", "present"]


async def test_ordering_operators_on_strings(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for name in ("alpha", "bravo", "charlie", "delta"):
        await add(client, admin, name)

    assert await matching(client, admin, '/data/name gt "bravo"') == ["charlie", "delta"]
    assert await matching(client, admin, '/data/name gte "bravo"') == [
        "bravo",
        "charlie",
        "delta",
    ]
    assert await matching(client, admin, '/data/name lt "charlie"') == ["alpha", "bravo"]
    assert await matching(client, admin, '/data/name lte "charlie"') == [
        "alpha",
        "bravo",
        "charlie",
    ]
    assert await matching(client, admin, '/data/name between "b","chz"') == ["bravo", "charlie"]


async def test_ordering_operators_on_created_timestamps(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first, second, third = await add_spaced(client, admin, "first", "second", "third")
    t1, t2, t3 = (doc["meta"]["created"] for doc in (first, second, third))
    assert t1 < t2 < t3

    assert await matching(client, admin, f'/meta/created gt "{t1}"') == ["second", "third"]
    assert await matching(client, admin, f'/meta/created gte "{t2}"') == ["second", "third"]
    assert await matching(client, admin, f'/meta/created lt "{t3}"') == ["first", "second"]
    assert await matching(client, admin, f'/meta/created lte "{t2}"') == ["first", "second"]
    assert await matching(client, admin, f'/meta/created eq "{t2}"') == ["second"]
    assert await matching(client, admin, f'/meta/created between "{t2}","{t3}"') == [
        "second",
        "third",
    ]
    # created and modified are columns of one type, so they compare with each other.
    assert await matching(client, admin, "/meta/modified eq /meta/created") == [
        "first",
        "second",
        "third",
    ]


async def test_like_wildcards_star_and_question_mark_only(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for name in ("Door 1", "Door 22", "Doorway", "Back door", "50% off", "a_b", "axb"):
        await add(client, admin, name)

    assert await matching(client, admin, '/data/name like "Door*"') == [
        "Door 1",
        "Door 22",
        "Doorway",
    ]
    assert await matching(client, admin, '/data/name like "Door ?"') == ["Door 1"]
    assert await matching(client, admin, '/data/name like "*door"') == ["Back door"]
    # SQL's own wildcards are plain characters here.
    assert await matching(client, admin, '/data/name like "a_b"') == ["a_b"]
    assert await matching(client, admin, '/data/name like "5?%*"') == ["50% off"]
    assert await matching(client, admin, '/data/name like "%"') == []


async def test_in_and_nin_with_arrays(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    pending = await add(client, admin, "p", status="pending", description="x")
    await add(client, admin, "s", status="started", description="y")
    complete = await add(client, admin, "c", status="complete")
    await add_without_description(client, admin, "none")

    assert await matching(client, admin, '/data/status in ["pending","complete"]') == ["c", "p"]
    assert await matching(client, admin, '/data/status nin ["pending","complete"]') == [
        "none",
        "s",
    ]
    # nin, like neq, holds for a document that lacks the field.
    assert await matching(client, admin, '/data/description nin ["x","y"]') == ["c", "none"]
    assert await matching(client, admin, '/data/description in ["x", nil]') == ["none", "p"]
    assert await matching(client, admin, f'/id in ["{pending["id"]}","{complete["id"]}"]') == [
        "c",
        "p",
    ]
    assert await matching(client, admin, "/data/status in []") == []
    assert await matching(client, admin, "/data/status nin []") == ["c", "none", "p", "s"]


def _field(path: str) -> dict[str, str]:
    return {"type": "field", "path": path}


async def test_path_in_path_and_array_indexes(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # "Which layouts repeat the notes line's field on their first line?"
    notes, age = _field("/data/notes"), _field("/data/age")
    await add(client, admin, "repeats", fields=[[age, notes], [notes]])
    await add(client, admin, "distinct", fields=[[age], [notes]])
    await add(client, admin, "one line", fields=[[age]])
    list_id = str(uuid.uuid4())
    await add(client, admin, "listed", lists=[{"listId": list_id, "type": "high-priority"}])

    assert await matching(client, admin, "/data/fields/1/0 in /data/fields/0") == ["repeats"]
    assert await matching(client, admin, "/data/fields/1/0 nin /data/fields/0") == [
        "distinct",
        "listed",
        "one line",
    ]
    # Numeric segments index arrays, as in a JSON Pointer.
    assert await matching(client, admin, f'/data/lists/0/listId eq "{list_id}"') == ["listed"]
    assert await names(client, admin, {"filter[/data/lists/0/type]": "high-priority"}) == ["listed"]
    assert await matching(client, admin, '/data/fields/0/1/path eq "/data/notes"') == ["repeats"]


async def test_and_binds_tighter_than_or_and_parentheses_change_that(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await add(client, admin, "a", status="pending")
    await add(client, admin, "b", status="started")
    await add(client, admin, "c", status="complete")

    loose = '/data/name eq "a" or /data/name eq "b" and /data/status eq "complete"'
    assert await matching(client, admin, loose) == ["a"]
    grouped = '(/data/name eq "a" or /data/name eq "b") and /data/status eq "started"'
    assert await matching(client, admin, grouped) == ["b"]
    negated = 'NOT (/data/status eq "pending" OR /data/status eq "complete")'
    assert await matching(client, admin, negated) == ["b"]
    assert await matching(client, admin, 'not not /data/name eq "c"') == ["c"]
    nested = '((/data/name eq "a") or ((/data/name eq "c")))'
    assert await matching(client, admin, nested) == ["a", "c"]


# --- envelope paths: sync, authorship, id -------------------------------------------------


async def test_delta_sync_by_meta_modified_returns_exactly_what_changed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    first, _second, third = await add_spaced(client, admin, "first", "second", "third")
    seen = third["meta"]["modified"]  # the newest change this client has synced
    await asyncio.sleep(0.003)
    response = await client.patch(
        f"{CAMPAIGNS}/{first['id']}",
        json={"data": [{"op": "replace", "path": "/status", "value": "complete"}]},
        headers={**admin, **if_match(first)},
    )
    assert response.status_code == 200, response.text
    (fourth,) = await add_spaced(client, admin, "fourth")

    since = {"filter": f'/meta/modified gt "{seen}"', "sort": '["meta/modified","ASC"]'}
    changed = (await listed(client, admin, since))["data"]

    assert [doc["data"]["name"] for doc in changed] == ["first", "fourth"]
    assert changed[0]["data"]["status"] == "complete"
    # The next sync, from the newest timestamp just received, finds nothing new.
    newest = changed[-1]["meta"]["modified"]
    assert newest == fourth["meta"]["modified"]
    assert await matching(client, admin, f'/meta/modified gt "{newest}"') == []


async def test_created_by_and_modified_by(
    client: httpx.AsyncClient, tenant: Tenant, settings: Settings, admin: dict[str, str]
) -> None:
    colleague = Tenant(settings)
    colleague.customer_id = tenant.customer_id  # another user of the same tenant
    mine = await add(client, admin, "mine")
    theirs = await add(client, colleague.headers("admin"), "theirs")
    response = await client.patch(
        f"{CAMPAIGNS}/{theirs['id']}",
        json={"data": [{"op": "replace", "path": "/name", "value": "theirs, edited"}]},
        headers={**admin, **if_match(theirs)},
    )
    assert response.status_code == 200, response.text

    me, them = str(tenant.user_id), str(colleague.user_id)
    assert mine["meta"]["createdBy"] == me
    assert await matching(client, admin, f'/meta/createdBy eq "{them}"') == ["theirs, edited"]
    assert await matching(client, admin, f'/meta/modifiedBy eq "{me}"') == [
        "mine",
        "theirs, edited",
    ]
    assert await matching(client, admin, f'/meta/modifiedBy eq "{them}"') == []


async def test_id_eq(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    wanted = await add(client, admin, "wanted")
    await add(client, admin, "other")

    assert await ids(client, admin, {"filter": f'/id eq "{wanted["id"]}"'}) == [wanted["id"]]
    assert await ids(client, admin, {"filter": f'/id eq "{uuid.uuid4()}"'}) == []
    problem = assert_problem(
        await client.get(CAMPAIGNS, params={"filter": '/id eq "nope"'}, headers=admin),
        400,
        "BAD_FILTER",
    )
    assert "uuid" in problem["detail"] and "column 8" in problem["detail"]


async def test_deleted_campaigns_are_never_listed(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    gone = await add(client, admin, "gone")
    await add(client, admin, "kept")
    response = await client.delete(f"{CAMPAIGNS}/{gone['id']}", headers={**admin, **if_match(gone)})
    assert response.status_code == 204

    body = await listed(client, admin, {"count": "true"})
    assert [doc["data"]["name"] for doc in body["data"]] == ["kept"]
    assert body["meta"] == {"total": 1}
    assert await ids(client, admin, {"filter": f'/id eq "{gone["id"]}"'}) == []
    assert gone["id"] not in await ids(client, admin, {"limit": LIMIT_ALL})


# --- paging and sorting -------------------------------------------------------------------


async def test_limit_and_skip_page_through_a_sorted_list(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for name in ("a", "b", "c", "d", "e"):
        await add(client, admin, name)

    async def page(limit: int, skip: int) -> list[str]:
        return await names(client, admin, {"limit": limit, "skip": skip})

    assert await page(2, 0) == ["a", "b"]
    assert await page(2, 2) == ["c", "d"]
    assert await page(2, 4) == ["e"]
    assert await page(2, 10) == []
    assert await page(0, 0) == []
    # An empty limit or skip means the default.
    assert await names(client, admin, {"limit": "", "skip": ""}) == ["a", "b", "c", "d", "e"]


async def test_default_limit_is_100(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for number in range(101):
        await add(client, admin, f"campaign {number:03}")

    body = await listed(client, admin, {"count": "true"})
    assert len(body["data"]) == 100
    # A full page: meta.next continues it, to the same one document skip finds.
    assert body["meta"]["total"] == 101 and body["meta"].keys() == {"total", "next"}
    rest = await ids(client, admin, {"skip": 100})
    assert len(rest) == 1
    assert rest[0] not in {doc["id"] for doc in body["data"]}
    assert await ids(client, admin, {"after": body["meta"]["next"]}) == rest


async def test_without_sort_the_list_is_in_id_order(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = [(await add(client, admin, name))["id"] for name in "abcde"]

    assert await ids(client, admin) == sorted(created, key=uuid.UUID)


@pytest.mark.parametrize(
    "sort",
    [
        [("sort", '["data/name","DESC"]')],
        [("sort", '["/data/name","desc"]')],
        [("sort", "/data/name"), ("sort", "DESC")],
        [("sort", "data/name"), ("sort", "desc")],
    ],
    ids=["json", "json-lowercase", "repeated", "repeated-no-slash"],
)
async def test_both_sort_spellings(
    client: httpx.AsyncClient, admin: dict[str, str], sort: list[tuple[str, str]]
) -> None:
    for name in ("bravo", "alpha", "charlie"):
        await add(client, admin, name)

    assert await names(client, admin, sort) == ["charlie", "bravo", "alpha"]
    ascending = [(key, value.replace("DESC", "ASC").replace("desc", "asc")) for key, value in sort]
    assert await names(client, admin, ascending) == ["alpha", "bravo", "charlie"]


async def test_sort_direction_defaults_to_ascending(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for name in ("bravo", "alpha", "charlie"):
        await add(client, admin, name)

    assert await names(client, admin, {"sort": "/data/name"}) == ["alpha", "bravo", "charlie"]
    assert await names(client, admin, {"sort": '["data/name"]'}) == ["alpha", "bravo", "charlie"]


@pytest.mark.parametrize(
    "sort",
    [
        [("sort", '[["data/status","ASC"],["data/name","DESC"]]')],
        [("sort", '["data/status","ASC","data/name","DESC"]')],
        [("sort", "/data/status"), ("sort", "ASC"), ("sort", "/data/name"), ("sort", "DESC")],
        [("sort", '["data/status","ASC"]'), ("sort", '["data/name","DESC"]')],
    ],
    ids=["json-pairs", "json-flat", "repeated", "json-repeated"],
)
async def test_multi_key_sort(
    client: httpx.AsyncClient, admin: dict[str, str], sort: list[tuple[str, str]]
) -> None:
    for name, status in [("a", "started"), ("b", "complete"), ("c", "started"), ("d", "complete")]:
        await add(client, admin, name, status=status)

    assert await names(client, admin, sort) == ["d", "b", "c", "a"]


async def test_ties_are_broken_by_id_so_pages_never_overlap(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = [(await add(client, admin, "same name"))["id"] for _ in range(7)]
    in_id_order = sorted(created, key=uuid.UUID)

    for direction in ("ASC", "DESC"):
        pages = []
        for skip in range(0, 8, 2):
            sort = json.dumps(["data/name", direction])
            pages.append(await ids(client, admin, {"sort": sort, "limit": 2, "skip": skip}))

        assert [len(page) for page in pages] == [2, 2, 2, 1]
        seen = [doc_id for page in pages for doc_id in page]
        assert seen == in_id_order, direction


async def test_sort_by_id_descending_and_by_data_id(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    created = [(await add(client, admin, name))["id"] for name in "abcd"]
    newest_first = sorted(created, key=uuid.UUID, reverse=True)

    assert await ids(client, admin, {"sort": '["id","DESC"]'}) == newest_first
    # Polis clients sort by "/data/id", meaning the document id.
    assert await ids(client, admin, [("sort", "/data/id"), ("sort", "DESC")]) == newest_first


# --- count and streaming ----------------------------------------------------------------------


async def test_count_gives_the_total_matching_not_the_page_size(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for name, status in [("a", "complete"), ("b", "complete"), ("c", "complete"), ("d", "pending")]:
        await add(client, admin, name, status=status)
    complete: dict[str, str | int] = {"filter": '/data/status eq "complete"', "limit": 2}

    body = await listed(client, admin, {**complete, "count": "true"})
    assert len(body["data"]) == 2
    assert body["meta"]["total"] == 3
    assert (await listed(client, admin, {**complete, "count": "true", "skip": 5}))["meta"] == {
        "total": 3
    }
    assert (await listed(client, admin, {**complete, "count": "1"}))["meta"]["total"] == 3
    # Without count, a full page carries only where to go on from.
    assert (await listed(client, admin, {**complete, "count": "false"}))["meta"].keys() == {"next"}
    assert (await listed(client, admin, complete))["meta"].keys() == {"next"}


async def test_limit_all_streams_every_campaign_as_one_json_document(
    client: httpx.AsyncClient, admin: dict[str, str], other_tenant: Tenant
) -> None:
    # Enough bytes (~150 KiB) that the stream has to send several chunks.
    await add(client, other_tenant.headers("admin"), "not ours")
    created = []
    for number in range(120):
        doc = await add(client, admin, f"campaign {number:03}", description="d" * 1000)
        created.append(doc["id"])

    response = await client.get(CAMPAIGNS, params={"limit": LIMIT_ALL}, headers=admin)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert "content-length" not in response.headers  # streamed, not buffered
    body = response.json()
    assert [doc["id"] for doc in body["data"]] == sorted(created, key=uuid.UUID)
    assert body["meta"] == {}
    assert all(doc["data"]["description"] == "d" * 1000 for doc in body["data"])

    counted = await listed(client, admin, {"limit": LIMIT_ALL, "count": "true"})
    assert counted["meta"] == {"total": 120}
    assert len(counted["data"]) == 120
    filtered = await listed(
        client,
        admin,
        {
            "limit": LIMIT_ALL,
            "count": "true",
            "filter": '/data/name like "campaign 11?"',
            "sort": '["data/name","DESC"]',
            "skip": 1,
        },
    )
    assert [doc["data"]["name"] for doc in filtered["data"]] == [
        f"campaign {n}" for n in range(118, 109, -1)
    ]
    assert filtered["meta"] == {"total": 10}


async def test_limit_all_with_nothing_to_list(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert await listed(client, admin, {"limit": LIMIT_ALL}) == {"data": [], "meta": {}}
    assert await listed(client, admin, {"limit": LIMIT_ALL, "count": "true"}) == {
        "data": [],
        "meta": {"total": 0},
    }


async def test_a_limit_beyond_the_page_size_streams_but_still_honours_limit_and_skip(
    settings: Settings, tenant: Tenant
) -> None:
    from polis_api.app import create_app

    small_pages = create_app(settings.model_copy(update={"max_page_size": 3}))
    admin = tenant.headers("admin")
    async with LifespanManager(small_pages):
        transport = httpx.ASGITransport(app=small_pages, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as client:
            for name in "abcdef":
                await add(client, admin, name)

            assert await names(client, admin, {"limit": 4}) == ["a", "b", "c", "d"]
            assert await names(client, admin, {"limit": 4, "skip": 4}) == ["e", "f"]
            assert await names(client, admin, {"limit": LIMIT_ALL}) == list("abcdef")
            assert await names(client, admin, {"limit": 3}) == ["a", "b", "c"]


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "column", "token"),
    [
        ('/data/status equals "complete"', 14, "'equals'"),
        ('/data/status eq "complete" and', 31, "end of input"),
        ("/data/status eq 'complete'", 17, "'complete'"),
        ('(/data/status eq "complete"', 28, "end of input"),
        ('/data/status eq "complete")', 27, "')'"),
        ('/data/status eq "complete" /data/name eq "x"', 28, "'/data/name'"),
        ('/data/name between "a"', 23, "end of input"),
        ('/data/status in ["a" "b"]', 22, "'\"b\"'"),
        ('/data/status eq "unterminated', 17, "end of input"),
    ],
)
async def test_bad_filter_names_the_column_and_the_token(
    client: httpx.AsyncClient, admin: dict[str, str], expression: str, column: int, token: str
) -> None:
    response = await client.get(CAMPAIGNS, params={"filter": expression}, headers=admin)

    detail = assert_problem(response, 400, "BAD_FILTER")["detail"]
    assert f"column {column}" in detail
    assert token in detail


@pytest.mark.parametrize(
    ("expression", "mentioned"),
    [
        ('/meta/etag eq "x"', "/meta/etag"),
        ("/meta/isDeleted eq true", "/meta/isDeleted"),
        ('/foo/bar eq "x"', "/foo/bar"),
        ('/data eq "x"', "/data"),
        ('/data/na\'me eq "x"', "na'me"),
        ('/data//name eq "x"', "empty segment"),
        ("/data/status eq complete", "double quotes"),
    ],
)
async def test_unknown_or_malformed_paths_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str], expression: str, mentioned: str
) -> None:
    response = await client.get(CAMPAIGNS, params={"filter": expression}, headers=admin)

    assert mentioned in assert_problem(response, 400, "BAD_FILTER")["detail"]


@pytest.mark.parametrize(
    "params",
    [
        {"filter[/data/na'me]": "x"},
        {"filter[]": "x"},
        {"filter[/meta/etag]": "x"},
        {"filterx": "x"},
        [("filter", '/data/name eq "a"'), ("filter", '/data/name eq "b"')],
    ],
    ids=["bad-segment", "empty-path", "unknown-column", "unknown-parameter", "two-expressions"],
)
async def test_bad_bracket_filters_and_filter_parameters(
    client: httpx.AsyncClient, admin: dict[str, str], params: Params
) -> None:
    response = await client.get(CAMPAIGNS, params=query(params), headers=admin)

    assert_problem(response, 400, "BAD_FILTER")


async def test_filter_length_is_bounded_at_4_kib(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await add(client, admin, "long", description="x" * 4000)
    prefix, suffix = '/data/description eq "', '"'
    longest = prefix + "x" * (4096 - len(prefix) - len(suffix)) + suffix
    assert len(longest) == 4096

    assert await matching(client, admin, longest) == []
    assert await matching(client, admin, f'/data/description eq "{"x" * 4000}"') == ["long"]
    response = await client.get(CAMPAIGNS, params={"filter": longest + " "}, headers=admin)
    detail = assert_problem(response, 400, "BAD_FILTER")["detail"]
    assert "4097" in detail and "4096" in detail


async def test_clause_count_and_nesting_depth_are_bounded(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await add(client, admin, "a")
    clauses = " or ".join('/data/name eq "a"' for _ in range(64))
    assert await matching(client, admin, clauses) == ["a"]
    nested = "(" * 32 + '/data/name eq "a"' + ")" * 32
    assert await matching(client, admin, nested) == ["a"]

    for too_much in (clauses + ' or /data/name eq "a"', "(" + nested + ")", "not " * 33 + nested):
        response = await client.get(CAMPAIGNS, params={"filter": too_much}, headers=admin)
        assert_problem(response, 400, "BAD_FILTER")
    many_brackets = [("filter[/data/name]", "a")] * 65
    assert_problem(
        await client.get(CAMPAIGNS, params=query(many_brackets), headers=admin), 400, "BAD_FILTER"
    )


@pytest.mark.parametrize(
    ("sort", "mentioned"),
    [
        ([("sort", '["data/name","SIDEWAYS"]')], "expected ASC or DESC after 'data/name'"),
        ([("sort", "/data/name"), ("sort", "SIDEWAYS")], "found 'SIDEWAYS'"),
        ([("sort", '[["data/name","UP"]]')], "found 'UP'"),
        ([("sort", '["data/name",1]')], "must be a string"),
        ([("sort", '["data/name","ASC"')], "not a JSON array"),
        ([("sort", "DESC")], "must follow a path"),
        ([("sort", '["meta/etag","ASC"]')], "'/meta/etag' is not a field"),
        ([("sort", '["nonsense","ASC"]')], "'/nonsense' is not a field"),
    ],
    ids=[
        "json-direction",
        "repeated-direction",
        "json-pair-direction",
        "not-a-string",
        "bad-json",
        "no-path",
        "unknown-field",
        "unknown-word",
    ],
)
async def test_bad_sort_is_refused_with_what_was_wrong(
    client: httpx.AsyncClient, admin: dict[str, str], sort: list[tuple[str, str]], mentioned: str
) -> None:
    response = await client.get(CAMPAIGNS, params=query(sort), headers=admin)

    assert mentioned in assert_problem(response, 400)["detail"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "-1"),
        ("limit", "abc"),
        ("limit", "1.5"),
        ("limit", str(LIMIT_ALL + 1)),
        ("limit", "1_0"),
        ("limit", "+5"),
        ("limit", " 5"),
        ("limit", "\u0665"),  # ARABIC-INDIC DIGIT FIVE, which int() would read as 5
        ("limit", "9" * 5000),
        ("skip", "x"),
        ("skip", "-3"),
        ("count", "maybe"),
    ],
)
async def test_bad_paging_parameters_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str], name: str, value: str
) -> None:
    response = await client.get(CAMPAIGNS, params={name: value}, headers=admin)

    detail = assert_problem(response, 400, "VALIDATION_ERROR")["detail"]
    assert name in detail and value in detail


async def test_a_hostile_value_is_only_ever_a_value(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await add(client, admin, "innocent")

    assert await matching(client, admin, f'/data/name eq "{HOSTILE}"') == []
    assert await names(client, admin, {"filter[/data/name]": HOSTILE}) == []
    assert await matching(client, admin, f'/data/name like "*{HOSTILE}*"') == []
    assert await matching(client, admin, f'/data/name in ["{HOSTILE}"]') == []
    # The table is still there, and a campaign may even carry that name.
    await add(client, admin, HOSTILE)
    assert await names(client, admin, {"filter[/data/name]": HOSTILE}) == [HOSTILE]
    assert await names(client, admin) == [HOSTILE, "innocent"]


# --- tenancy ----------------------------------------------------------------------------------


async def test_lists_never_include_another_tenants_campaigns(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant, admin: dict[str, str]
) -> None:
    mine = await add(client, admin, "mine")
    theirs = await add(client, other_tenant.headers("admin"), "theirs")
    other = str(other_tenant.customer_id)

    assert await ids(client, admin) == [mine["id"]]
    assert await ids(client, admin, {"limit": LIMIT_ALL}) == [mine["id"]]
    assert await ids(client, admin, {"filter": f'/customerId eq "{other}"'}) == []
    assert await ids(client, admin, {"filter[/customerId]": other}) == []
    assert await ids(client, admin, {"filter": f'/id eq "{theirs["id"]}"'}) == []
    # An "or" in the filter cannot widen the tenant condition it is ANDed with.
    widened = f'/customerId eq "{other}" or /customerId neq "{other}"'
    assert await ids(client, admin, {"filter": widened}) == [mine["id"]]
    assert await ids(client, admin, {"filter": 'not /data/name eq "mine"'}) == []
    body = await listed(client, admin, {"count": "true", "filter": widened})
    assert body["meta"] == {"total": 1}
    own = f'/customerId eq "{tenant.customer_id}"'
    assert await ids(client, admin, {"filter": own}) == [mine["id"]]


async def test_a_data_timestamp_compares_with_an_envelope_timestamp(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    running = await add(client, admin, "running")
    await asyncio.sleep(0.003)
    response = await client.patch(
        f"{CAMPAIGNS}/{running['id']}",
        json={"data": [{"op": "replace", "path": "/status", "value": "complete"}]},
        headers={**admin, **if_match(running)},
    )
    assert response.status_code == 200, response.text
    ended = response.json()
    assert ended["data"]["ended"] == ended["meta"]["modified"]
    await add(client, admin, "finished at once", status="complete")

    # ended is set by the write that completes the campaign, so it equals modified.
    assert await matching(client, admin, "/data/ended eq /meta/modified") == [
        "finished at once",
        "running",
    ]
    assert await matching(client, admin, "/data/ended gt /meta/created") == ["running"]
    assert await matching(client, admin, "/meta/created lt /data/ended") == ["running"]
