"""Server-owned quality flags on an interaction (``data.qualityFlags``).

A canvasser's work is never refused for a mismatch the phone could not know about
(a script edited meanwhile); the interaction is stored and flagged instead, so an
organiser can review it. Each flag is one pure function of the interaction's data
and the facts the server looked up for it; adding a flag means adding a function
to ``CHECKS`` (and, if it needs one, a field to ``QualityFacts``).

The list is present only when some flag is raised, so an interaction with nothing
to report reads exactly as it was sent. A client's own ``qualityFlags`` is ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from polis_api.workflow.campaign_statuses import campaign_allows

FIELD = "qualityFlags"
SURVEY_MISMATCH = "survey-mismatch"
STATUS_MISMATCH = "status-mismatch"


@dataclass(frozen=True, slots=True)
class SurveyScript:
    """The survey version an interaction answers: question id → its option ids.

    ``questions`` is None when the survey exists but not the version named.
    """

    questions: Mapping[str, frozenset[str]] | None


@dataclass(frozen=True, slots=True)
class QualityFacts:
    """What the server knows about an interaction's references, for the checks."""

    # None: the survey is not one of the tenant's, so there is no script to hold the
    # answers against (Polis clients name surveys this server may never have seen).
    survey: SurveyScript | None = None
    # The ids of the statuses linked to the interaction's campaign (empty: none linked,
    # so every status of the tenant is allowed).
    campaign_statuses: frozenset[str] = frozenset()


def _option_ids(response: Mapping[str, Any]) -> list[Any]:
    """The options a response names: ``optionId`` and/or the list ``optionIds``."""
    named = [response["optionId"]] if response.get("optionId") is not None else []
    many = response.get("optionIds")
    return named + (list(many) if isinstance(many, list) else [])


def _response_fits(
    question_id: str, response: Any, questions: Mapping[str, frozenset[str]]
) -> bool:
    if question_id not in questions:
        return False
    if not isinstance(response, Mapping):
        return True
    inner = response.get("questionId")
    if inner is not None and str(inner) not in questions:
        return False
    options = questions[question_id]
    return all(str(option) in options for option in _option_ids(response))


def survey_mismatch(interaction: Mapping[str, Any], facts: QualityFacts) -> bool:
    """Answers that the survey version named cannot hold: an unknown version, or a
    response naming a question or option that version does not have."""
    if facts.survey is None:
        return False
    questions = facts.survey.questions
    if questions is None:
        return True
    responses = (interaction.get("survey") or {}).get("responses") or {}
    return not all(_response_fits(key, value, questions) for key, value in responses.items())


def status_mismatch(interaction: Mapping[str, Any], facts: QualityFacts) -> bool:
    """A status the interaction's campaign does not allow (a door would refuse it)."""
    status_id = interaction.get("statusId")
    return not campaign_allows(
        facts.campaign_statuses, None if status_id is None else str(status_id)
    )


Check = Callable[[Mapping[str, Any], QualityFacts], bool]

# flag name → the check that raises it, in the order flags are listed.
CHECKS: tuple[tuple[str, Check], ...] = (
    (SURVEY_MISMATCH, survey_mismatch),
    (STATUS_MISMATCH, status_mismatch),
)


def quality_flags(interaction: Mapping[str, Any], facts: QualityFacts) -> list[str]:
    return [flag for flag, check in CHECKS if check(interaction, facts)]


def with_quality_flags(interaction: dict[str, Any], facts: QualityFacts) -> dict[str, Any]:
    """``interaction`` with the server's flags in place of whatever the client sent."""
    flagged = {key: value for key, value in interaction.items() if key != FIELD}
    flags = quality_flags(flagged, facts)
    if flags:
        flagged[FIELD] = flags
    return flagged
