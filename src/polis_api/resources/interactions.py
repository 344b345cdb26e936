"""Interactions — /v2/interactions: what happened at each knock (docs/api.md,
Interactions).

Recording one moves the door: in the same transaction, the campaign's record for
that contact-household follows the interaction with the latest ``timestamp``.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Annotated, Any

from pydantic import Field, JsonValue, StrictBool, model_validator

from polis_api.config import Settings, get_settings
from polis_api.documents import repository as repo
from polis_api.documents import service
from polis_api.documents.csv_columns import OpenPart
from polis_api.documents.envelope import CreateBody, DataModel, StoredDocument, Timestamp
from polis_api.documents.resource import (
    COMPANION_WRITTEN,
    Companion,
    DocumentHooks,
    Resource,
    WriteContext,
)
from polis_api.errors import invalid_field
from polis_api.filtering.to_sql import FieldPolicy
from polis_api.resources import canvasser_knocks
from polis_api.resources import references as refs
from polis_api.resources.assigned import NAMES_ASSIGNED_DOOR
from polis_api.resources.common import Text
from polis_api.resources.contact_households import CONTACT_HOUSEHOLDS
from polis_api.resources.door_records import (
    DOOR_RECORDS,
    Change,
    revision_of,
    update_door,
)
from polis_api.workflow import quality
from polis_api.workflow.distance import interaction_distance
from polis_api.workflow.door import apply_interaction, should_follow, state_for_interaction


class Survey(DataModel):
    surveyId: uuid.UUID
    version: Annotated[int, Field(strict=True, ge=1, le=2_147_483_647)] | None = Field(
        default=None, description="The survey version answered; absent: the latest."
    )
    responses: dict[str, JsonValue] | None = None


class Location(DataModel):
    lat: Annotated[float, Field(strict=True, ge=-90, le=90)] | None = None
    lng: Annotated[float, Field(strict=True, ge=-180, le=180)] | None = None
    confidence: int | float | None = None


class InteractionData(DataModel):
    campaignId: uuid.UUID
    contactId: uuid.UUID
    householdId: uuid.UUID
    contactHouseholdId: uuid.UUID
    timestamp: Timestamp
    survey: Survey
    unavailable: StrictBool
    location: Location | None = None
    successful: StrictBool | None = None
    unavailableReason: Text | None = None
    statusId: uuid.UUID | None = None
    walklistId: uuid.UUID | None = None
    turfId: uuid.UUID | None = None
    distance: float | None = Field(
        default=None, description="Computed by the server in miles; a client's value is ignored."
    )
    qualityFlags: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None,
        description="Server-owned review flags (far-from-door, low-gps-confidence, "
        "impossible-speed, burst, survey-mismatch, status-mismatch; docs/quality.md), "
        "present only when one is raised; a client's value is ignored.",
    )


class InteractionCreateBody(CreateBody[InteractionData]):
    """The Polis app posts the flat data object; ``{"data": {...}}`` works too.

    A flat body may name its client-chosen ``id`` beside the data fields (a phone's
    outbox does), and it is taken as the document's id.
    """

    @model_validator(mode="before")
    @classmethod
    def _wrap_flat_body(cls, value: Any) -> Any:
        if isinstance(value, dict) and not isinstance(value.get("data"), dict):
            data = {key: item for key, item in value.items() if key != "id"}
            return {"data": data, "id": value["id"]} if "id" in value else {"data": data}
        return value


class InteractionHooks(DocumentHooks):
    server_fields = frozenset({"distance", quality.FIELD})

    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        # The canvasser whose knocks this one is judged among: its creator, also on a PATCH.
        canvasser = ctx.principal.user_id if ctx.revising is None else ctx.revising.created_by
        found = await refs.interaction_references(ctx.conn, ctx.principal, data, canvasser)
        _check_references(found, data)
        # A door the caller may not read (docs/visibility.md) is one it may not knock on
        # either: 404, as its GET answers. After the reference checks, so an unknown
        # door is still the 400 naming the field for everyone.
        await service.require_visible(
            ctx.conn, CONTACT_HOUSEHOLDS, ctx.principal, uuid.UUID(data["contactHouseholdId"])
        )
        ctx.memo[MEMO] = found
        prepared = {k: v for k, v in data.items() if k not in self.server_fields}
        assert found.household is not None
        coords = (found.household.get("address") or {}).get("coords")
        distance = interaction_distance(data.get("location"), coords)
        if distance is not None:
            prepared["distance"] = distance
        script, prepared["survey"] = _survey_script(found.survey_script, data["survey"])
        limits = quality_limits(get_settings())
        if not found.canvasser_locked:
            await canvasser_knocks.lock_canvasser(ctx.conn, ctx.principal.customer_id, canvasser)
        knocks, ctx.memo[DOOR_MEMO] = await _knocks_and_door(ctx, canvasser, prepared, limits)
        # Stored, never refused: the organiser reviews what the flags point at.
        facts = quality.QualityFacts(
            survey=script,
            campaign_statuses=frozenset(found.campaign_status_ids),
            limits=limits,
            canvasser=knocks,
        )
        return quality.with_quality_flags(prepared, facts)

    async def written_with(self, ctx: WriteContext, document: StoredDocument) -> Companion | None:
        """A new knock moves its door in its own insert statement, if the door's record
        is still as ``prepare`` read it; a door not recorded yet, one the knock leaves
        alone as read, or one changed meanwhile is moved after, under its row lock."""
        stored: tuple[StoredDocument, str] | None = ctx.memo.get(DOOR_MEMO)
        if stored is None:
            return None
        revised = await revision_of(ctx, stored, _door_change(ctx, document))
        if revised is None:
            return None
        return Companion(DOOR_RECORDS, revised, expected_etag=stored[1])

    async def after_write(self, ctx: WriteContext, document: StoredDocument) -> None:
        if not document.is_deleted and not ctx.memo.pop(COMPANION_WRITTEN, False):
            await move_door(ctx, document)


MEMO = "interaction_references"
# The door's record and etag as ``prepare`` read them (unlocked), or None: no record yet.
DOOR_MEMO = "interaction_door"


# The knock's second statement, under its canvasser's lock: the canvasser's other
# knocks around it (a new snapshot, so one the lock waited for is seen) and its door's
# record as stored (no record yet: null columns). The door is not locked here: the
# insert's statement moves it only if its etag is unchanged, so its row lock lasts
# that statement and the commit, not the Python in between.
@cache
def _knocks_and_door_sql(burst_knocks: int) -> str:
    neighbours = canvasser_knocks.neighbours_sql(first=4, need=burst_knocks)
    return f"""
    WITH door AS MATERIALIZED ({DOOR_RECORDS.sql.get_stored_by_natural_key})
    SELECT door.*,
           (SELECT json_agg(json_build_array(side, at, lat, lng))
            FROM ({neighbours}) AS knock(side, at, lat, lng)
           ) AS knocks
    FROM (VALUES (1)) AS one LEFT JOIN door ON true
