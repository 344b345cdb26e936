"""POLIS_LOG_FORMAT=json (SPEC §14): one JSON object per line, never a token."""

from __future__ import annotations

import json
import logging
import sys
import uuid
from typing import Any

import httpx

from polis_api.edge.logs import JsonFormatter, TextFormatter
from tests.conftest import Tenant, running_server, server_log


def _log_lines(name: str) -> list[dict[str, Any]]:
    text = server_log(name).read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    entries = []
    for line in lines:
        entry = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(entry, dict), line
        entries.append(entry)
    return entries


def test_a_json_server_logs_each_request_once_with_route_status_duration_tenant_and_id(
    database_url: str, tenant: Tenant
) -> None:
    token = tenant.token("admin")
    bearer = {"Authorization": f"Bearer {token}"}
    forged = {"Authorization": f"Bearer {token[:-4]}AAAA"}
    document = uuid.uuid4()
    requests = [
        ("json-list", "/v1/campaigns", bearer, 200),
        ("json-one", f"/v1/campaigns/{document}", bearer, 404),
        ("json-forged", "/v1/campaigns", forged, 401),
        ("json-query", f"/v1/statuses?token={token}", {}, 401),
        ("json-path", f"/v1/statuses/{token}", bearer, 400),
    ]

    with (
        running_server(database_url, "json-logs", quiet=False, POLIS_LOG_FORMAT="json") as base,
        httpx.Client(base_url=base) as http,
    ):
        for request_id, path, headers, status in requests:
            response = http.get(path, headers={**headers, "X-Request-Id": request_id})
            assert response.status_code == status, response.text

    entries = _log_lines("json-logs")
    access = {e["request_id"]: e for e in entries if e["logger"] == "polis_api.access"}
    ours = [e for e in entries if (e["request_id"] or "").startswith("json-")]
    assert len([e for e in ours if e["logger"] == "polis_api.access"]) == len(requests)
    assert not [e for e in entries if e["logger"] == "uvicorn.access"], "logged twice"

    listed = access["json-list"]
    assert listed["route"] == "/v1/campaigns" and listed["method"] == "GET"
    assert listed["status"] == 200 and listed["tenant"] == str(tenant.customer_id)
    assert isinstance(listed["duration_ms"], int | float) and listed["duration_ms"] >= 0
    one = access["json-one"]
    assert (one["route"], one["status"], one["path"]) == (
        "/v1/campaigns/{id}",
        404,
        f"/v1/campaigns/{document}",
    )
    assert access["json-forged"]["tenant"] is None  # a token that did not verify names no one
    assert access["json-path"]["route"] == "/v1/statuses/{id}"

    log_text = server_log("json-logs").read_text()
    for part in token.split("."):
        assert part not in log_text
    assert "authorization" not in log_text.lower()


def _record(message: str, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("polis_api", logging.ERROR, __file__, 1, message, None, None)
    record.__dict__.update(extra)
    return record


def test_an_error_with_its_traceback_is_still_one_json_line() -> None:
    try:
        raise ValueError("line one\nline two")
    except ValueError:
        record = _record("unhandled error on GET /x")
        record.exc_info = sys.exc_info()

    line = JsonFormatter().format(record)

    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "error" and entry["message"] == "unhandled error on GET /x"
    assert "ValueError: line one\nline two" in entry["exc"]
    assert entry["request_id"] is None  # written outside a request


def test_a_token_quoted_in_a_message_is_masked_in_both_formats() -> None:
    shaped = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"  # header.payload.signature

    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(_record(f"bad request /x?t={shaped}"))
        assert shaped not in line and "[token]" in line


def test_text_lines_name_the_request_too() -> None:
    line = TextFormatter().format(_record("hello", request_id="abc-1"))

    assert "[abc-1]" in line and "hello" in line
