"""Server-owned quality flags: survey-mismatch and status-mismatch."""

from __future__ import annotations

from typing import Any

import pytest

from polis_api.workflow.campaign_statuses import campaign_allows
from polis_api.workflow.quality import (
    STATUS_MISMATCH,
    QualityFacts,
    SurveyScript,
    with_quality_flags,
)

SCRIPT = SurveyScript(questions={"q1": frozenset({"o1", "o2"}), "q2": frozenset()})


def answered(responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"survey": {"surveyId": "s", "responses": responses}, **extra}


def flags(data: dict[str, Any], facts: QualityFacts) -> list[str]:
    return list(with_quality_flags(data, facts).get("qualityFlags", []))


def test_answers_the_script_holds_raise_no_flag_and_leave_no_field() -> None:
    data = answered({"q1": {"questionId": "q1", "optionId": "o1"}, "q2": {"fields": {"a": 1}}})
    assert with_quality_flags(data, QualityFacts(survey=SCRIPT)) == data


def test_an_unknown_question_option_or_version_is_a_survey_mismatch() -> None:
    mismatch = ["survey-mismatch"]
    assert flags(answered({"q9": {}}), QualityFacts(survey=SCRIPT)) == mismatch
    assert flags(answered({"q1": {"optionId": "o9"}}), QualityFacts(survey=SCRIPT)) == mismatch
    assert flags(answered({"q1": {"optionIds": ["o1", "o9"]}}), QualityFacts(SCRIPT)) == mismatch
    assert flags(answered({"q1": {"questionId": "q9"}}), QualityFacts(survey=SCRIPT)) == mismatch
    unknown_version = QualityFacts(survey=SurveyScript(questions=None))
    assert flags(answered({}), unknown_version) == mismatch


def test_a_survey_the_server_does_not_know_raises_no_flag() -> None:
    assert flags(answered({"anything": {}}), QualityFacts(survey=None)) == []


def test_a_clients_flags_are_replaced() -> None:
    data = answered({"q9": {}}, qualityFlags=["all-good"])
    assert flags(data, QualityFacts(survey=SCRIPT)) == ["survey-mismatch"]
    assert "qualityFlags" not in with_quality_flags(
        answered({}, qualityFlags=["x"]), QualityFacts()
    )


# status-mismatch: the campaign's status rule, shared with door records.

LINKED = frozenset({"a", "b"})


@pytest.mark.parametrize(
    ("linked", "status_id", "allowed"),
    [
        (frozenset(), "anything", True),  # nothing linked: every status of the tenant
        (frozenset(), None, True),
        (LINKED, "a", True),
        (LINKED, "c", False),
        (LINKED, None, True),  # naming no status is never a mismatch
    ],
)
def test_a_status_outside_the_campaigns_set_is_flagged_not_refused(
    linked: frozenset[str], status_id: str | None, allowed: bool
) -> None:
    assert campaign_allows(linked, status_id) is allowed
    interaction = {"statusId": status_id} if status_id is not None else {}
    flagged = with_quality_flags(interaction, QualityFacts(campaign_statuses=linked))
    assert flagged.get("qualityFlags") == (None if allowed else [STATUS_MISMATCH])
