"""Notes — /v2/notes: what a canvasser wrote down about a contact (docs/contacts.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

from polis_api.documents import repository as repo
from polis_api.documents.envelope import DataModel
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.errors import invalid_field
from polis_api.resources.contacts import CONTACTS

MAX_NOTE_TEXT = 2048


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    return value


class NoteData(DataModel):
    contactId: uuid.UUID
    text: Annotated[
        str, StringConstraints(min_length=1, max_length=MAX_NOTE_TEXT), AfterValidator(_not_blank)
    ]


class NoteHooks(DocumentHooks):
    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        contact_id = data["contactId"]
        if previous is not None and previous.get("contactId") == contact_id:
            return data  # the contact may since have been deleted; the note stays its own
        found = await repo.fetch_data(
            ctx.conn, CONTACTS.sql, ctx.principal.customer_id, uuid.UUID(contact_id)
        )
        if found is None:
            raise invalid_field(
                "/data/contactId", f"no contact with id {contact_id} in your tenant"
            )
        return data


NOTES = Resource(
    name="notes",
    prefix="/v2/notes",
    table="notes",
    data_model=NoteData,
    hooks=NoteHooks(),
    title="note",
    create_example={
        "data": {
            "contactId": "6f1c1a52-3c1e-4f7e-9f0e-2b1a9c3d4e5f",
            "text": "Prefers a call after 6pm; asked about the library vote.",
        }
    },
    patch_example=[{"op": "replace", "path": "/text", "value": "Moved away in May."}],
)
