"""Households — /v2/households: where the doors are (docs/api.md, Households)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictInt, StringConstraints

from polis_api.documents.envelope import DataModel
from polis_api.documents.geo import Geo
from polis_api.documents.resource import DocumentHooks, Resource
from polis_api.errors import ValidationFailed
from polis_api.filtering.to_sql import FieldPolicy
from polis_api.resources.assigned import ASSIGNED_HOUSEHOLD
from polis_api.resources.common import Text

ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


# Strict numbers: `true` or "33.7" is refused, not stored as 1 or 33.7.
class Coords(DataModel):
    lat: Annotated[float, Field(strict=True, ge=-90, le=90)]
    lng: Annotated[float, Field(strict=True, ge=-180, le=180)]


class Address(DataModel):
    number: Text | StrictInt | None = None
    streetName: Text | None = None
    city: Text | None = None
    state: Text | None = None
    postalCode: Text | None = None
    country: Text | None = None
    coords: Coords | None = None


class HouseholdData(DataModel):
    unitNum: Text | StrictInt | None = None
    address: Address | None = None
    externalId: ExternalId | None = Field(
        default=None,
        description="Your system's id; a create that repeats it returns the existing household.",
    )


class HouseholdHooks(DocumentHooks):
    def accept_params(self, data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        """Polis sends the externalId as ``params.externalId``; inside data works too."""
        unknown = set(params) - {"externalId"}
        if unknown:
            raise ValidationFailed(
                f"Households take only params.externalId; got {sorted(unknown)}."
            )
        external_id = params.get("externalId")
        if external_id is None:
            return data
        if not isinstance(external_id, str) or not 0 < len(external_id) <= 200:
            raise ValidationFailed("params.externalId must be a string of 1 to 200 characters.")
        if data.get("externalId") not in (None, external_id):
            raise ValidationFailed("params.externalId and data.externalId disagree.")
        return {**data, "externalId": external_id}


HOUSEHOLDS = Resource(
    name="households",
    prefix="/v2/households",
    table="households",
    visibility=ASSIGNED_HOUSEHOLD,
    data_model=HouseholdData,
    hooks=HouseholdHooks(),
    natural_key=("externalId",),
    bulk_path="/v2/households/bulk",
    title="household",
    # Every /data path; city, postalCode, unitNum, externalId and coords/lat have
    # expression indexes, any other well-typed filter runs within the statement timeout.
    filterable=FieldPolicy(
        allowed_columns=frozenset({"/id", "/customerId", "/meta/created", "/meta/modified"}),
    ),
    geo=Geo(),
    create_example={
        "data": {
            "unitNum": "2B",
            "address": {
                "number": "221",
                "streetName": "Baker Street",
                "city": "Decatur",
                "state": "GA",
                "postalCode": "30030",
                "country": "US",
                "coords": {"lat": 33.7748, "lng": -84.2963},
            },
        },
        "params": {"externalId": "voter-file-000123"},
    },
    patch_example=[{"op": "replace", "path": "/unitNum", "value": "3C"}],
)
