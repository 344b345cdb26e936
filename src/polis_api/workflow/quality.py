"""Server-owned quality flags on an interaction (``data.qualityFlags``; docs/quality.md).

A canvasser's work is never refused for a mismatch the phone could not know about
(a script edited meanwhile) or for a knock that looks wrong (far from the door, too
fast after the last one); the interaction is stored and flagged instead, so an
organiser can review it. Each flag is one pure function of the interaction's data
and the facts the server looked up for it; adding a flag means adding a function
to ``CHECKS`` (and, if it needs one, a field to ``QualityFacts``).

The list is present only when some flag is raised, so an interaction with nothing
to report reads exactly as it was sent. A client's own ``qualityFlags`` is ignored.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from polis_api.workflow.campaign_statuses import campaign_allows
from polis_api.workflow.distance import Point, miles_between
from polis_api.workflow.door import parse_timestamp

FIELD = "qualityFlags"
FAR_FROM_DOOR = "far-from-door"
LOW_GPS_CONFIDENCE = "low-gps-confidence"
IMPOSSIBLE_SPEED = "impossible-speed"
BURST = "burst"
SURVEY_MISMATCH = "survey-mismatch"
STATUS_MISMATCH = "status-mismatch"

# Two fixes this close are the same place give or take GPS noise: however little time
# lies between them, the canvasser did not travel (two contacts of one household are
# often recorded in the same second).
GPS_NOISE_MILES = 0.02


@dataclass(frozen=True, slots=True)
class QualityLimits:
    """The thresholds of the checks (settings: docs/quality.md)."""

    far_from_door_miles: float = 0.25
    # ``location.confidence`` is the phone's accuracy radius in metres (larger is worse).
    low_gps_accuracy_metres: float = 100.0
    max_speed_mph: float = 20.0
    burst_knocks: int = 10
    burst_seconds: float = 60.0

    @property
    def burst_window(self) -> timedelta:
        return timedelta(seconds=self.burst_seconds)


@dataclass(frozen=True, slots=True)
class Knock:
    """Another live knock of the same canvasser: when, and where (None: no location)."""

    at: datetime
    point: Point | None = None


@dataclass(frozen=True, slots=True)
class CanvasserKnocks:
    """The canvasser's other knocks around this one's ``timestamp``.

    ``previous``/``next``: the nearest located knock at or before / at or after it.
    ``nearby``: the other knocks within the burst window on either side (at most
    ``burst_knocks`` of them on each side are needed to decide; see ``burst``).
    """

    previous: Knock | None = None
    next: Knock | None = None
    nearby: tuple[datetime, ...] = ()


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
    limits: QualityLimits = field(default_factory=QualityLimits)
    canvasser: CanvasserKnocks = field(default_factory=CanvasserKnocks)


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


def far_from_door(interaction: Mapping[str, Any], facts: QualityFacts) -> bool:
    """Recorded further from the household than the setting allows (``distance``, miles)."""
    distance = interaction.get("distance")
    return isinstance(distance, int | float) and distance > facts.limits.far_from_door_miles


def low_gps_confidence(interaction: Mapping[str, Any], facts: QualityFacts) -> bool:
    """The phone's own accuracy radius is wider than the setting: its place is a guess.

    Zero, negative or absent means "not reported" (Polis' examples send 0), not
    "perfect": no flag, since nothing is known either way.
    """
    accuracy = (interaction.get("location") or {}).get("confidence")
    if isinstance(accuracy, bool) or not isinstance(accuracy, int | float) or accuracy <= 0:
        return False
    return accuracy > facts.limits.low_gps_accuracy_metres


def _point(interaction: Mapping[str, Any]) -> Point | None:
    location = interaction.get("location") or {}
    lat, lng = location.get("lat"), location.get("lng")
    return None if lat is None or lng is None else (lat, lng)


def _moment(interaction: Mapping[str, Any]) -> datetime | None:
    timestamp = interaction.get("timestamp")
    return parse_timestamp(timestamp) if isinstance(timestamp, str) else None


def _too_fast(here: Point, at: datetime, other: Knock | None, limit_mph: float) -> bool:
    if other is None or other.point is None:
        return False
    miles = miles_between(here, other.point)
    if miles <= GPS_NOISE_MILES:
        return False
    hours = abs((at - other.at).total_seconds()) / 3600
    return hours == 0 or miles / hours > limit_mph


def impossible_speed(interaction: Mapping[str, Any], facts: QualityFacts) -> bool:
    """Getting here from the canvasser's previous located knock (or, for a knock that
    synced late, on to its next one) needs more than the speed limit."""
    here, at = _point(interaction), _moment(interaction)
    if here is None or at is None:
        return False
    limit = facts.limits.max_speed_mph
    known = facts.canvasser
    return _too_fast(here, at, known.previous, limit) or _too_fast(here, at, known.next, limit)


def burst(interaction: Mapping[str, Any], facts: QualityFacts) -> bool:
    """More than ``burst_knocks`` knocks, this one included, inside one window of
    ``burst_seconds`` that contains this knock (before it, after it, or around it)."""
    at = _moment(interaction)
    return at is not None and has_burst(at, facts.canvasser.nearby, facts.limits)


def shifted(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta``, held inside the years datetime can hold (1 to 9999)."""
    try:
        return moment + delta
    except OverflowError:
        edge = datetime.max if delta > timedelta(0) else datetime.min
        return edge.replace(tzinfo=moment.tzinfo)


def has_burst(at: datetime, others: tuple[datetime, ...], limits: QualityLimits) -> bool:
    """Whether some window of ``burst_seconds`` holding ``at`` holds more than
    ``burst_knocks`` of ``others`` and ``at`` (each window starts at a knock)."""
    times = sorted((*others, at))
    window = limits.burst_window
    earliest = shifted(at, -window)
    for start, moment in enumerate(times):
        if moment > at:
            break
        if moment < earliest:
            continue
        inside = bisect.bisect_right(times, shifted(moment, window)) - start
        if inside > limits.burst_knocks:
            return True
    return False


Check = Callable[[Mapping[str, Any], QualityFacts], bool]

# flag name → the check that raises it, in the order flags are listed.
CHECKS: tuple[tuple[str, Check], ...] = (
    (FAR_FROM_DOOR, far_from_door),
    (LOW_GPS_CONFIDENCE, low_gps_confidence),
    (IMPOSSIBLE_SPEED, impossible_speed),
    (BURST, burst),
    (SURVEY_MISMATCH, survey_mismatch),
    (STATUS_MISMATCH, status_mismatch),
)


FLAGS: tuple[str, ...] = tuple(flag for flag, _ in CHECKS)


def quality_flags(interaction: Mapping[str, Any], facts: QualityFacts) -> list[str]:
    return [flag for flag, check in CHECKS if check(interaction, facts)]


def with_quality_flags(interaction: dict[str, Any], facts: QualityFacts) -> dict[str, Any]:
    """``interaction`` with the server's flags in place of whatever the client sent."""
    flagged = {key: value for key, value in interaction.items() if key != FIELD}
    flags = quality_flags(flagged, facts)
    if flags:
        flagged[FIELD] = flags
    return flagged


def flagged_share(flagged: int, interactions: int) -> float:
    """The review's ranking figure: the share of a canvasser's knocks that are flagged."""
    return round(flagged / interactions, 4) if interactions else 0.0
