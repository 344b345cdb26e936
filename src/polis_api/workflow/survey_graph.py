"""A survey's questions form a graph: each question and option says what comes ``next``.

The checks are pure functions over the stored JSON form of a survey's data, and
each problem names the JSON Pointer of the field at fault, so a 400 shows the
author exactly which question or option to fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from polis_api.errors import FieldError

END = "end"  # a ``next`` that finishes the survey


@dataclass(frozen=True, slots=True)
class Edge:
    """One ``next`` in the survey: where it is written and the question it names."""

    source: str  # the question id the edge leaves
    target: str | None  # a question id, END, or None (no next given)
    path: str  # the JSON Pointer of this ``next`` field


def _edges(questions: list[dict[str, Any]]) -> Iterator[Edge]:
    for index, question in enumerate(questions):
        base = f"/data/questions/{index}"
        source = str(question["questionId"])
        yield Edge(source, question.get("next"), f"{base}/next")
        for position, option in enumerate(question.get("options") or []):
            yield Edge(source, option.get("next"), f"{base}/options/{position}/next")


def _duplicate_ids(questions: list[dict[str, Any]]) -> list[FieldError]:
    problems = []
    seen_questions: set[str] = set()
    seen_options: set[str] = set()
    for index, question in enumerate(questions):
        question_id = str(question["questionId"])
        if question_id in seen_questions:
            problems.append(
                FieldError(
                    path=f"/data/questions/{index}/questionId",
                    message=f"question id {question_id} is used by an earlier question",
                )
            )
        seen_questions.add(question_id)
        for position, option in enumerate(question.get("options") or []):
            option_id = str(option["optionId"])
            if option_id in seen_options:
                problems.append(
                    FieldError(
                        path=f"/data/questions/{index}/options/{position}/optionId",
                        message=f"option id {option_id} is used by an earlier option",
                    )
                )
            seen_options.add(option_id)
    return problems


def _dangling_edges(questions: list[dict[str, Any]], known: set[str]) -> list[FieldError]:
    return [
        FieldError(
            path=edge.path,
            message=f"names no question of this survey: {edge.target} "
            f'(use a questionId or "{END}")',
        )
        for edge in _edges(questions)
        if edge.target is not None and edge.target != END and edge.target not in known
    ]


def _first_question(data: Mapping[str, Any], known: set[str]) -> list[FieldError]:
    first = data.get("firstQuestionId")
    if first is None:
        return []
    if first not in known:
        return [FieldError(path="/data/firstQuestionId", message=f"names no question: {first}")]
    return []


def find_cycle(successors: Mapping[str, list[str]]) -> list[str] | None:
    """Question ids on a cycle (in order), or None when the graph has none.

    Iterative depth-first search, so a long chain of questions cannot exhaust the
    Python stack.
    """
    done: set[str] = set()
    for start in successors:
        if start in done:
            continue
        trail: list[str] = [start]
        pending = [iter(successors[start])]
        while pending:
            following = next(pending[-1], None)
            if following is None:
                pending.pop()
                done.add(trail.pop())
            elif following in trail:
                return trail[trail.index(following) :]
            elif following not in done:
                trail.append(following)
                pending.append(iter(successors.get(following, [])))
    return None


def _cycle(questions: list[dict[str, Any]]) -> list[FieldError]:
    successors: dict[str, list[str]] = {str(q["questionId"]): [] for q in questions}
    for edge in _edges(questions):
        if edge.target is not None and edge.target in successors:
            successors[edge.source].append(edge.target)
    cycle = find_cycle(successors)
    if cycle is None:
        return []
    index = next(i for i, q in enumerate(questions) if str(q["questionId"]) == cycle[0])
    return [
        FieldError(
            path=f"/data/questions/{index}",
            message="is on a cycle of questions: " + " -> ".join([*cycle, cycle[0]]),
        )
    ]


def graph_problems(data: Mapping[str, Any]) -> list[FieldError]:
    """Everything wrong with a survey's question graph (empty when it is sound).

    Ids must be unique (question ids among questions, option ids among all options),
    every ``next`` must name a question of the survey or ``"end"``, the first
    question must exist, and no path may lead back to a question already asked.
    A cycle is only looked for once the ids and targets are sound.
    """
    questions: list[dict[str, Any]] = list(data.get("questions") or [])
    known = {str(q["questionId"]) for q in questions}
    problems = [
        *_duplicate_ids(questions),
        *_dangling_edges(questions, known),
        *_first_question(data, known),
    ]
    return problems or _cycle(questions)
