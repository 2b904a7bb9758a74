"""Every relative link in the repository's Markdown leads somewhere: a file that exists,
and a heading that exists when the link names one."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# [text](target) and [text]: target, outside fenced code blocks and inline code.
_INLINE = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_REFERENCE = re.compile(r"^\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"`[^`\n]*`")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def markdown_files() -> list[Path]:
    """The Markdown files git tracks, or would track (new ones not yet added)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [REPO / name for name in listed if (REPO / name).exists()]


def prose(text: str) -> str:
    """``text`` without code, where a bracket is not a link."""
    return _CODE.sub("", _FENCE.sub("", text))


def anchors(path: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings (``## Exactly once`` -> ``exactly-once``)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(path: Path) -> list[str]:
    """The relative links of ``path`` that lead nowhere, as ``target (why)``."""
    text = prose(path.read_text(encoding="utf-8"))
    broken = []
    for target in _INLINE.findall(text) + _REFERENCE.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        destination = (path.parent / file_part).resolve() if file_part else path
        if not destination.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(f"{target} (no such heading)")
    return broken


def test_every_relative_link_in_the_markdown_resolves() -> None:
    problems = {
        str(path.relative_to(REPO)): broken
        for path in markdown_files()
        if (broken := broken_links(path))
    }
    assert not problems, f"links that lead nowhere: {problems}"


def test_the_anchor_rule_matches_githubs() -> None:
    page = REPO / "docs" / "contract.md"
    assert {"the-public-contract", "the-proxys-http-surface", "file-names"} <= anchors(page)
