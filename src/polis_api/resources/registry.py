"""Every resource the server exposes; adding one means adding it here."""

from __future__ import annotations

from fastapi import APIRouter

from polis_api.documents.resource import Resource
from polis_api.documents.router import build_routers
from polis_api.documents.schema import document_table
from polis_api.resources import (
    campaign_status_links,
    campaign_statuses,
    contact_household_campaigns,
    contact_households,
    contacts,
    list_members,
    progress,
    review,
    segment_routes,
    survey_versions,
    tenant_settings,
    turf_routes,
    walklist_download,
    walklist_routes,
)
from polis_api.resources.campaigns import CAMPAIGNS
from polis_api.resources.contact_households import CONTACT_HOUSEHOLDS
from polis_api.resources.contacts import CONTACTS
from polis_api.resources.door_records import DOOR_RECORDS
from polis_api.resources.households import HOUSEHOLDS
from polis_api.resources.interactions import INTERACTIONS
from polis_api.resources.lists import LIST_MEMBERS, LISTS
from polis_api.resources.notes import NOTES
from polis_api.resources.segments import SEGMENTS
from polis_api.resources.status_groups import STATUS_GROUPS
from polis_api.resources.statuses import STATUSES
from polis_api.resources.surveys import SURVEYS
from polis_api.resources.turfs import TURFS
from polis_api.resources.walklists import WALKLISTS

RESOURCES: tuple[Resource, ...] = (
    CAMPAIGNS,
    STATUSES,
    HOUSEHOLDS,
    CONTACT_HOUSEHOLDS,
    DOOR_RECORDS,
    INTERACTIONS,
    SURVEYS,
    SEGMENTS,
    CONTACTS,
    NOTES,
    LISTS,
    LIST_MEMBERS,
    STATUS_GROUPS,
    TURFS,
    WALKLISTS,
)

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
    "households": document_table(
        "households", ("unit_num", "customer_id, (data ->> 'unitNum'), id")
    ),
    "contact_households": document_table(
        "contact_households",
        ("contact", "customer_id, (data ->> 'contactId'), id"),
        ("household", "customer_id, (data ->> 'householdId'), id"),
        feeds_by=("contactId",),
    ),
    "contact_household_campaigns": document_table(
        "contact_household_campaigns",
        ("campaign", "customer_id, (data ->> 'campaignId'), id"),
        ("campaign_modified", "customer_id, (data ->> 'campaignId'), modified, id"),
        feeds_by=("campaignId",),
    ),
    "interactions": document_table(
        "interactions",
        ("campaign", "customer_id, (data ->> 'campaignId'), id"),
        ("contact", "customer_id, (data ->> 'contactId'), id"),
        ("contact_household", "customer_id, (data ->> 'contactHouseholdId'), id"),
        ("household", "customer_id, (data ->> 'householdId'), id"),
        feeds_by=("campaignId",),
    ),
    # Also, in the migration: a canvasser's knocks by timestamp (all, and those with a
    # place) and a GIN index on qualityFlags; see resources/canvasser_knocks.py.
    "surveys": document_table(
        "surveys",
        ("campaign", "customer_id, (data ->> 'campaignId'), id"),
        feeds_by=("campaignId",),
    ),
    # Not a document table: every version of every survey (resources/survey_versions).
    "survey_versions": survey_versions.survey_versions,
    "segments": document_table(
        "segments",
        ("campaign", "customer_id, (data ->> 'campaignId'), id"),
        ("survey", "customer_id, (data ->> 'surveyId'), id"),
        feeds_by=("campaignId",),
    ),
    # Also, in the migration: unique keys (externalId; full name + household) and
    # trigram indexes for name search; see resources/contacts.py.
    "contacts": document_table(
        "contacts", ("primary_household", "customer_id, (data ->> 'primaryHouseholdId'), id")
    ),
    "notes": document_table("notes", ("contact", "customer_id, (data ->> 'contactId'), id")),
    "lists": document_table(
        "lists", ("organization", "customer_id, (data ->> 'organizationId'), id")
    ),
    "list_members": document_table(
        "list_members",
        ("list", "customer_id, (data ->> 'listId'), id"),
        ("contact_household", "customer_id, (data ->> 'contactHouseholdId'), id"),
        feeds_by=("listId",),
    ),
    # Not per tenant: one catalogue under the nil customer id (a Citus reference table).
    "status_groups": document_table("status_groups"),
    "campaign_statuses": campaign_status_links.CAMPAIGN_STATUSES,
    # Doors by place use the households' GiST index ix_households_point (migration
    # 0014 and the geography migration, IF NOT EXISTS); see resources/door_places.py.
    "turfs": document_table(
        "turfs", ("campaign", "customer_id, (data ->> 'campaignId'), id"), feeds_by=("campaignId",)
    ),
    "walklists": document_table(
        "walklists",
        ("campaign", "customer_id, (data ->> 'campaignId'), id"),
        ("assignee", "customer_id, (data ->> 'assigneeId'), id"),
        feeds_by=("campaignId",),
    ),
}


def routers() -> list[APIRouter]:
    # Specific routes first: /v1/campaigns/contact-households/bulk must not be
    # mistaken for a campaign id.
    return [
        contact_households.router,
        contact_household_campaigns.router,
        list_members.router,
        contacts.router,
        segment_routes.router,
        survey_versions.router,
        campaign_statuses.router,
        turf_routes.router,
        walklist_routes.router,
        walklist_download.router,
        tenant_settings.router,
        progress.router,
        review.router,
        *(router for resource in RESOURCES for router in build_routers(resource)),
    ]
