"""CSV imports — POST /v1/imports: a voter file in, doors and people out (docs/imports.md).

BodyGuard spools the body to a temporary file (POLIS_IMPORT_MAX_BYTES) and runs this
route only once the whole file has arrived; the route reads it from there.

No ``from __future__ import annotations``: FastAPI reads the route's signature at runtime.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from polis_api import jsoncodec
from polis_api.auth import CHECKED_PERMISSIONS, Principal, require
from polis_api.deps import WriteConnection
from polis_api.documents.responses import json_response, problem_responses
from polis_api.errors import ValidationFailed
from polis_api.imports.rows import FIELDS, parse_mapping
from polis_api.imports.writer import run_import
from polis_api.middleware import SCOPE_BODY_FILE, SpooledBody

IMPORTS_PATH = "/v1/imports"
IMPORT_CONTENT_TYPES = frozenset({b"text/csv"})

router = APIRouter(tags=["imports"])


class Counts(BaseModel):
    households: int
    contacts: int
    contactHouseholds: int
    listMembers: int


class RowProblem(BaseModel):
    row: int
    column: str | None
    message: str


class ImportReport(BaseModel):
    rows: int
    created: Counts
    existing: Counts
    failed: int
    errors: list[RowProblem]
    errorsOmitted: int
    dryRun: bool


class ImportOut(BaseModel):
    data: ImportReport


MAPPING_DESCRIPTION = (
    "JSON object naming the CSV column of each field, e.g. "
    '`{"externalId": "VoterID", "given": "First", "surname": "Last", "city": "City"}`. '
    f"Fields: {', '.join(f'`{name}`' for name in FIELDS)}. `externalId` is required."
)


@router.post(
    IMPORTS_PATH,
    summary="Import a CSV file of contacts and their households (and list members)",
    description=(
        "The body is the CSV file (`Content-Type: text/csv`, UTF-8, header line first, "
        "at most POLIS_IMPORT_MAX_BYTES). Each row finds or creates its household (by "
        "`householdExternalId`, else by the row's `externalId`), its contact (by "
        "`externalId`), their contact-household and, with `listId`, its membership of "
        "that list. Importing the same file again creates nothing. A row that cannot be "
        "imported is skipped whole and listed in `errors` with its line and column. "
        "With `dryRun=true` nothing is kept, and the answer is the same."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
    responses={200: {"model": ImportOut}, **problem_responses(400, 401, 403, 413, 415)},
)
async def import_csv(
    request: Request,
    principal: Annotated[Principal, Depends(require("insert@contacts"))],
    _households: Annotated[Principal, Depends(require("insert@households"))],
    _links: Annotated[Principal, Depends(require("insert@contact-households"))],
    conn: WriteConnection,
    mapping: Annotated[str | None, Query(description=MAPPING_DESCRIPTION)] = None,
    dryRun: Annotated[bool, Query(description="Import, report, then keep nothing.")] = False,
) -> Response:
    fields = parse_mapping(mapping)
    if "listId" in fields:
        _require_list_changes(request, principal)
    spooled: SpooledBody | None = request.scope.get(SCOPE_BODY_FILE)
    if spooled is None:  # only reachable if the app is mounted without its BodyGuard
        raise ValidationFailed("The import body did not arrive.")
    settings = request.app.state.settings
    report = await run_import(conn, principal, spooled.file, fields, settings, dry_run=dryRun)
    return json_response(jsoncodec.dumps({"data": report.as_json(dryRun)}))


def _require_list_changes(request: Request, principal: Principal) -> None:
    """Putting members on a list is a change of the list, as on its member routes."""
    permission = "modify@lists"
    principal.require(permission)
    checked = request.scope.get(CHECKED_PERMISSIONS)
    if checked is not None:
        checked.append(permission)  # asked again of an idempotent replay