"""  # noqa: S608


async def _knocks_and_door(
    ctx: WriteContext, canvasser: uuid.UUID, data: dict[str, Any], limits: quality.QualityLimits
) -> tuple[quality.CanvasserKnocks, tuple[StoredDocument, str] | None]:
    revising = ctx.revising
    row = await ctx.conn.fetchrow(
        _knocks_and_door_sql(limits.burst_knocks),
        ctx.principal.customer_id,
        data["campaignId"],
        data["contactHouseholdId"],
        *canvasser_knocks.neighbour_args(
            canvasser, None if revising is None else revising.id, data["timestamp"], limits
        ),
    )
    door = None if row["id"] is None else (repo.stored_from_row(row), row["etag"])
    return canvasser_knocks.knocks_of(row["knocks"] or ()), door


def quality_limits(settings: Settings) -> quality.QualityLimits:
    return quality.QualityLimits(
        far_from_door_miles=settings.far_from_door_miles,
        low_gps_accuracy_metres=settings.low_gps_accuracy_metres,
        max_speed_mph=settings.max_canvasser_speed_mph,
        burst_knocks=settings.burst_knocks,
        burst_seconds=settings.burst_seconds,
    )


def _survey_script(
    found: dict[str, Any] | None, survey: dict[str, Any]
) -> tuple[quality.SurveyScript | None, dict[str, Any]]:
    """The script the answers are held against, and ``survey`` with the version it
    answers written in (the latest, when the phone named none)."""
    if found is None:
        return None, survey
    questions, latest = found["questions"], found["latest"]
    if questions is None:
        return quality.SurveyScript(questions=None), survey
    options = {
        str(question["questionId"]): frozenset(
            str(option["optionId"]) for option in question.get("options") or []
        )
        for question in questions
    }
    return quality.SurveyScript(questions=options), {"version": latest, **survey}


def _check_references(found: refs.InteractionReferences, data: dict[str, Any]) -> None:
    """Every reference names a live document of this tenant (400 naming the field)."""
    missing = [
        ("/data/campaignId", "campaign", data["campaignId"], not found.campaign_exists),
        (
            "/data/contactHouseholdId",
            "contact household",
            data["contactHouseholdId"],
            found.contact_household is None,
        ),
        ("/data/householdId", "household", data["householdId"], found.household is None),
        ("/data/statusId", "status", data.get("statusId"), found.status_missing),
    ]
    for path, label, value, absent in missing:
        if absent:
            raise invalid_field(path, f"no {label} with id {value} in your tenant")
    assert found.contact_household is not None
    for field in ("contactId", "householdId"):
        if found.contact_household[field] != data[field]:
            raise invalid_field(f"/data/{field}", "does not match the contact-household's " + field)


async def move_door(ctx: WriteContext, interaction: StoredDocument) -> None:
    """The door follows this interaction unless a later one (by timestamp) is recorded."""
    data = interaction.data
    await update_door(
        ctx, data["campaignId"], data["contactHouseholdId"], _door_change(ctx, interaction)
    )


def _door_change(ctx: WriteContext, interaction: StoredDocument) -> Change:
    data = interaction.data
    found: refs.InteractionReferences = ctx.memo[MEMO]

    async def change(record: dict[str, Any]) -> dict[str, Any] | None:
        if not should_follow(record, data["timestamp"]):
            return None
        unavailable = bool(data.get("unavailable"))
        state = state_for_interaction(
            unavailable=unavailable,
            unavailable_reason=data.get("unavailableReason") if unavailable else None,
            successful=data.get("successful"),
            status=found.status,
        )
        default = None if found.status is not None else found.default_statuses.get(state)
        return apply_interaction(
            record, data, found.status, default, interaction_id=str(interaction.id)
        )

    return change


INTERACTIONS = Resource(
    name="interactions",
    title="interaction",
    prefix="/v2/interactions",
    table="interactions",
    data_model=InteractionData,
    # A door's history: a restricted caller sees only its assigned doors' interactions.
    visibility=NAMES_ASSIGNED_DOOR,
    create_body=InteractionCreateBody,
    # The phone's outbox in one call: each knock written (and its door moved) alone.
    item_bulk_path="/v2/interactions/bulk",
    # Each knock locks its door: the outbox writes them door by door.
    lock_order=("campaignId", "contactHouseholdId"),
    hooks=InteractionHooks(),
    # As CSV, each answer is columns: survey.<questionId>.optionId,
    # survey.<questionId>.fields.<name>, ...
    csv_open=(OpenPart(at=("survey", "responses"), prefix="survey", depth=3),),
    filterable=FieldPolicy(
        allowed_data_paths=frozenset(
            {
                "/data/campaignId",
                "/data/contactId",
                "/data/contactHouseholdId",
                "/data/householdId",
                "/data/qualityFlags",
            }
        ),
        # eq "far-from-door" means "the list holds it" (docs/quality.md).
        list_paths=frozenset({"/data/qualityFlags"}),
        allowed_columns=frozenset({"/id", "/meta/created", "/meta/modified", "/meta/createdBy"}),
    ),
    create_example={
        "campaignId": "61fbfbaa-5de8-4d17-ac2b-c47f2376265a",
        "contactId": "0478dbbf-b6eb-4168-afa9-5ebab6fef4b6",
        "householdId": "c15e3515-aabf-42da-8d1b-31679f738eae",
        "contactHouseholdId": "d070b1dc-9611-4f29-9300-a32160d21baa",
        "timestamp": "2018-07-17T18:40:53.526Z",
        "unavailable": True,
        "unavailableReason": "Come Back",
        "successful": False,
        "survey": {
            "responses": {
                "9826940d-76a8-4700-8c92-5743ce7bb728": {
                    "fields": {"available": "false"},
                    "questionId": "9826940d-76a8-4700-8c92-5743ce7bb728",
                }
            },
            "surveyId": "375d437b-3b47-4940-b43d-be8daec4afff",
        },
        "location": {"lat": 33.43174362182617, "lng": -84.18405151367188, "confidence": 0},
    },
    patch_example=[
        {"op": "replace", "path": "/successful", "value": False},
        {"op": "replace", "path": "/unavailable", "value": False},
    ],
)
