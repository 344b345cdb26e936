"""Every version a survey has had: written with each survey write, read by number.

``GET /v1/surveys/{id}/versions/{n}`` answers the survey document as it stood at
version ``n`` (its data, ``meta.modified`` and etag of that write). A deleted survey
has no versions to show, as it has no current document.

No ``from __future__ import annotations``: FastAPI reads the handler's signature.
"""

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from polis_api.auth import Principal, require
from polis_api.documents.envelope import StoredDocument
from polis_api.documents.repository import Rendered, document_json_sql
from polis_api.documents.responses import (
    DocumentOut,
    current_or_not_modified,
    problem_responses,
)
from polis_api.documents.schema import metadata
from polis_api.errors import NotFound

RESOURCE = "surveys"
SURVEYS_TABLE = "surveys"

# Keyed by tenant first, like every table, so it can be distributed by tenant.
survey_versions = Table(
    "survey_versions",
    metadata,
    Column("customer_id", UUID(as_uuid=True), nullable=False),
    Column("survey_id", UUID(as_uuid=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("security_group_id", UUID(as_uuid=True), nullable=False),
    Column("data", JSONB, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("modified", DateTime(timezone=True), nullable=False),
    Column("created_by", UUID(as_uuid=True), nullable=False),
    Column("modified_by", UUID(as_uuid=True), nullable=False),
    Column("etag", Text, nullable=False),
    PrimaryKeyConstraint("customer_id", "survey_id", "version"),
)

_RECORD = """
    INSERT INTO survey_versions (customer_id, survey_id, version, security_group_id, data,
                                 created, modified, created_by, modified_by, etag)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""

# The stored version through the same envelope renderer as any document.
_GET = f"""
    SELECT ({document_json_sql(RESOURCE)})::text, etag FROM (
      SELECT v.survey_id AS id, v.customer_id, v.security_group_id, v.data, v.created,
             v.modified, v.created_by, v.modified_by, false AS is_deleted, v.etag
      FROM survey_versions AS v
      JOIN {SURVEYS_TABLE} AS s ON s.customer_id = v.customer_id AND s.id = v.survey_id
      WHERE v.customer_id = $1 AND v.survey_id = $2 AND v.version = $3 AND NOT s.is_deleted
    ) AS version
"""  # noqa: S608


# The questions of the version an interaction answers (latest when the version is
# NULL); no row when the survey is not one of the tenant's live surveys. Placeholders
# are given, so the interaction's reference look-up can run it as a subquery.
def script_sql(customer: str, survey: str, version: str) -> str:
    return f"""
    SELECT CASE WHEN {version}::integer IS NULL THEN s.data -> 'questions'
                ELSE (SELECT v.data -> 'questions' FROM survey_versions AS v
                      WHERE v.customer_id = {customer} AND v.survey_id = {survey}
                        AND v.version = {version})
           END AS questions,
           (s.data ->> 'version')::integer AS latest
    FROM {SURVEYS_TABLE} AS s
    WHERE s.customer_id = {customer} AND s.id = {survey} AND NOT s.is_deleted
"""  # noqa: S608


async def record(conn: asyncpg.Connection, survey: StoredDocument) -> None:
    """Keep ``survey`` as the version its data names (run in the write's transaction)."""
    await conn.execute(
        _RECORD,
        survey.customer_id,
        survey.id,
        int(survey.data["version"]),
        survey.security_group_id,
        survey.data,
        survey.created,
        survey.modified,
        survey.created_by,
        survey.modified_by,
        survey.etag(RESOURCE),
    )


router = APIRouter(tags=["survey"])
CanRead = Annotated[Principal, Depends(require("read@surveys"))]


@router.get(
    "/v1/surveys/{id}/versions/{version}",
    summary="Retrieve a survey as it stood at one version",
    responses={200: {"model": DocumentOut[Any]}, **problem_responses(400, 401, 403, 404)},
)
async def get_version(
    id: uuid.UUID,
    version: Annotated[int, Path(ge=1, le=2_147_483_647, description="1 is the first write")],
    request: Request,
    principal: CanRead,
) -> Response:
    row = await request.app.state.pool.fetchrow(_GET, principal.customer_id, id, version)
    if row is None:
        raise NotFound(f"Survey {id} has no version {version}.")
    return current_or_not_modified(Rendered(row[0], row[1]), request.headers.get("if-none-match"))
