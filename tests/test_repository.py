"""The repository stands on its own: nothing tracked refers to files outside it.

Whoever takes this project over gets only the repository, so a test, benchmark, script or
document that reads or links a path beside the checkout would break for them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Built from pieces so that this file does not match itself.
SHARED = "sha" + "red"
FORBIDDEN = [
    re.compile(r"\.\./" + SHARED + r"\b"),
    re.compile(SHARED + r"/(testdata|API\.md|STAFF_API\.md|DESIGN\.md|TAXONOMY\.md|STYLE\.md)"),
    re.compile(r"/wo" + r"rk/"),
    # Python code that builds a path beside the checkout from the repository root.
    re.compile(r"\b(ROOT|REPO)\.parent\s*/"),
]
MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode().split("\0")
    files = []
    for name in filter(None, names):
        path = ROOT / name
        if path.is_file() and b"\0" not in path.read_bytes()[:4096]:
            files.append(path)
    return files


def test_no_tracked_file_refers_outside_the_repository():
    offenders = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern.search(line) for pattern in FORBIDDEN):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not offenders, "references outside the repository:\n" + "\n".join(offenders)


def test_relative_markdown_links_resolve_inside_the_repository():
    broken = []
    for path in tracked_text_files():
        if path.suffix != ".md":
            continue
        for target in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, mailto:...
                continue
            resolved = (path.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken, "links that leave the repository or point nowhere:\n" + "\n".join(broken)


def test_test_data_is_in_the_repository_with_its_sources():
    data = ROOT / "tests" / "data"
    assert (data / "SOURCES.md").is_file()
    sources = (data / "SOURCES.md").read_text(encoding="utf-8")
    for path in sorted((data / "photos").iterdir()) + sorted((data / "geo").iterdir()):
        stem = path.name.split("_")[0] if path.name.startswith("orientation_") else path.name
        assert stem in sources, f"{path.name} has no entry in tests/data/SOURCES.md"
