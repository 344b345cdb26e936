"""Campaigns — /v1/campaigns (docs/api.md, Campaigns)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

from polis_api.documents.envelope import DataModel, StoredDocument, Timestamp, format_timestamp
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.resources import list_doors
from polis_api.resources.common import NonEmptyText, Text
from polis_api.workflow.states import ListType


class CampaignList(DataModel):
    listId: uuid.UUID
    type: ListType | None = None


class FieldItem(DataModel):
    type: Literal["field"]
    path: Annotated[str, Field(pattern=r"^/", max_length=500)]


class SeparatorItem(DataModel):
    type: Literal["separator"]
    value: Annotated[str, Field(max_length=100)]


DisplayItem = Annotated[FieldItem | SeparatorItem, Field(discriminator="type")]


class CampaignData(DataModel):
    name: NonEmptyText
    status: Literal["pending", "started", "complete"]
    organizationId: uuid.UUID
    description: Text | None = None
    lists: list[CampaignList] | None = None
    fields: list[list[DisplayItem]] | None = Field(
        default=None, description="Display lines for the canvasser's app; defaulted if absent."
    )
    ended: Timestamp | None = Field(
        default=None, description="Set by the server when status becomes complete."
    )


def _field(path: str) -> dict[str, str]:
    return {"path": path, "type": "field"}


# The display layout Polis answers a create with when `fields` is absent.
DEFAULT_FIELDS: list[list[dict[str, str]]] = [
    [
        _field("/data/profile/name/anglican/title"),
        _field("/data/profile/name/anglican/given"),
        _field("/data/profile/name/anglican/surname"),
        _field("/data/profile/name/anglican/suffix"),
    ],
    [
        _field("/data/profile/age"),
        {"type": "separator", "value": ","},
        _field("/data/profile/gender"),
    ],
    [_field("/data/notes")],
]


def ended_after(status: str, now_text: str, previous: dict[str, Any] | None) -> str | None:
    """`ended` follows `status`: set on entering complete, kept while complete, else gone."""
    if status != "complete":
        return None
    if previous is not None and previous.get("status") == "complete" and previous.get("ended"):
        return str(previous["ended"])
    return now_text


class CampaignHooks(DocumentHooks):
    server_fields = frozenset({"ended"})

    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        prepared = {k: v for k, v in data.items() if k != "ended"}
        if prepared.get("fields") is None:
            prepared["fields"] = DEFAULT_FIELDS
        if prepared.get("lists") is None:
            prepared["lists"] = []
        ended = ended_after(prepared["status"], format_timestamp(ctx.now), previous)
        if ended is not None:
            prepared["ended"] = ended
        previous_lists = previous.get("lists") if previous is not None else None
        ctx.memo["lists_attached"] = prepared["lists"] != (previous_lists or [])
        return prepared

    async def after_write(self, ctx: WriteContext, document: StoredDocument) -> None:
        # Attaching lists gives their members doors (docs/lists.md); detaching leaves the
        # doors alone, and a write that keeps the lists has nothing new to add.
        lists = document.data.get("lists") or []
        if document.is_deleted or not lists or not ctx.memo.get("lists_attached"):
            return
        list_ids = [str(entry["listId"]) for entry in lists]
        await list_doors.doors_for_campaign(ctx, document.id, list_ids)


CAMPAIGNS = Resource(
    name="campaigns",
    title="campaign",
    prefix="/v1/campaigns",
    table="campaigns",
    data_model=CampaignData,
    hooks=CampaignHooks(),
    create_example={
        "data": {
            "status": "started",
            "organizationId": "eb4dfe83-f1fd-46dd-a69d-b7cf7b566319",
            "name": "My Campaign",
            "description": "My Campaign Description",
        }
    },
    patch_example=[
        {"op": "replace", "path": "/name", "value": "My Campaign Changed"},
        {"op": "replace", "path": "/description", "value": "My Campaign Description"},
        {
            "op": "replace",
            "path": "/lists",
            "value": [{"listId": "ea19c3ab-3526-4709-b027-3e3c1d1851b2"}],
        },
    ],
)
