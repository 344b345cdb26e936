"""Contacts — /v2/contacts: the people behind the doors (docs/contacts.md; Polis v3 contacts).

No ``from __future__ import annotations``: FastAPI reads the route's signature at runtime.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

from polis_api.auth import Principal, require
from polis_api.config import Settings
from polis_api.documents import repository as repo
from polis_api.documents import service
from polis_api.documents.csv_columns import OpenPart
from polis_api.documents.envelope import DataModel
from polis_api.documents.keys import KeyValue, NaturalKey
from polis_api.documents.listing import LIST_PARAMETERS, parse_list_request
from polis_api.documents.repository import Link
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.documents.responses import CSV_CONTENT, PageOut, problem_responses
from polis_api.documents.router import list_representation, listed_response
from polis_api.errors import ApiError, invalid_field
from polis_api.resources.assigned import ASSIGNED_CONTACT
from polis_api.resources.households import HOUSEHOLDS, HouseholdData

# Bounds on what one contact may hold (each tested at and past its bound).
MAX_NAME_PART = 200
MAX_EMAIL = 254  # RFC 5321's longest forward path
MAX_PHONE = 50
MAX_CONTACT_POINTS = 20  # emails, and phones
MAX_LANGUAGES = 20
MAX_AGE = 150
MAX_NOTES = 2048
MAX_EXTERNAL_ID = 200
MAX_FIELDS = 100
MAX_FIELD_NAME = 100
MAX_FIELD_TEXT = 1000
MAX_FIELD_ITEMS = 100

NAME_PARTS = ("title", "given", "middlename", "surname", "suffix")

NamePart = Annotated[str, StringConstraints(max_length=MAX_NAME_PART)]


def _real_date(value: str) -> str:
    try:
        parsed = date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("is not a calendar date (YYYY-MM-DD)") from exc
    if parsed > datetime.now(UTC).date():
        raise ValueError("lies in the future")
    return value


BirthDate = Annotated[
    str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$"), AfterValidator(_real_date)
]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]


class AnglicanName(DataModel):
    title: NamePart | None = None
    given: NamePart | None = None
    middlename: NamePart | None = None
    surname: NamePart | None = None
    suffix: NamePart | None = None


class Name(DataModel):
    anglican: AnglicanName | None = None


class Email(DataModel):
    email: Annotated[str, StringConstraints(max_length=MAX_EMAIL, pattern=r"^[^@\s]+@[^@\s]+$")]
    active: StrictBool | None = None
    primary: StrictBool | None = None


class Phone(DataModel):
    phone: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PHONE)]
    phoneType: Literal["home", "mobile", "business"] | None = None
    active: StrictBool | None = None
    primary: StrictBool | None = None


class Profile(DataModel):
    name: Name | None = None
    emails: Annotated[list[Email], Field(max_length=MAX_CONTACT_POINTS)] | None = None
    phones: Annotated[list[Phone], Field(max_length=MAX_CONTACT_POINTS)] | None = None
    gender: Literal["d", "f", "m", "n", "o"] | None = None
    languages: Annotated[list[LanguageCode], Field(max_length=MAX_LANGUAGES)] | None = Field(
        default=None, description="ISO 639-1 codes, e.g. en, fr."
    )
    birthdate: BirthDate | None = None
    age: Annotated[int, Field(strict=True, ge=0, le=MAX_AGE)] | None = Field(
        default=None, description="Derived by the server from birthdate when one is given."
    )

    @model_validator(mode="after")
    def _one_primary_each(self) -> "Profile":
        for kind, points in (("email", self.emails), ("phone", self.phones)):
            if sum(bool(point.primary) for point in points or ()) > 1:
                raise ValueError(f"at most one {kind} may be primary")
        return self


FieldText = Annotated[str, Field(strict=True, max_length=MAX_FIELD_TEXT)]
FieldScalar = FieldText | StrictBool | StrictInt | StrictFloat
FieldValue = FieldScalar | Annotated[list[FieldScalar], Field(max_length=MAX_FIELD_ITEMS)]
FieldName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_FIELD_NAME, pattern=r"^[^\x00-\x1f]+$")
]


class ContactData(DataModel):
    profile: Profile | None = None
    notes: Annotated[str, StringConstraints(max_length=MAX_NOTES)] | None = None
    fields: Annotated[dict[FieldName, FieldValue], Field(max_length=MAX_FIELDS)] | None = Field(
        default=None, description="Your own fields: text, number, boolean, or a list of them."
    )
    externalId: (
        Annotated[str, StringConstraints(min_length=1, max_length=MAX_EXTERNAL_ID)] | None
    ) = Field(default=None, description="Your system's id; a create repeating it is deduplicated.")
    primaryHouseholdId: uuid.UUID | None = None


def age_on(birthdate: str, today: date) -> int:
    born = date.fromisoformat(birthdate)
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


class ContactHooks(DocumentHooks):
    creates_together = True  # nothing runs after a contact is written

    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        household_id = data.get("primaryHouseholdId")
        if household_id is not None and household_id != (previous or {}).get("primaryHouseholdId"):
            found = await repo.fetch_data(
                ctx.conn, HOUSEHOLDS.sql, ctx.principal.customer_id, uuid.UUID(household_id)
            )
            if found is None:
                raise _unknown_household(household_id)
        return _with_age(data, ctx.now.date())

    async def prepare_many(
        self, ctx: WriteContext, items: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any] | ApiError]:
        """``prepare`` for a bulk call: every primary household looked up at once."""
        named = {data["primaryHouseholdId"] for data in items if data.get("primaryHouseholdId")}
        found = await repo.existing_ids(
            ctx.conn, HOUSEHOLDS.sql, ctx.principal.customer_id, map(uuid.UUID, named)
        )
        known = {str(household) for household in found}
        today = ctx.now.date()
        prepared: list[dict[str, Any] | ApiError] = []
        for data in items:
            household_id = data.get("primaryHouseholdId")
            if household_id is not None and household_id not in known:
                prepared.append(_unknown_household(household_id))
            else:
                prepared.append(_with_age(data, today))
        return prepared


def _unknown_household(household_id: str) -> ApiError:
    return invalid_field(
        "/data/primaryHouseholdId", f"no household with id {household_id} in your tenant"
    )


def _with_age(data: dict[str, Any], today: date) -> dict[str, Any]:
    """``profile.age`` follows ``profile.birthdate`` (as of the write, in UTC)."""
    profile = data.get("profile")
    if not profile or profile.get("birthdate") is None:
        return data
    return {**data, "profile": {**profile, "age": age_on(profile["birthdate"], today)}}


# The full name as the unique index has it: five parts, trimmed, lower case.
FULL_NAME_SQL = (
    "ARRAY["
    + ", ".join(
        f"lower(btrim(coalesce(data #>> '{{profile,name,anglican,{part}}}', '')))"
        for part in NAME_PARTS
    )
    + "]"
)


def _name_and_household(data: dict[str, Any]) -> KeyValue | None:
    """Applies to a contact without an externalId that names its primary household."""
    household = data.get("primaryHouseholdId")
    if data.get("externalId") is not None or household is None:
        return None
    name = ((data.get("profile") or {}).get("name") or {}).get("anglican") or {}
    return (*(str(name.get(part) or "").strip().lower() for part in NAME_PARTS), str(household))


NAME_AND_HOUSEHOLD = NaturalKey(
    label="full name and primaryHouseholdId",
    expressions=(f"({FULL_NAME_SQL})", "(data ->> 'primaryHouseholdId')"),
    normalise=_name_and_household,
    condition="(data ->> 'externalId') IS NULL",
)


def _max_contact_bulk_items(settings: Settings) -> int:
    return settings.max_contact_bulk_items


CONTACTS = Resource(
    name="contacts",
    prefix="/v2/contacts",
    table="contacts",
    visibility=ASSIGNED_CONTACT,
    data_model=ContactData,
    hooks=ContactHooks(),
    natural_key=("externalId",),
    unique_keys=(NAME_AND_HOUSEHOLD,),
    item_bulk_path="/v2/contacts/bulk",
    item_patch_path="/v2/contacts/bulk",
    min_bulk_items=1,
    max_bulk_items=_max_contact_bulk_items,
    # As CSV, each of the tenant's own fields is a column: fields.<name>.
    csv_open=(OpenPart(at=("fields",), prefix="fields"),),
    title="contact",
    create_example={
        "data": {
            "profile": {
                "name": {"anglican": {"title": "Ms", "given": "Ada", "surname": "Lovelace"}},
                "emails": [{"email": "ada@example.org", "active": True, "primary": True}],
                "phones": [
                    {
                        "phone": "+1 404 555 0100",
                        "phoneType": "mobile",
                        "active": True,
                        "primary": True,
                    }
                ],
                "gender": "f",
                "languages": ["en"],
                "birthdate": "1985-12-10",
            },
            "fields": {"ward": 7, "volunteer": True},
            "externalId": "voter-file-000123",
        }
    },
    patch_example=[{"op": "replace", "path": "/profile/name/anglican/surname", "value": "King"}],
)


# A contact's households, through its contact-household associations.
HOUSEHOLD_LINKS = Link(
    table="contact_households",
    from_field="contactId",
    to_field="householdId",
    param="contactHouseholdId",
)
router = APIRouter(tags=[CONTACTS.label])


@router.get(
    "/v2/contacts/{id}/households",
    summary="The households a contact is associated with",
    description=(
        "Each household document carries `params.contactHouseholdId`, the association's id. "
        "`filter`, `sort`, `limit`, `skip` and `count` work as on `GET /v2/households`. "
        "With `since`, the change feed of every household ever associated with the "
        "contact: a household comes again when it changes or when it is associated or "
        "dissociated, and as a tombstone (`meta.isDeleted` true) once it is deleted or no "
        "longer associated."
    ),
    openapi_extra={"parameters": LIST_PARAMETERS},
    responses={
        200: {"model": PageOut[HouseholdData], **CSV_CONTENT},
        **problem_responses(400, 401, 403, 404, 406, 410),
    },
)
async def households_of_contact(
    id: uuid.UUID,
    request: Request,
    principal: Annotated[Principal, Depends(require("read@contacts"))],
    _: Annotated[Principal, Depends(require("read@households"))],
) -> Response:
    settings = request.app.state.settings
    listing = parse_list_request(
        request.query_params,
        HOUSEHOLDS.filterable,
        settings,
        principal.customer_id,
        visible=HOUSEHOLDS.visible_to(principal),
        representation=list_representation(request, HOUSEHOLDS, geo=False),
    )
    async with request.app.state.list_pool.acquire() as conn:
        await service.get_document(conn, CONTACTS, principal, id)
        listed = await service.linked_list_page(conn, HOUSEHOLDS, HOUSEHOLD_LINKS, id, listing)
    return listed_response(request, HOUSEHOLDS.name, listing, listed)
