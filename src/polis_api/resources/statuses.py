"""Statuses — /v1/statuses: the pins a door can show (docs/api.md, Statuses)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import asyncpg
from pydantic import StrictBool

from polis_api.documents.envelope import DataModel, StoredDocument
from polis_api.documents.resource import DocumentHooks, Resource
from polis_api.resources.common import HexColour, NonEmptyText, Text
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
# first is the one used. (name, contactState, pin colour)
DEFAULT_STATUSES: tuple[tuple[str, str, str], ...] = (
    ("Appointment", "appointment", "#8E44AD"),
    ("Bad Contact Info", "contacted-unavailable-other", "#7F8C8D"),
    ("Come Back", "come-back", "#F39C12"),
    ("Default", "not-contacted-normal", "#3498DB"),
    ("Do Not Knock", "not-contacted-do-not-knock", "#2C3E50"),
    ("High Priority", "not-contacted-high-priority", "#E67E22"),
    ("Not Home", "contacted-unavailable-not-home", "#F1C40F"),
    ("Not Successful", "contacted-available-not-successful", "#E74C3C"),
    ("Refused", "contacted-unavailable-other", "#C0392B"),
    ("Successful", "contacted-available-successful", "#27AE60"),
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
                "defaultStatus": True,
            },
            # One millisecond apart, in the order above: "where two defaults share a state,
            # the first in this list is the one used" becomes ORDER BY created.
            created=now + timedelta(milliseconds=position),
            modified=now + timedelta(milliseconds=position),
            created_by=SYSTEM_USER,
            modified_by=SYSTEM_USER,
        )
        for position, (name, state, colour) in enumerate(DEFAULT_STATUSES)
    ]


class StatusHooks(DocumentHooks):
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
