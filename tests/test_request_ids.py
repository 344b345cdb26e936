"""X-Request-Id end to end (SPEC §14): on every answer, in every problem, in every log line."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from polis_api.config import Settings
from polis_api.edge.logs import RequestContextFilter
from tests.builders import assert_problem, campaign
from tests.conftest import Tenant

GENERATED = re.compile(r"[0-9a-f]{32}")


async def test_a_clients_request_id_comes_back_on_success_and_on_a_problem(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    ok = await client.get("/v1/campaigns", headers={**admin, "X-Request-Id": "phone-42.a_b~c"})
    missing = await client.get(
        f"/v1/campaigns/{uuid.uuid4()}", headers={**admin, "X-Request-Id": "phone-43"}
    )

    assert ok.status_code == 200 and ok.headers["X-Request-Id"] == "phone-42.a_b~c"
    problem = assert_problem(missing, 404, "NOT_FOUND")
    assert missing.headers["X-Request-Id"] == problem["instance"] == "phone-43"


async def test_without_one_each_answer_gets_a_new_id_that_its_problem_names(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/v1/campaigns")
    second = await client.get("/v1/campaigns")

    ids = [response.headers["X-Request-Id"] for response in (first, second)]
    assert all(GENERATED.fullmatch(request_id) for request_id in ids)
    assert ids[0] != ids[1]
    assert [assert_problem(r, 401)["instance"] for r in (first, second)] == ids


@pytest.mark.parametrize(
    "sent",
    [
        "x" * 129,  # one past POLIS_MAX_REQUEST_ID_LENGTH
        "has space",
        "<script>alert(1)</script>",
        "a/b",
        "semi;colon",
        "",
    ],
)
async def test_an_unusable_request_id_is_replaced_not_refused(
    client: httpx.AsyncClient, sent: str
) -> None:
    response = await client.get("/healthz", headers={"X-Request-Id": sent})

    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["X-Request-Id"])


async def test_a_request_id_at_the_length_bound_is_kept(client: httpx.AsyncClient) -> None:
    sent = "r" * 128

    response = await client.get("/healthz", headers={"X-Request-Id": sent})

    assert response.headers["X-Request-Id"] == sent


async def test_the_bound_is_a_setting(settings: Settings) -> None:
    from polis_api.app import create_app

    app = create_app(settings.model_copy(update={"max_request_id_length": 8}))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
        at_bound = await http.get("/healthz", headers={"X-Request-Id": "12345678"})
        past_it = await http.get("/healthz", headers={"X-Request-Id": "123456789"})

    assert at_bound.headers["X-Request-Id"] == "12345678"
    assert GENERATED.fullmatch(past_it.headers["X-Request-Id"])


async def test_refusals_before_any_route_carry_it_too(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings
) -> None:
    too_large = await client.post(
        "/v1/campaigns",
        content=b"{" + b" " * settings.max_body_bytes + b"}",
        headers={**admin, "Content-Type": "application/json", "X-Request-Id": "big-1"},
    )
    not_json = await client.post(
        "/v1/campaigns",
        content=b"name=x",
        headers={**admin, "Content-Type": "text/plain", "X-Request-Id": "form-1"},
    )
    no_route = await client.get("/nowhere", headers={"X-Request-Id": "lost-1"})

    for response, status, request_id in (
        (too_large, 413, "big-1"),
        (not_json, 415, "form-1"),
        (no_route, 404, "lost-1"),
    ):
        problem = assert_problem(response, status)
        assert response.headers["X-Request-Id"] == problem["instance"] == request_id
        assert int(response.headers["Content-Length"]) == len(response.content)


async def test_a_replayed_problem_is_the_first_answer_naming_the_request_that_did_the_work(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    headers = {**admin, "Idempotency-Key": str(uuid.uuid4())}
    body = campaign(name=7)  # invalid: the 400 is a final answer, kept under the key

    first = await client.post(
        "/v1/campaigns", json=body, headers={**headers, "X-Request-Id": "try-1"}
    )
    retry = await client.post(
        "/v1/campaigns", json=body, headers={**headers, "X-Request-Id": "try-2"}
    )

    assert assert_problem(first, 400)["instance"] == "try-1"
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["X-Request-Id"] == "try-2"  # this exchange
    assert retry.content == first.content  # the stored answer, its instance included


async def test_the_request_id_is_not_taken_from_another_header(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/healthz", headers={"X-Correlation-Id": "other-1"})

    assert response.headers["X-Request-Id"] != "other-1"


# --- log lines --------------------------------------------------------------------------


class _Records(logging.Handler):
    """A handler as operators configure them: with the request filter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[_Records]:
    handler = _Records()
    logger = logging.getLogger("polis_api")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def failing_app(settings: Settings) -> FastAPI:
    """The app with one more route that fails the way a bug would."""
    from polis_api.app import create_app

    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        logging.getLogger("polis_api.test").info("about to fail")
        raise RuntimeError("a bug")

    return app


async def test_every_log_line_of_a_request_names_it(
    failing_app: FastAPI, records: _Records, tenant: Tenant
) -> None:
    transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://polis.test") as http:
        response = await http.get(
            "/boom", headers={**tenant.headers("admin"), "X-Request-Id": "bug-report-7"}
        )

    problem = assert_problem(response, 500, "INTERNAL_ERROR")
    assert problem["instance"] == response.headers["X-Request-Id"] == "bug-report-7"
    assert "a bug" not in response.text
    lines = {record.getMessage(): record for record in records.records}
    assert "about to fail" in lines
    assert "unhandled error on GET /boom" in lines
    assert lines["unhandled error on GET /boom"].exc_info is not None  # the traceback is logged
    access = [r for r in records.records if r.name == "polis_api.access"]
    assert len(access) == 1 and access[0].status == 500  # type: ignore[attr-defined]
    assert {getattr(r, "request_id", None) for r in records.records} == {"bug-report-7"}


async def test_log_lines_outside_a_request_say_so(records: _Records) -> None:
    logging.getLogger("polis_api").info("starting up")

    assert [getattr(r, "request_id", None) for r in records.records] == ["-"]


def test_a_head_refused_before_it_is_read_gets_a_new_id(live_server: str) -> None:
    # 431 is answered by the connection itself (polis_api.protocols), before any request
    # exists; the client's own id is in the head that was not read.
    huge = {"X-Padding": "p" * (70 * 1024), "X-Request-Id": "never-read"}

    response = httpx.get(f"{live_server}/healthz", headers=huge, timeout=10)

    problem = assert_problem(response, 431)
    assert GENERATED.fullmatch(response.headers["X-Request-Id"])
    assert problem["instance"] == response.headers["X-Request-Id"]
