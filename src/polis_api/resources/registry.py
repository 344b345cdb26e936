"""Every resource the server exposes; adding one means adding it here."""

from __future__ import annotations

from fastapi import APIRouter

from polis_api.documents.resource import Resource
from polis_api.documents.router import build_router
from polis_api.documents.schema import document_table
from polis_api.resources.campaigns import CAMPAIGNS
from polis_api.resources.statuses import STATUSES

RESOURCES: tuple[Resource, ...] = (CAMPAIGNS, STATUSES)

# The SQLAlchemy view of the schema (alembic's target metadata); the migrations are
# the source of truth and must create exactly these indexes.
TABLES = {
    "campaigns": document_table(
        "campaigns",
        ("organization", "customer_id, (data ->> 'organizationId'), id"),
        ("status", "customer_id, (data ->> 'status'), id"),
    ),
    "statuses": document_table(
        "statuses", ("contact_state", "customer_id, (data ->> 'contactState'), id")
    ),
}


def routers() -> list[APIRouter]:
    return [build_router(resource) for resource in RESOURCES]
