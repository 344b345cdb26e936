"""Server-owned quality flags: every check of workflow/quality.py, as pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from polis_api.workflow.campaign_statuses import campaign_allows
from polis_api.workflow.quality import (
    FLAGS,
    STATUS_MISMATCH,
    CanvasserKnocks,
    Knock,
    QualityFacts,
    QualityLimits,
    SurveyScript,
    burst,
    far_from_door,
    flagged_share,
    has_burst,
    impossible_speed,
    low_gps_confidence,
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


# far-from-door, low-gps-confidence, impossible-speed, burst.

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
HERE = (40.7128, -74.0060)
# One mile north of HERE (a degree of latitude is 69.09 miles).
MILE_NORTH = (40.7128 + 1 / 69.0934, -74.0060)


def knock_at(
    seconds: float, point: tuple[float, float] | None = HERE, **extra: Any
) -> dict[str, Any]:
    moment = T0 + timedelta(seconds=seconds)
    data: dict[str, Any] = {"timestamp": moment.isoformat().replace("+00:00", "Z"), **extra}
    if point is not None:
        data["location"] = {"lat": point[0], "lng": point[1], **extra.pop("gps", {})}
    return data


def knocks(
    previous: Knock | None = None, next: Knock | None = None, nearby: tuple[float, ...] = ()
) -> QualityFacts:
    moments = tuple(T0 + timedelta(seconds=s) for s in nearby)
    return QualityFacts(canvasser=CanvasserKnocks(previous, next, moments))


def knock(seconds: float, point: tuple[float, float] | None = HERE) -> Knock:
    return Knock(T0 + timedelta(seconds=seconds), point)


@pytest.mark.parametrize(
    ("distance", "flagged"), [(None, False), (0, False), (0.25, False), (0.2501, True), (3, True)]
)
def test_a_knock_further_than_the_setting_is_far_from_door(
    distance: float | None, flagged: bool
) -> None:
    data = {} if distance is None else {"distance": distance}
    assert far_from_door(data, QualityFacts()) is flagged
    assert far_from_door({"distance": 0.2}, QualityFacts(limits=QualityLimits(0.1))) is True


@pytest.mark.parametrize(
    ("confidence", "flagged"),
    [
        (None, False),
        (0, False),
        (-5, False),
        (True, False),
        ("far", False),
        (100, False),
        (101, True),
    ],
)
def test_a_wide_accuracy_radius_is_low_gps_confidence(confidence: Any, flagged: bool) -> None:
    data = {"location": {"lat": 1.0, "lng": 1.0, "confidence": confidence}}
    assert low_gps_confidence(data, QualityFacts()) is flagged


@pytest.mark.parametrize(
    ("facts", "flagged"),
    [
        (knocks(), False),  # the canvasser's first knock
        (knocks(previous=knock(-60, MILE_NORTH)), True),  # a mile in a minute: 60 mph
        (knocks(previous=knock(-600, MILE_NORTH)), False),  # a mile in ten minutes: 6 mph
        (knocks(previous=knock(-181, MILE_NORTH)), False),  # just under 20 mph
        (knocks(previous=knock(-179, MILE_NORTH)), True),
        (knocks(next=knock(60, MILE_NORTH)), True),  # a late sync is held against the next
        (knocks(previous=knock(0, MILE_NORTH)), True),  # somewhere else at the same instant
        (knocks(previous=knock(0, (HERE[0] + 0.0002, HERE[1]))), False),  # GPS noise
        (knocks(previous=knock(-1, None)), False),  # a neighbour without a place
    ],
)
def test_impossible_speed_compares_with_the_neighbouring_knocks(
    facts: QualityFacts, flagged: bool
) -> None:
    assert impossible_speed(knock_at(0), facts) is flagged
    assert impossible_speed(knock_at(0, point=None), facts) is False


@pytest.mark.parametrize(
    ("others", "flagged"),
    [
        ((), False),
        (tuple(range(1, 10)), False),  # ten knocks, this one included
        (tuple(range(1, 11)), True),  # eleven within ten seconds
        (tuple(-6 * n for n in range(1, 11)), True),  # ten before, the first 60 s ago
        (tuple(-6.1 * n for n in range(1, 11)), False),  # spread over 61 s
        ((-50, -40, -30, -20, -10, 10, 20, 30, 40, 50), False),  # 100 s, no minute holds 11
        ((-25, -20, -15, -10, -5, 5, 10, 15, 20, 25), True),  # around it
        (tuple([0] * 10), True),  # the same instant
    ],
)
def test_a_burst_is_more_than_ten_knocks_in_one_minute_holding_this_one(
    others: tuple[float, ...], flagged: bool
) -> None:
    assert burst(knock_at(0), knocks(nearby=others)) is flagged


def test_burst_windows_at_the_ends_of_time_do_not_overflow() -> None:
    earliest = datetime(1, 1, 1, tzinfo=UTC)
    assert has_burst(earliest, (earliest,) * 11, QualityLimits()) is True
    latest = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    assert has_burst(latest, (), QualityLimits()) is False


def test_flags_come_in_a_fixed_order() -> None:
    data = knock_at(0, distance=5)
    data["location"]["confidence"] = 500
    facts = replace(
        knocks(previous=knock(-1, MILE_NORTH), nearby=tuple(range(1, 11))),
        campaign_statuses=frozenset({"a"}),
    )
    flagged = with_quality_flags({**data, "statusId": "b"}, facts)["qualityFlags"]
    assert flagged == [
        "far-from-door",
        "low-gps-confidence",
        "impossible-speed",
        "burst",
        "status-mismatch",
    ]
    assert tuple(flagged) == tuple(flag for flag in FLAGS if flag != "survey-mismatch")


@pytest.mark.parametrize(
    ("flagged", "total", "share"), [(0, 0, 0.0), (0, 3, 0.0), (1, 3, 0.3333), (2, 2, 1.0)]
)
def test_flagged_share(flagged: int, total: int, share: float) -> None:
    assert flagged_share(flagged, total) == share
