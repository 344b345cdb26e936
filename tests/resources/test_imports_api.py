"""POST /v1/imports: a CSV voter file becomes households, contacts, their associations
and list members (docs/imports.md)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
from fastapi import FastAPI

from polis_api.config import Settings
from tests.builders import assert_problem
from tests.conftest import Tenant, client_with
from tests.list_builders import new_list

PATH = "/v1/imports"
CSV = {"Content-Type": "text/csv"}
HEADER = "VoterID,HouseID,First,Last,Street,City,Lat,Lng,Email,List"
MAPPING = {
    "externalId": "VoterID",
    "householdExternalId": "HouseID",
    "given": "First",
    "surname": "Last",
    "streetName": "Street",
    "city": "City",
    "lat": "Lat",
    "lng": "Lng",
    "email": "Email",
    "listId": "List",
}
NOTHING = {"households": 0, "contacts": 0, "contactHouseholds": 0, "listMembers": 0}


def csv_file(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


def voter(n: int, house: str, list_id: str = "", **overrides: str) -> str:
    cells = {
        "VoterID": f"V{n}",
        "HouseID": house,
        "First": "Ada",
        "Last": f"Voter{n}",
        "Street": "Main Street",
        "City": "Decatur",
        "Lat": "33.77",
        "Lng": "-84.29",
        "Email": f"v{n}@example.org",
        "List": list_id,
        **overrides,
    }
    return ",".join(cells.values())


async def post_import(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    body: bytes,
    mapping: dict[str, Any] | str | None = None,
    **params: str,
) -> httpx.Response:
    query = dict(params)
    chosen = MAPPING if mapping is None else mapping
    query["mapping"] = chosen if isinstance(chosen, str) else orjson.dumps(chosen).decode()
    return await client.post(PATH, content=body, params=query, headers={**headers, **CSV})


async def imported(
    client: httpx.AsyncClient, headers: dict[str, str], body: bytes, **params: str
) -> dict[str, Any]:
    response = await post_import(client, headers, body, **params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()["data"]
    return report


async def documents(
    client: httpx.AsyncClient, headers: dict[str, str], path: str
) -> list[dict[str, Any]]:
    response = await client.get(path, params={"limit": 1000}, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


async def contacts_by_external_id(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> dict[str, dict[str, Any]]:
    return {
        doc["data"]["externalId"]: doc for doc in await documents(client, headers, "/v2/contacts")
    }


async def test_a_file_creates_households_contacts_associations_and_list_members(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    body = csv_file(voter(1, "H1", list_id), voter(2, "H1", list_id), voter(3, "H2", list_id))

    report = await imported(client, admin, body)

    assert report == {
        "rows": 3,
        "created": {"households": 2, "contacts": 3, "contactHouseholds": 3, "listMembers": 3},
        "existing": {"households": 1, "contacts": 0, "contactHouseholds": 0, "listMembers": 0},
        "failed": 0,
        "errors": [],
        "errorsOmitted": 0,
        "dryRun": False,
    }
    contacts = await contacts_by_external_id(client, admin)
    assert sorted(contacts) == ["V1", "V2", "V3"]
    ada = contacts["V1"]["data"]
    assert ada["profile"]["name"]["anglican"] == {"given": "Ada", "surname": "Voter1"}
    assert ada["profile"]["emails"] == [{"email": "v1@example.org"}]
    households = {
        doc["data"]["externalId"]: doc for doc in await documents(client, admin, "/v2/households")
    }
    assert sorted(households) == ["H1", "H2"]
    assert households["H1"]["data"]["address"] == {
        "streetName": "Main Street",
        "city": "Decatur",
        "coords": {"lat": 33.77, "lng": -84.29},
    }
    # The two voters of H1 share its door.
    assert ada["primaryHouseholdId"] == households["H1"]["id"]
    assert contacts["V2"]["data"]["primaryHouseholdId"] == households["H1"]["id"]
    linked = await documents(client, admin, f"/v2/contacts/{contacts['V3']['id']}/households")
    assert [doc["id"] for doc in linked] == [households["H2"]["id"]]
    members = await documents(client, admin, f"/v1/lists/{list_id}/contact-households")
    assert sorted(m["data"]["contact"]["data"]["externalId"] for m in members) == [
        "V1",
        "V2",
        "V3",
    ]
    listed = (await client.get(f"/v1/lists/{list_id}", headers=admin)).json()
    assert listed["data"]["contactsCount"] == 3


async def test_importing_the_same_file_again_creates_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    body = csv_file(voter(1, "H1", list_id), voter(2, "H1", list_id), voter(3, "H2"))
    first = await imported(client, admin, body)
    before = await contacts_by_external_id(client, admin)

    again = await imported(client, admin, body)

    assert again["created"] == NOTHING
    assert again["existing"] == {
        "households": 3,
        "contacts": 3,
        "contactHouseholds": 3,
        "listMembers": 2,
    }
    assert first["created"]["contacts"] == 3
    after = await contacts_by_external_id(client, admin)
    assert {k: doc["meta"]["etag"] for k, doc in after.items()} == {
        k: doc["meta"]["etag"] for k, doc in before.items()
    }
    assert len(await documents(client, admin, "/v2/households")) == 2


async def test_a_dry_run_reports_what_an_import_would_do_and_keeps_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    list_id = await new_list(client, admin)
    body = csv_file(voter(1, "H1", list_id), voter(2, "H1"), voter(3, "H2", Lat="north"))

    dry = await imported(client, admin, body, dryRun="true")

    assert await documents(client, admin, "/v2/contacts") == []
    assert await documents(client, admin, "/v2/households") == []
    assert (await client.get(f"/v1/lists/{list_id}", headers=admin)).json()["data"].get(
        "contactsCount"
    ) in (0, None)
    real = await imported(client, admin, body)
    assert dry["dryRun"] is True and real["dryRun"] is False
    assert {**dry, "dryRun": False} == real
    assert real["created"]["contacts"] == 2 and real["failed"] == 1


async def test_each_bad_row_fails_alone_with_its_line_and_column(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    unknown_list = str(uuid.uuid4())
    rows = [
        voter(1, "H1"),  # line 2: fine
        voter(2, "H2", Lat="north"),  # line 3: not a number
        voter(3, "H3", Email="not-an-email"),  # line 4
        voter(4, "H4", Lat=""),  # line 5: lng without lat
        voter(5, "H5", VoterID=""),  # line 6: no externalId
        "V6,H6,Ada",  # line 7: too few columns
        voter(7, "H7", List="not-a-uuid"),  # line 8
        voter(8, "H8", List=unknown_list),  # line 9: no such list
        voter(9, "H9", First='"Ada"x'),  # line 10: a quote in the middle of a field
        voter(10, "H10", Last="Nul\x00"),  # line 11
        voter(11, "H11", Lat="91"),  # line 12: out of range
        voter(12, "H12"),  # line 13: fine
    ]
    body = csv_file(*rows)
    body = body.replace(b"Voter12,", b"Voter12\xff,")  # line 13: not UTF-8 after all
    body += (voter(13, "H13") + "\n").encode()  # line 14: fine

    report = await imported(client, admin, body)

    assert report["rows"] == 13
    assert report["failed"] == 11
    assert report["created"] == {
        "households": 2,
        "contacts": 2,
        "contactHouseholds": 2,
        "listMembers": 0,
    }
    where = {error["row"]: error["column"] for error in report["errors"]}
    assert where == {
        3: "Lat",
        4: "Email",
        5: "Lat",
        6: "VoterID",
        7: None,
        8: "List",
        9: "List",
        10: None,
        11: "Last",
        12: "Lat",
        13: None,
    }
    messages = {error["row"]: error["message"] for error in report["errors"]}
    assert "not a number" in messages[3]
    assert "3 columns" in messages[7] and "10" in messages[7]
    assert "no list with id" in messages[9]
    assert "not valid CSV" in messages[10]
    assert "UTF-8" in messages[13]
    # A failed row left nothing behind: no household of its own either.
    households = {d["data"]["externalId"] for d in await documents(client, admin, "/v2/households")}
    assert households == {"H1", "H13"}
    assert sorted(await contacts_by_external_id(client, admin)) == ["V1", "V13"]


async def test_a_byte_order_mark_and_blank_lines_are_fine(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = b"\xef\xbb\xbf" + csv_file(voter(1, "H1"), "", voter(2, "H2")) + b"\r\n"

    report = await imported(client, admin, body)

    assert report["rows"] == 2 and report["failed"] == 0


async def test_a_quoted_field_may_hold_commas_and_line_breaks(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = csv_file(voter(1, "H1", Street='"1 Main St, Apt 2\nrear"'), voter(2, "H2"))

    report = await imported(client, admin, body)

    assert report["failed"] == 0
    street = {
        d["data"]["externalId"]: d["data"]["address"]["streetName"]
        for d in await documents(client, admin, "/v2/households")
    }
    assert street["H1"] == "1 Main St, Apt 2\nrear"


async def test_the_error_list_is_bounded_and_says_how_many_more_failed(
    settings: Settings, tenant: Tenant
) -> None:
    body = csv_file(*(voter(n, f"H{n}", Lat="x") for n in range(5)), voter(9, "H9"))
    async with client_with(settings, import_max_errors=2) as client:
        report = await imported(client, tenant.headers("admin"), body)

    assert report["failed"] == 5
    assert [error["row"] for error in report["errors"]] == [2, 3]
    assert report["errorsOmitted"] == 3
    assert report["created"]["contacts"] == 1


async def test_a_line_longer_than_the_row_bound_fails_its_row(
    settings: Settings, tenant: Tenant
) -> None:
    short = voter(1, "H1")
    body = csv_file(short, voter(2, "H2", Street="x" * 200), voter(3, "H3"))
    async with client_with(settings, import_max_row_bytes=len(short) + 1) as client:
        report = await imported(client, tenant.headers("admin"), body)

    assert report["failed"] == 1
    assert report["errors"][0]["row"] == 3
    assert "POLIS_IMPORT_MAX_ROW_BYTES" in report["errors"][0]["message"]
    assert report["created"]["contacts"] == 2


async def test_rows_are_written_in_batches_with_the_same_result(
    settings: Settings, tenant: Tenant
) -> None:
    body = csv_file(*(voter(n, f"H{n // 2}", Lat="x" if n == 4 else "1") for n in range(7)))
    async with client_with(settings, import_batch_rows=2) as client:
        report = await imported(client, tenant.headers("admin"), body)

    assert report["rows"] == 7 and report["failed"] == 1
    assert report["created"]["households"] == 4  # H0..H3; H2 came only through row 6
    assert report["existing"]["households"] == 2


async def test_the_body_may_be_as_large_as_the_bound_and_not_larger(
    settings: Settings, tenant: Tenant
) -> None:
    body = csv_file(voter(1, "H1"))
    admin = tenant.headers("admin")
    async with client_with(settings, import_max_bytes=len(body)) as client:
        at_bound = await post_import(client, admin, body)
        past = await post_import(client, admin, body + b"\n")
        contacts = await documents(client, admin, "/v2/contacts")

    assert at_bound.status_code == 200, at_bound.text
    problem = assert_problem(past, 413)
    assert str(len(body)) in problem["detail"]
    assert len(contacts) == 1


async def test_a_chunked_body_past_the_bound_is_refused(settings: Settings, tenant: Tenant) -> None:
    body = csv_file(voter(1, "H1"))

    async def chunks() -> AsyncIterator[bytes]:
        yield body
        yield b"\n"

    async with client_with(settings, import_max_bytes=len(body)) as client:
        response = await client.post(
            PATH,
            content=chunks(),
            params={"mapping": orjson.dumps(MAPPING).decode()},
            headers={**tenant.headers("admin"), **CSV},
        )

    assert_problem(response, 413)


async def test_an_import_is_csv(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        PATH,
        json={"data": []},
        params={"mapping": orjson.dumps(MAPPING).decode()},
        headers=admin,
    )

    assert_problem(response, 415)


async def _call(app: FastAPI, headers: list[tuple[bytes, bytes]], messages: list[Any]) -> list[Any]:
    """The app as a server would run it, receiving ``messages``; what it sent back."""
    sent: list[Any] = []
    pending = list(messages)

    async def receive() -> Any:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    query = f"mapping={orjson.dumps(MAPPING).decode()}".encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": query.replace(b'"', b"%22").replace(b" ", b"%20"),
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("polis.test", 80),
        "root_path": "",
        "app": app,
    }
    await app(scope, receive, send)
    return sent


async def test_a_body_cut_off_mid_way_is_never_imported(
    app: FastAPI, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    admin = tenant.headers("admin")
    body = csv_file(voter(1, "H1"), voter(2, "H2"))
    cut = body.index(b"\n", len(HEADER) + 1) + 1  # the header and the first row, whole
    headers = [
        (b"host", b"polis.test"),
        (b"authorization", admin["Authorization"].encode()),
        (b"content-type", b"text/csv"),
        (b"content-length", str(len(body)).encode()),
    ]

    hung_up = await _call(
        app,
        headers,
        [{"type": "http.request", "body": body[:cut], "more_body": True}],  # then gone
    )
    short = await _call(
        app, headers, [{"type": "http.request", "body": body[:cut], "more_body": False}]
    )

    assert hung_up == []  # nobody to answer, and nothing ran
    assert short[0]["status"] == 400
    assert await documents(client, admin, "/v2/contacts") == []
    assert await documents(client, admin, "/v2/households") == []


async def test_the_mapping_is_checked_before_anything_is_written(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    body = csv_file(voter(1, "H1"))
    cases: list[tuple[dict[str, Any] | str, str]] = [
        ("not json", "/mapping"),
        ("[1, 2]", "/mapping"),
        ({**MAPPING, "shoeSize": "Shoe"}, "/mapping/shoeSize"),
        ({"given": "First"}, "/mapping/externalId"),
        ({**MAPPING, "city": 7}, "/mapping/city"),
        ({**MAPPING, "city": "Town"}, "/mapping/city"),  # not in the header
        ({"externalId": "VoterID", "lat": "Lat"}, "/mapping/lng"),
    ]
    for mapping, path in cases:
        problem = assert_problem(await post_import(client, admin, body, mapping), 400)
        assert [error["path"] for error in problem["errors"]] == [path], (mapping, problem)
    missing = await client.post(PATH, content=body, headers={**admin, **CSV})
    assert_problem(missing, 400)
    assert await documents(client, admin, "/v2/contacts") == []


async def test_an_empty_file_or_a_duplicated_mapped_column_is_a_400(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    assert_problem(await post_import(client, admin, b""), 400)
    twice = csv_file("V1,Ada,Ada", header="VoterID,First,First")
    problem = assert_problem(
        await post_import(client, admin, twice, {"externalId": "VoterID", "given": "First"}), 400
    )
    assert "twice" in problem["detail"]


async def test_importing_needs_write_permissions(client: httpx.AsyncClient, tenant: Tenant) -> None:
    body = csv_file(voter(1, "H1"))
    viewer = await post_import(client, tenant.headers("viewer"), body)
    writer = tenant.headers(
        permissions=["insert@contacts", "insert@households", "insert@contact-households"]
    )
    no_lists = await post_import(client, writer, body)
    without_lists = await post_import(
        client, writer, body, {k: v for k, v in MAPPING.items() if k != "listId"}
    )

    assert_problem(viewer, 403)
    assert "modify@lists" in assert_problem(no_lists, 403)["detail"]
    assert without_lists.status_code == 200, without_lists.text


async def test_tenants_import_apart(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    mine, theirs = tenant.headers("admin"), other_tenant.headers("admin")
    my_list = await new_list(client, mine)
    await imported(client, mine, csv_file(voter(1, "H1", my_list), voter(2, "H2")))

    report = await imported(client, theirs, csv_file(voter(1, "H1", my_list), voter(2, "H2")))

    # The same external ids are new in another tenant, and my list is not theirs.
    assert report["created"]["contacts"] == 1
    assert report["errors"] == [
        {"row": 2, "column": "List", "message": f"no list with id {my_list} in your tenant"}
    ]
    assert sorted(await contacts_by_external_id(client, theirs)) == ["V2"]
    assert sorted(await contacts_by_external_id(client, mine)) == ["V1", "V2"]


async def test_an_idempotency_key_covers_the_file(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    keyed = {**admin, "Idempotency-Key": str(uuid.uuid4())}
    body = csv_file(voter(1, "H1"))

    first = await post_import(client, keyed, body)
    replay = await post_import(client, keyed, body)
    other = await post_import(client, keyed, csv_file(voter(2, "H2")))

    assert first.status_code == 200 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()
    assert_problem(other, 422, "IDEMPOTENCY_KEY_REUSED")


async def test_a_row_the_database_refuses_fails_alone_and_its_batch_is_kept(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    # Valid to the model, but too large for the city index: only PostgreSQL says no.
    city = "".join(uuid.uuid4().hex for _ in range(300))
    body = csv_file(voter(1, "H1"), voter(2, "H2", City=city), voter(3, "H3"))

    report = await imported(client, admin, body)

    assert report["failed"] == 1
    assert report["errors"][0]["row"] == 3
    assert report["errors"][0]["message"].startswith("could not be stored")
    assert report["created"]["contacts"] == 2
    assert sorted(await contacts_by_external_id(client, admin)) == ["V1", "V3"]
    households = {d["data"]["externalId"] for d in await documents(client, admin, "/v2/households")}
    assert households == {"H1", "H3"}


async def test_a_server_never_imports_a_body_whose_client_hung_up(
    client: httpx.AsyncClient, tenant: Tenant, live_server: str
) -> None:
    """The same over a real socket to `polis-api serve`: a phone losing its network."""
    admin = tenant.headers("admin")
    body = csv_file(*(voter(n, f"H{n}") for n in range(50)))
    parts = urlsplit(live_server)
    assert parts.hostname is not None and parts.port is not None
    query = urlencode({"mapping": orjson.dumps(MAPPING).decode()})
    head = (
        f"POST {PATH}?{query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: {admin['Authorization']}\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(head + body[: len(body) // 2])  # whole rows and a half, then gone
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(1)  # time enough to have imported, had it run

    assert await documents(client, admin, "/v2/contacts") == []
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        whole = await post_import(http, admin, body)
    assert whole.status_code == 200, whole.text
    assert whole.json()["data"]["created"]["contacts"] == 50


async def test_a_refused_row_in_a_later_batch_fails_alone_and_counts_stay_exact(
    settings: Settings, tenant: Tenant
) -> None:
    city = "".join(uuid.uuid4().hex for _ in range(300))
    # Two voters a household; the first voter of H3 (line 8) brings the city too long.
    rows = [voter(n, f"H{n // 2}", City=city if n == 6 else "Decatur") for n in range(8)]
    admin = tenant.headers("admin")
    async with client_with(settings, import_batch_rows=2) as client:
        dry = await imported(client, admin, csv_file(*rows), dryRun="true")
        report = await imported(client, admin, csv_file(*rows))
        contacts = await contacts_by_external_id(client, admin)

    assert [error["row"] for error in report["errors"]] == [8]
    # H3 came from line 9, its second voter, once line 8 had failed whole.
    assert report["created"] == {
        "households": 4,
        "contacts": 7,
        "contactHouseholds": 7,
        "listMembers": 0,
    }
    assert report["existing"]["households"] == 3
    assert {**dry, "dryRun": False} == report
    assert sorted(contacts) == ["V0", "V1", "V2", "V3", "V4", "V5", "V7"]
