"""/v1/settings: a tenant's own settings (docs/visibility.md).

One setting so far, ``viewUnassignedData`` (default true, as in Polis). Any role may
read the settings; changing them needs ``modify@settings``, which only admins hold.
A PATCH body names the settings to change and their new values (a merge, not JSON
Patch): settings are a handful of independent booleans, so there is nothing a
precondition would protect and a repeated PATCH is harmless.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from polis_api import jsoncodec
from polis_api.auth import Principal, require
from polis_api.deps import ReadConnection, WriteConnection
from polis_api.documents.envelope import utc_now_ms
from polis_api.documents.responses import problem_responses

router = APIRouter(prefix="/v1/settings", tags=["settings"])

DEFAULTS: dict[str, Any] = {"viewUnassignedData": True}


class SettingsData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    viewUnassignedData: StrictBool = Field(
        default=True,
        description="False: canvassers and viewers read contacts, households and doors "
        "only through the open walk lists assigned to them; anything else is a 404.",
    )


class SettingsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    viewUnassignedData: StrictBool | None = None


class SettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: SettingsChange


class SettingsOut(BaseModel):
    data: SettingsData


def _answer(stored: dict[str, Any] | None) -> Response:
    data = {**DEFAULTS, **(stored or {})}
    return Response(content=jsoncodec.dumps({"data": data}), media_type="application/json")


@router.get(
    "",
    summary="The tenant's settings",
    responses={200: {"model": SettingsOut}, **problem_responses(400, 401, 403)},
)
async def get_settings(
    principal: Annotated[Principal, Depends(require("read@settings"))], conn: ReadConnection
) -> Response:
    stored = await conn.fetchval(
        "SELECT data FROM tenant_settings WHERE customer_id = $1", principal.customer_id
    )
    return _answer(stored)


@router.patch(
    "",
    summary="Change the tenant's settings (admin only)",
    description="The body names only the settings to change: "
    '`{"data": {"viewUnassignedData": false}}`. Others keep their values.',
    responses={200: {"model": SettingsOut}, **problem_responses(400, 401, 403, 415)},
)
async def patch_settings(
    body: SettingsBody,
    principal: Annotated[Principal, Depends(require("modify@settings"))],
    conn: WriteConnection,
) -> Response:
    change = body.data.model_dump(exclude_none=True)
    stored = await conn.fetchval(
        "INSERT INTO tenant_settings AS s (customer_id, data, modified, modified_by) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (customer_id) DO UPDATE "
        "SET data = s.data || excluded.data, modified = excluded.modified, "
        "modified_by = excluded.modified_by RETURNING data",
        principal.customer_id,
        change,
        utc_now_ms(),
        principal.user_id,
    )
    return _answer(stored)
