"""Statuses — /v1/statuses: the pins a door can show (docs/api.md, Statuses)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from pydantic import StrictBool

from polis_api.documents import repository as repo
from polis_api.documents.envelope import DataModel, StoredDocument
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.errors import invalid_field
from polis_api.resources.common import HexColour, NonEmptyText, Text
from polis_api.resources.status_groups import CATALOGUE_OWNER, STATUS_GROUPS
from polis_api.workflow.states import ContactState

# Author of documents the server creates on its own (a tenant's default statuses).
SYSTEM_USER = uuid.UUID(int=0)


class StatusData(DataModel):
    name: NonEmptyText
    contactState: ContactState
    icon: Text | None = None
    iconColor: HexColour | None = None
    pinColor: HexColour | None = None
    statusGroupId: uuid.UUID | None = None
    # Strict: pydantic would otherwise read "yes", "off" or 0 as a boolean.
    defaultStatus: StrictBool = False


# Polis' default set, in the order Polis lists it: where two share a state, the
# first is the one used. (name, contactState, pin colour, status group: the group of
# the same name in the catalogue migration 0012 seeds)
DEFAULT_STATUSES: tuple[tuple[str, str, str, str], ...] = (
    ("Appointment", "appointment", "#8E44AD", "6d878703-4259-45b7-9ca6-75636cf3354e"),
    (
        "Bad Contact Info",
        "contacted-unavailable-other",
        "#7F8C8D",
        "1d1ac906-93fd-4301-919a-bd726cbbc79a",
    ),
    ("Come Back", "come-back", "#F39C12", "daac7137-ed74-4173-9725-8aaa0be10e9d"),
    ("Default", "not-contacted-normal", "#3498DB", "b5507d78-d1bf-48a4-a445-b4a7355760f6"),
    (
        "Do Not Knock",
        "not-contacted-do-not-knock",
        "#2C3E50",
        "0247e808-04d7-4acd-9d83-9b09f73bb1d8",
    ),
    (
        "High Priority",
        "not-contacted-high-priority",
        "#E67E22",
        "55f066c9-75f2-4cf6-9526-2a60ca1d4b80",
    ),
    (
        "Not Home",
        "contacted-unavailable-not-home",
        "#F1C40F",
        "e94fdade-ec0b-4e64-8382-0deb19e8c5df",
    ),
    (
        "Not Successful",
        "contacted-available-not-successful",
        "#E74C3C",
        "d1148f23-ef9e-4c6d-84ec-3658d3a52699",
    ),
    ("Refused", "contacted-unavailable-other", "#C0392B", "876a5825-3773-4ce5-8d26-967ab73086a3"),
    (
        "Successful",
        "contacted-available-successful",
        "#27AE60",
        "6fec493a-5a6d-4e82-86dd-322847042fd7",
    ),
)


def default_status_documents(customer_id: uuid.UUID, now: datetime) -> list[StoredDocument]:
    return [
        StoredDocument(
            id=uuid.uuid4(),
            customer_id=customer_id,
            security_group_id=customer_id,
            data={
                "name": name,
                "contactState": state,
                "icon": "map-marker",
                "iconColor": "#FFFFFF",
                "pinColor": colour,
                "statusGroupId": group,
                "defaultStatus": True,
            },
            # One millisecond apart, in the order above: "where two defaults share a state,
            # the first in this list is the one used" becomes ORDER BY created.
            created=now + timedelta(milliseconds=position),
            modified=now + timedelta(milliseconds=position),
            created_by=SYSTEM_USER,
            modified_by=SYSTEM_USER,
        )
        for position, (name, state, colour, group) in enumerate(DEFAULT_STATUSES)
    ]


class StatusHooks(DocumentHooks):
    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        group_id = data.get("statusGroupId")
        if group_id is not None:
            found = await repo.fetch_data(
                ctx.conn, STATUS_GROUPS.sql, CATALOGUE_OWNER, uuid.UUID(group_id)
            )
            if found is None:
                raise invalid_field("/data/statusGroupId", f"no status group with id {group_id}")
        return data

    async def seed_tenant(
        self, conn: asyncpg.Connection, customer_id: uuid.UUID, now: datetime
    ) -> list[StoredDocument]:
        return default_status_documents(customer_id, now)


STATUSES = Resource(
    name="statuses",
    title="status",
    prefix="/v1/statuses",
    table="statuses",
    data_model=StatusData,
    hooks=StatusHooks(),
    create_example={
        "data": {
            "name": "Wants a Yard Sign",
            "contactState": "contacted-available-successful",
            "icon": "map-marker",
            "iconColor": "#FFFFFF",
            "pinColor": "#27AE60",
        }
    },
    patch_example=[{"op": "replace", "path": "/pinColor", "value": "#1E8449"}],
)
