"""What the README and the docs promise a reader: every link inside the repository
leads somewhere (file and heading), none leads out of it, and every setting is listed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from polis_api.config import Settings

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md")])

# [text](target) and ![alt](target); the target ends at whitespace or ")".
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_EXTERNAL = ("http://", "https://", "mailto:")


def _prose(page: Path) -> str:
    """The page without its fenced code blocks, where brackets are code, not links."""
    kept, in_code = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            kept.append(line)
    return "\n".join(kept)


def _links(page: Path) -> list[str]:
    return [target for target in _LINK.findall(_prose(page)) if not target.startswith(_EXTERNAL)]


def _anchor(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces
    to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {
        _anchor(line.lstrip("#"))
        for line in _prose(page).splitlines()
        if re.match(r"#{1,6} ", line)
    }


def test_the_pages_are_found() -> None:
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}

    assert {"README.md", "CHANGELOG.md", "CONTRIBUTING.md", "docs/api.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_link_stays_in_the_repository_and_resolves(page: Path) -> None:
    broken = []
    for target in _links(page):
        path, _, fragment = target.partition("#")
        if path.startswith(("../", "/")):
            broken.append(f"{target}: points outside the repository")
            continue
        destination = (page.parent / path).resolve() if path else page
        if not destination.is_relative_to(ROOT) or not destination.exists():
            broken.append(f"{target}: no such file")
        elif fragment and destination.suffix == ".md" and fragment not in _anchors(destination):
            broken.append(f"{target}: no heading #{fragment} in {destination.name}")

    assert broken == []


def test_the_readme_links_every_doc_and_the_usual_files() -> None:
    linked = {target.partition("#")[0] for target in _links(ROOT / "README.md")}
    docs = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}

    assert docs | {"LICENSE", "CONTRIBUTING.md", "CHANGELOG.md"} <= linked


def test_the_readme_lists_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    variables = {
        str(field.validation_alias or f"POLIS_{name.upper()}")
        for name, field in Settings.model_fields.items()
    }

    assert sorted(name for name in variables if f"`{name}`" not in readme) == []


# `tests/x.py::test_name` names a test; a following `::test_other` names another of
# the same file.
_CITATION = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?[^`]*`|`::(\w+)`")


def test_every_test_the_docs_cite_exists() -> None:
    missing = []
    for page in PAGES:
        cited_file: Path | None = None
        for path, name, following in _CITATION.findall(page.read_text(encoding="utf-8")):
            if path:
                cited_file = ROOT / path
                if not cited_file.exists():
                    missing.append(f"{page.name}: {path}")
                    cited_file = None
            test = name or following
            if test and cited_file and not re.search(rf"def {test}\b", cited_file.read_text()):
                missing.append(f"{page.name}: {cited_file.relative_to(ROOT)}::{test}")

    assert missing == []
