"""docs/benchmarks.md: each benchmark owns one "## ..." section and replaces only that."""

from pathlib import Path

BENCHMARKS_DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
PREAMBLE = "# Benchmarks\n\nRun with `make bench`; not part of the tests.\n\n"


def replace_section(heading: str, section: str, path: Path = BENCHMARKS_DOC) -> Path:
    """Put ``section`` (which starts with ``heading``) in place of the old one, or at the end."""
    text = path.read_text() if path.exists() else PREAMBLE
    if heading in text:
        before, rest = text.split(heading, 1)
        after = rest.split("\n## ", 1)
        text = before + section + ("\n## " + after[1] if len(after) > 1 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text)
    return path
