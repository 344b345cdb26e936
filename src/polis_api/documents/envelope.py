"""The document envelope (docs/api.md, Documents): request bodies and the stored document."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
)

from polis_api.documents.etag import compute_etag

D = TypeVar("D", bound=BaseModel)


def utc_now_ms() -> datetime:
    """Now, truncated to milliseconds: what clients see is exactly what is stored."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_timestamp(moment: datetime) -> str:
    """``2018-09-18T20:12:46.771Z``: UTC, milliseconds, ``Z``, always this width."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# A batch of documents shares its moments, tenant and writers: each is formatted once
# (str(UUID) and strftime were a tenth of a bulk call's Python).
@lru_cache(maxsize=256)
def _moment_text(moment: datetime) -> str:
    return format_timestamp(moment)


@lru_cache(maxsize=256)
def _id_text(value: uuid.UUID) -> str:
    return str(value)


def _to_utc_ms(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timestamp needs a time zone (end it with Z)")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+03:00 is before year 1 in UTC
        raise ValueError(
            f"timestamp {moment.isoformat()} is out of range: it must fall between years "
            "1 and 9999 once converted to UTC"
        ) from exc
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


Timestamp = Annotated[
    datetime,
    AfterValidator(_to_utc_ms),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]


class DataModel(BaseModel):
    """Base of every resource's ``data`` model: unknown fields and NaN are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)


class CreateBody(BaseModel, Generic[D]):
    """``{"data": {...}}`` with the envelope fields a client may name."""

    model_config = ConfigDict(extra="forbid")

    data: D
    id: uuid.UUID | None = Field(default=None, description="Optional client-chosen id.")
    customerId: uuid.UUID | None = Field(
        default=None, description="Must be the token's tenant if given."
    )
    securityGroupId: uuid.UUID | None = Field(
        default=None, description="Defaults to the token's security group."
    )
    meta: Any = Field(default=None, description="Written by the server only; must be absent.")
    params: dict[str, Any] | None = Field(
        default=None, description="Polis create parameters (households: externalId)."
    )


class BulkBody(BaseModel, Generic[D]):
    """``{"data": [{"data": {...}, "params": {...}}, ...]}`` as in Polis' bulk routes."""

    model_config = ConfigDict(extra="forbid")

    data: list[CreateBody[D]]


class PatchOperation(BaseModel):
    """One RFC 6902 operation; ``path`` and ``from`` are relative to ``data``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str
    from_: str | None = Field(default=None, alias="from")
    value: Any = None


class PatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: list[PatchOperation]

    def operations(self) -> list[dict[str, Any]]:
        # exclude_unset keeps "value": null apart from a missing value (RFC 6902 §4).
        return [op.model_dump(by_alias=True, exclude_unset=True) for op in self.data]


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A row of a document table, as Python sees it while writing."""

    id: uuid.UUID
    customer_id: uuid.UUID
    security_group_id: uuid.UUID
    data: dict[str, Any]
    created: datetime
    modified: datetime
    created_by: uuid.UUID
    modified_by: uuid.UUID
    is_deleted: bool = False

    def envelope(self, resource: str) -> dict[str, Any]:
        """The document as clients see it, without the etag (what the etag hashes)."""
        return {
            "id": str(self.id),
            "data": self.data,
            "meta": {
                "created": _moment_text(self.created),
                "modified": _moment_text(self.modified),
                "resource": resource,
                "createdBy": _id_text(self.created_by),
                "isDeleted": self.is_deleted,
                "modifiedBy": _id_text(self.modified_by),
            },
            "customerId": _id_text(self.customer_id),
            "securityGroupId": _id_text(self.security_group_id),
        }

    def etag(self, resource: str) -> str:
        return compute_etag(self.envelope(resource))

    def revised(self, *, data: dict[str, Any], by: uuid.UUID, at: datetime) -> StoredDocument:
        return replace(self, data=data, modified=self._next_modified(at), modified_by=by)

    def deleted(self, *, by: uuid.UUID, at: datetime) -> StoredDocument:
        return replace(self, is_deleted=True, modified=self._next_modified(at), modified_by=by)

    def _next_modified(self, at: datetime) -> datetime:
        # Writers read the clock before waiting for the row lock, so a writer that
        # waited may hold an older time than the revision it now replaces; meta.modified
        # must never go backwards for one document (docs/sync.md).
        return max(at, self.modified)
