"""Segments — /v1/segments: which survey a campaign's contacts get ("targets" in Polis).

A segment names a survey and criteria over the contact document; a campaign's
segments are tried in ``precedence`` order (unique per campaign among live
segments: a partial unique index) and the first whose criteria match decides the
contact's survey (resources/segment_routes.py).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, JsonValue, StringConstraints, model_validator

from polis_api.documents import repository as repo
from polis_api.documents.envelope import DataModel
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.errors import Conflict, invalid_field
from polis_api.filtering.to_sql import FieldPolicy
from polis_api.resources import references as refs
from polis_api.resources.common import NonEmptyText, Text, at_most
from polis_api.resources.surveys import SURVEYS

# PostgreSQL's integer range; the order is all that matters.
MAX_PRECEDENCE = 2_147_483_647


class Clause(DataModel):
    source: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description='A JSON Pointer into the contact document ("/data/profile/age"), '
        'or a literal ("1" in Polis\' match-everyone clause).'
    )
    operator: Literal["eq", "neq", "gt", "gte", "lt", "lte", "in"]
    value: JsonValue

    @model_validator(mode="after")
    def _in_takes_a_list(self) -> Clause:
        if self.operator == "in" and not isinstance(self.value, list):
            raise ValueError('the operator "in" takes a list as its value')
        return self


class Criteria(DataModel):
    filter: Literal["any", "all"]
    clauses: Annotated[
        list[Clause], Field(min_length=1), AfterValidator(at_most("max_segment_clauses"))
    ]


class SegmentData(DataModel):
    campaignId: uuid.UUID
    surveyId: uuid.UUID
    name: NonEmptyText
    description: Text | None = None
    criteria: Criteria
    precedence: Annotated[int, Field(strict=True, ge=0, le=MAX_PRECEDENCE)] = Field(
        description="Lower goes first; unique among a campaign's segments."
    )


class SegmentHooks(DocumentHooks):
    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        await refs.require_campaign(ctx.conn, ctx.principal, data["campaignId"], "/data/campaignId")
        survey = await refs.require_document(
            ctx.conn, SURVEYS, ctx.principal, data["surveyId"], "/data/surveyId"
        )
        if survey["campaignId"] != data["campaignId"]:
            raise invalid_field("/data/surveyId", "is a survey of another campaign")
        if _place(data) != (_place(previous) if previous is not None else None):
            await _check_place_free(ctx, data)
        return data


def _place(data: dict[str, Any]) -> tuple[str, int]:
    return data["campaignId"], data["precedence"]


async def _check_place_free(ctx: WriteContext, data: dict[str, Any]) -> None:
    """409 naming the segment that already holds this precedence in the campaign.

    The unique index is the guarantee; this only gives the usual case a clear answer.
    """
    taken = await repo.find_first(
        ctx.conn,
        SEGMENTS.sql,
        ctx.principal.customer_id,
        {"campaignId": data["campaignId"], "precedence": str(data["precedence"])},
    )
    if taken is not None:
        raise Conflict(
            f"Segment {taken[0]} already has precedence {data['precedence']} in campaign "
            f"{data['campaignId']}; choose another, or swap the two with "
            "POST /v1/segments/swap-precedences."
        )


SEGMENTS = Resource(
    name="segments",
    title="segment",
    prefix="/v1/segments",
    table="segments",
    data_model=SegmentData,
    hooks=SegmentHooks(),
    filterable=FieldPolicy(
        allowed_data_paths=frozenset(
            {"/data/campaignId", "/data/surveyId", "/data/name", "/data/precedence"}
        ),
        allowed_columns=frozenset({"/id", "/meta/created", "/meta/modified"}),
    ),
    create_example={
        "data": {
            "campaignId": "61fbfbaa-5de8-4d17-ac2b-c47f2376265a",
            "surveyId": "375d437b-3b47-4940-b43d-be8daec4afff",
            "name": "Default Target",
            "description": "Everyone not matched by an earlier segment",
            "criteria": {
                "filter": "all",
                "clauses": [{"source": "1", "operator": "eq", "value": "1"}],
            },
            "precedence": 100,
        }
    },
    patch_example=[{"op": "replace", "path": "/precedence", "value": 10}],
)
