"""Every relative link in the README, the model cards' index and docs/ leads to a file, and to a heading when it
names one (GitHub's anchor rule), so that moving a section between the user guide and the research notes
cannot leave a reader at a dead link."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", re.S)
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.S | re.M)


def _pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "models" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@cache
def _anchors(page: Path) -> frozenset[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for m in re.finditer(r"^#{1,6}\s+(.*?)\s*#*\s*$", text, re.M):
        slug = _slug(m.group(1))
        seen[slug] = seen.get(slug, -1) + 1
        out.add(slug if seen[slug] == 0 else f"{slug}-{seen[slug]}")
    return frozenset(out)


def _without_code(text: str) -> str:
    """Code blocks and spans blanked (line numbers kept): a link shown as code is not a link."""
    def blank(m: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", m.group(0))

    return re.sub(r"`[^`\n]*`", blank, FENCE.sub(blank, text))


def test_relative_links_lead_to_a_file_and_a_heading() -> None:
    broken, checked = [], 0
    for page in _pages():
        text = _without_code(page.read_text(encoding="utf-8"))
        for m in LINK.finditer(text):
            target = m.group(1)
            if re.match(r"^[a-zA-Z][a-zA-Z+.-]*:", target) or target.startswith("//"):
                continue  # a web address
            checked += 1
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page.resolve()
            where = f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, m.start(1)) + 1}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{where} (no such heading)")
    assert checked > 100, f"only {checked} links found: is the pattern still right?"
    assert not broken, "broken links:\n" + "\n".join(broken)
