"""Builders for surveys and segments."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.builders import create


def question(question_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "questionId": question_id or str(uuid.uuid4()),
        "type": "multi-choice",
        "text": "Will you vote?",
        **fields,
    }


def option(option_id: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"optionId": option_id or str(uuid.uuid4()), "text": "Yes", **fields}


def two_question_script() -> list[dict[str, Any]]:
    """Q1 (options yes → Q2, no → end), then Q2 (text) → end."""
    second = question(type="text", text="Why?", next="end")
    first = question(
        options=[
            option(text="Yes", value="yes", success=True, next=second["questionId"]),
            option(text="No", value="no", next="end"),
        ]
    )
    return [first, second]


def survey_body(campaign_id: str, **data: Any) -> dict[str, Any]:
    return {
        "data": {
            "campaignId": campaign_id,
            "name": "Door script",
            "questions": two_question_script(),
            **data,
        }
    }


async def new_survey(
    client: httpx.AsyncClient, headers: dict[str, str], campaign_id: str, **data: Any
) -> dict[str, Any]:
    return await create(client, "/v1/surveys", survey_body(campaign_id, **data), headers)


EVERYONE = {"filter": "all", "clauses": [{"source": "1", "operator": "eq", "value": "1"}]}


def segment_body(campaign_id: str, survey_id: str, precedence: int, **data: Any) -> dict[str, Any]:
    return {
        "data": {
            "campaignId": campaign_id,
            "surveyId": survey_id,
            "name": f"Segment {precedence}",
            "criteria": EVERYONE,
            "precedence": precedence,
            **data,
        }
    }


async def new_segment(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    campaign_id: str,
    survey_id: str,
    precedence: int,
    **data: Any,
) -> dict[str, Any]:
    body = segment_body(campaign_id, survey_id, precedence, **data)
    return await create(client, "/v1/segments", body, headers)
