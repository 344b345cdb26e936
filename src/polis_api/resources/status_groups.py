"""Status groups — /v1/status-groups: the fixed catalogue statuses are sorted into.

Every tenant reads the same ten groups; nobody writes them (the migration seeds
them with fixed ids). Their rows sit in an ordinary document table under one owner
id that is no tenant's, so reads, lists, filters and the change feed work as for
any other document.
"""

from __future__ import annotations

import uuid
from typing import Literal

from polis_api.documents.envelope import DataModel
from polis_api.documents.resource import Resource
from polis_api.resources.common import HexColour, NonEmptyText, Text
from polis_api.workflow.states import ContactState

# The customer id the catalogue's rows are stored under: the nil UUID, no tenant's.
CATALOGUE_OWNER = uuid.UUID(int=0)

StatusType = Literal["successful", "unsuccessful", "appointment", "unavailable", "list"]


class StatusGroupData(DataModel):
    name: NonEmptyText
    icon: Text
    pinColor: HexColour
    iconColor: HexColour
    statusType: StatusType
    contactState: ContactState


STATUS_GROUPS = Resource(
    name="status-groups",
    title="status group",
    prefix="/v1/status-groups",
    table="status_groups",
    data_model=StatusGroupData,
    routes=frozenset({"retrieve", "list"}),
    shared_owner=CATALOGUE_OWNER,
)
