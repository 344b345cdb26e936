"""The question graph of a survey: unique ids, targets that exist, no cycle."""

from __future__ import annotations

from typing import Any

import pytest

from polis_api.workflow.survey_graph import find_cycle, graph_problems

Q1, Q2, Q3 = "q1", "q2", "q3"


def question(question_id: str, next_: str | None = None, *options: dict[str, Any]) -> dict:
    found: dict[str, Any] = {"questionId": question_id, "options": list(options)}
    if next_ is not None:
        found["next"] = next_
    return found


def option(option_id: str, next_: str | None = None) -> dict[str, Any]:
    return {"optionId": option_id} if next_ is None else {"optionId": option_id, "next": next_}


def survey(*questions: dict[str, Any], first: str | None = Q1) -> dict[str, Any]:
    data: dict[str, Any] = {"questions": list(questions)}
    if first is not None:
        data["firstQuestionId"] = first
    return data


def paths(data: dict[str, Any]) -> list[str]:
    return [problem.path for problem in graph_problems(data)]


def test_a_branching_script_that_ends_is_sound() -> None:
    data = survey(
        question(Q1, None, option("yes", Q2), option("no", "end")),
        question(Q2, Q3),
        question(Q3, "end"),
    )
    assert graph_problems(data) == []


def test_no_questions_and_no_first_question_is_sound() -> None:
    assert graph_problems(survey(first=None)) == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (survey(question(Q1), question(Q1)), ["/data/questions/1/questionId"]),
        (
            survey(question(Q1, None, option("a")), question(Q2, None, option("a"))),
            ["/data/questions/1/options/0/optionId"],
        ),
        (survey(question(Q1, "nowhere")), ["/data/questions/0/next"]),
        (
            survey(question(Q1, None, option("a", Q2), option("b", "missing")), question(Q2)),
            ["/data/questions/0/options/1/next"],
        ),
        (survey(question(Q1), first="missing"), ["/data/firstQuestionId"]),
    ],
    ids=["duplicate question", "duplicate option", "dangling next", "dangling option", "first"],
)
def test_each_problem_names_its_path(data: dict[str, Any], expected: list[str]) -> None:
    assert paths(data) == expected


def test_a_cycle_names_a_question_on_it() -> None:
    data = survey(question(Q1, Q2), question(Q2, None, option("back", Q3)), question(Q3, Q2))
    problems = graph_problems(data)
    assert len(problems) == 1
    assert problems[0].path in {"/data/questions/1", "/data/questions/2"}
    assert "cycle" in problems[0].message and Q2 in problems[0].message


def test_a_question_pointing_at_itself_is_a_cycle() -> None:
    assert paths(survey(question(Q1, Q1))) == ["/data/questions/0"]


def test_two_branches_joining_again_are_no_cycle() -> None:
    data = survey(
        question(Q1, None, option("a", Q2), option("b", Q3)), question(Q2, Q3), question(Q3)
    )
    assert graph_problems(data) == []


def test_a_long_chain_needs_no_deep_recursion() -> None:
    ids = [f"q{i}" for i in range(5000)]
    successors = {qid: [ids[i + 1]] if i + 1 < len(ids) else [] for i, qid in enumerate(ids)}
    assert find_cycle(successors) is None
    successors[ids[-1]] = [ids[0]]
    cycle = find_cycle(successors)
    assert cycle is not None and len(cycle) == 5000
