"""Lists — /v1/lists — and their members: which contact-households a list holds.

A list is an ordinary document; its members are documents of their own
(``list_members``), so each has an envelope, an etag, soft delete and a change feed.
A member names the list, the contact, the household and the association between
them; lists show each member with the contact and household embedded.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from polis_api.documents.envelope import DataModel
from polis_api.documents.repository import Embed
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.resources.assigned import NAMES_ASSIGNED_DOOR
from polis_api.resources.common import NonEmptyText, Text
from polis_api.resources.contacts import CONTACTS
from polis_api.resources.households import HOUSEHOLDS


class ListData(DataModel):
    organizationId: uuid.UUID
    name: NonEmptyText
    description: Text | None = None
    contactsCount: int | None = Field(
        default=None, description="Read-only: how many contact-households are on the list."
    )


class ListHooks(DocumentHooks):
    server_fields = frozenset({"contactsCount"})

    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        # The count belongs to the server: a client's value is replaced by the stored
        # one. A PATCH holds the list's row lock, as membership changes do, so the
        # stored count is current.
        count = previous.get("contactsCount", 0) if previous is not None else 0
        return {**data, "contactsCount": count}


LISTS = Resource(
    name="lists",
    title="list",
    prefix="/v1/lists",
    table="lists",
    data_model=ListData,
    hooks=ListHooks(),
    create_example={
        "data": {
            "organizationId": "eb4dfe83-f1fd-46dd-a69d-b7cf7b566319",
            "name": "Main Street",
            "description": "Every door on Main Street",
        }
    },
    patch_example=[{"op": "replace", "path": "/name", "value": "Main Street, north end"}],
)


class ListMemberData(DataModel):
    listId: uuid.UUID
    contactId: uuid.UUID
    householdId: uuid.UUID
    contactHouseholdId: uuid.UUID


LIST_MEMBERS = Resource(
    name="list-contact-households",
    title="list member",
    prefix="/v1/lists/{listId}/contact-households",
    table="list_members",
    data_model=ListMemberData,
    # A member shows its contact and household: a restricted caller sees only its doors.
    visibility=NAMES_ASSIGNED_DOOR,
    # Written only through the list's routes (resources/list_members.py).
    routes=frozenset(),
    natural_key=("listId", "contactId", "householdId"),
    embeds=(
        Embed(at="contact", table=CONTACTS.table, resource=CONTACTS.name, by="contactId"),
        Embed(at="household", table=HOUSEHOLDS.table, resource=HOUSEHOLDS.name, by="householdId"),
    ),
)
