"""Surveys — /v1/surveys: a campaign's script of questions, kept in every version.

The server numbers each write of a survey (``version`` 1, 2, …) and keeps a copy of
every version (resources/survey_versions.py), so an interaction answered against an
older script can still be read against the questions the canvasser saw.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool, StringConstraints

from polis_api.documents.envelope import DataModel, StoredDocument
from polis_api.documents.resource import DocumentHooks, Resource, WriteContext
from polis_api.errors import ValidationFailed
from polis_api.filtering.to_sql import FieldPolicy
from polis_api.resources import references as refs
from polis_api.resources import survey_versions
from polis_api.resources.common import NonEmptyText, at_most
from polis_api.workflow.survey_graph import END, graph_problems

QuestionText = Annotated[str, StringConstraints(max_length=512)]
Tag = Annotated[str, StringConstraints(max_length=200)]
# A question id, or "end" to finish the survey.
Next = uuid.UUID | Literal["end"]


class Option(DataModel):
    optionId: uuid.UUID
    text: QuestionText
    tag: Tag | None = None
    value: Annotated[str, StringConstraints(max_length=512)] | int | float | bool | None = None
    success: StrictBool = False
    next: Next | None = None


class Question(DataModel):
    questionId: uuid.UUID
    type: Literal["availability", "multi-choice", "multi-select", "scale", "text", "verification"]
    text: QuestionText
    tag: Tag | None = None
    required: StrictBool = False
    options: Annotated[list[Option], AfterValidator(at_most("max_survey_options"))] = Field(
        default_factory=list
    )
    next: Next | None = None


class SurveyData(DataModel):
    campaignId: uuid.UUID
    name: NonEmptyText
    questions: Annotated[list[Question], AfterValidator(at_most("max_survey_questions"))] = Field(
        default_factory=list, description="In the order they are asked."
    )
    firstQuestionId: uuid.UUID | None = Field(
        default=None, description="Defaults to the first question's id."
    )
    version: int | None = Field(
        default=None, description="Set by the server: 1 on create, one more per write."
    )


class SurveyHooks(DocumentHooks):
    server_fields = frozenset({"version"})

    async def prepare(
        self, ctx: WriteContext, data: dict[str, Any], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        await refs.require_campaign(ctx.conn, ctx.principal, data["campaignId"], "/data/campaignId")
        prepared = {key: value for key, value in data.items() if key != "version"}
        prepared.setdefault("questions", [])
        if prepared.get("firstQuestionId") is None and prepared["questions"]:
            prepared["firstQuestionId"] = prepared["questions"][0]["questionId"]
        problems = graph_problems(prepared)
        if problems:
            raise ValidationFailed(
                f"The survey's questions do not form a sound script: {problems[0].path} "
                f"{problems[0].message}.",
                errors=problems,
            )
        prepared["version"] = 1 if previous is None else int(previous.get("version") or 0) + 1
        return prepared

    async def after_write(self, ctx: WriteContext, document: StoredDocument) -> None:
        if not document.is_deleted:
            await survey_versions.record(ctx.conn, document)


SURVEY_ID = "375d437b-3b47-4940-b43d-be8daec4afff"
FIRST_QUESTION = "9826940d-76a8-4700-8c92-5743ce7bb728"
SECOND_QUESTION = "1b6a0c1e-62a9-4a4e-9d47-8f3b2b0a7c11"

SURVEYS = Resource(
    name="surveys",
    title="survey",
    prefix="/v1/surveys",
    table="surveys",
    data_model=SurveyData,
    hooks=SurveyHooks(),
    filterable=FieldPolicy(
        allowed_data_paths=frozenset({"/data/campaignId", "/data/name"}),
        allowed_columns=frozenset({"/id", "/meta/created", "/meta/modified"}),
    ),
    create_example={
        "data": {
            "campaignId": "61fbfbaa-5de8-4d17-ac2b-c47f2376265a",
            "name": "Door script",
            "firstQuestionId": FIRST_QUESTION,
            "questions": [
                {
                    "questionId": FIRST_QUESTION,
                    "type": "availability",
                    "text": "Is the resident available?",
                    "required": True,
                    "options": [
                        {
                            "optionId": "0c8f3a52-7a4e-4d0c-9a57-3c1f7a0f3e01",
                            "text": "Yes",
                            "value": "true",
                            "success": True,
                            "next": SECOND_QUESTION,
                        },
                        {
                            "optionId": "0c8f3a52-7a4e-4d0c-9a57-3c1f7a0f3e02",
                            "text": "No",
                            "value": "false",
                            "next": END,
                        },
                    ],
                },
                {
                    "questionId": SECOND_QUESTION,
                    "type": "text",
                    "text": "What matters most to you this year?",
                    "next": END,
                },
            ],
        }
    },
    patch_example=[{"op": "replace", "path": "/name", "value": "Door script, take two"}],
)
