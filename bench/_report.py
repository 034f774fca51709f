"""Writes one benchmark's results into its own section of ``docs/benchmarks.md``.

Each benchmark owns a section between ``<!-- BEGIN name -->`` and ``<!-- END name -->``;
rewriting it leaves the other sections as they were, so benchmarks can be re-run one at a time.
"""

from __future__ import annotations

import platform
import statistics
import subprocess
from collections.abc import Iterable
from pathlib import Path

__all__ = ["write_section", "machine_line", "median", "markdown_table"]

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
_HEADER = """# Benchmarks

Every figure here was measured by the command shown in its section, on the machine named there,
with the anchors (EconML, CausalML, a plain FastAPI app, the raw LightGBM call) run side by side
in the same process or script. Times are medians over repeated runs: the machine is shared and
noisy, so compare ratios within a section rather than absolute times across sections.
"""


def machine_line() -> str:
    import os

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, commit {commit or 'unknown'}"
    )


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def markdown_table(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def write_section(name: str, markdown: str, path: Path = BENCHMARKS_MD) -> Path:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    text = path.read_text() if path.exists() else _HEADER
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
