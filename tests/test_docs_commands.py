"""What README.md and the docs' walkthroughs show a user to run exists in the code.

Found following the README as a new user: its commands, flags and routes are the user's first
contact with the project, and a flag renamed or a route moved in code left them pointing at
nothing. Every ``recommender <command> --flag`` they show must be an option of that command's
parser (the parser ``recommender`` itself builds), every bare ``--flag`` an option of some
command, every route of the README's route table served to exactly the roles it lists, and every
``curl`` of the README a path the service serves with that method. docs/benchmarks.md is left
out: it records commands of the commits it measured.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from recommender.cli import build_parser
from service_fixtures import (  # noqa: F401  (fixtures)
    KEYS,
    asgi_client,
    auth,
    linear_model,
    service_home,
)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/calibration.md", "docs/evidence.md", "docs/migrations.md"]
MIGRATIONS = ROOT / "recommender" / "service" / "migrations" / "versions"

# A command ends at a shell separator, a comment or the end of its code span.
_COMMAND_END = re.compile(r"\s(?:#|;|\||&&|>)|[`)]")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def _all_options(parser: argparse.ArgumentParser) -> set[str]:
    """The options of a command and of its own subcommands (``audit export --since``)."""
    return _options(parser).union(*map(_all_options, _subcommands(parser).values()))


def _snippets(text: str) -> list[str]:
    """Code the text shows: each line of a fenced block (continuations joined) and each
    inline code span (line breaks inside it read as spaces)."""
    snippets, prose = [], []
    for i, part in enumerate(re.split(r"^```[^\n]*\n", text, flags=re.MULTILINE)):
        if i % 2:
            snippets.extend(part.replace("\\\n", " ").splitlines())
        else:
            prose.append(part)
    spans = re.findall(r"`([^`]+)`", "\n".join(prose))
    return snippets + [span.replace("\n", " ") for span in spans]


def command_problems(text: str, parser: argparse.ArgumentParser) -> list[str]:
    """``command --flag: snippet`` for each subcommand or option the text shows that the
    parser does not have."""
    commands = _subcommands(parser)
    every_option = set().union(*map(_all_options, commands.values()))
    names = "|".join(sorted(commands, key=len, reverse=True))
    problems = []
    for snippet in _snippets(text):
        for bare in re.findall(r"^--[a-z][a-z-]*(?:/--[a-z][a-z-]*)*", snippet):
            problems += [
                f"{flag}: {snippet}" for flag in bare.split("/") if flag not in every_option
            ]
        for named in re.finditer(r"(?:^|[\s/])recommender ([a-z][a-z-]*)", snippet):
            if named.group(1) not in commands:
                problems.append(f"recommender {named.group(1)}: {snippet}")
        starts = rf"(?:(?:^|[\s/])recommender |^)({names})(?=\s|$)"
        for found in re.finditer(starts, snippet):
            rest = _COMMAND_END.split(snippet[found.end() :], maxsplit=1)[0].split()
            parser_of = commands[found.group(1)]
            inner = _subcommands(parser_of)
            if rest and rest[0] in inner:
                parser_of = inner[rest[0]]
            for word in rest:
                flag = word.strip("[]()'\",").split("=")[0]
                if flag.startswith("--") and flag not in _options(parser_of):
                    problems.append(f"{found.group(1)} {flag}: {snippet}")
    return problems


def test_the_check_finds_a_command_or_flag_the_parser_does_not_have():
    text = (
        "Run `recommender train --no-such-flag` or `validate --training`, then\n"
        "```bash\n.venv/bin/recommender audit export \\\n  --out a.csv --sincee 2026-01-01\n```\n"
        "and `recommender retrain`, `--also-missing` and `--host/--port` (both exist)."
    )
    problems = command_problems(text, build_parser())
    assert sorted(p.split(":")[0] for p in problems) == [
        "--also-missing",
        "audit --sincee",
        "recommender retrain",
        "train --no-such-flag",
    ]


@pytest.mark.parametrize("name", DOCS)
def test_every_command_and_flag_the_docs_show_exists(name):
    text = (ROOT / name).read_text(encoding="utf-8")
    assert command_problems(text, build_parser()) == []


def test_the_readme_shows_commands_and_flags_to_check():
    # Against a check that passes because it reads nothing.
    shown = [s for s in _snippets((ROOT / "README.md").read_text()) if "recommender " in s]
    assert len(shown) >= 20


def _route_table(text: str) -> list[tuple[str, str, set[str] | None]]:
    """``(method, path, roles)`` of each route of the README's table (roles None: anyone)."""
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        method = None
        for span in re.findall(r"`([^`]+)`", cells[0]):
            route = re.fullmatch(r"(?:(GET|POST) )?(/\S*)", span)
            if route is None:
                break
            method = route.group(1) or method
            roles = None if cells[1] == "anyone" else set(cells[1].split(", "))
            rows.append((method, route.group(2), roles))
    return rows


def _curls(text: str) -> list[tuple[str, str]]:
    """``(method, path)`` of each ``curl`` the README shows against the service."""
    calls = []
    for snippet in _snippets(text):
        for url in re.finditer(r"http://127\.0\.0\.1:3000(/[^\s'\"?]*)", snippet):
            if "curl" in snippet:
                calls.append(("POST" if "-X POST" in snippet else "GET", url.group(1)))
    return calls


def _call(client, method: str, path: str, headers: dict):
    if method == "POST":
        return client.post(path, headers=headers, json={})
    return client.get(path, headers=headers)


def _served(response) -> bool:
    unknown = response.status_code == 404 and "no such route" in response.text
    return not unknown and response.status_code != 405


def test_every_route_the_readme_lists_is_served_to_the_roles_it_names(asgi_client):
    routes = _route_table((ROOT / "README.md").read_text(encoding="utf-8"))
    assert {path for _, path, _ in routes} >= {"/recommend", "/outcomes", "/audit/export", "/"}
    # /metrics in process answers 503 at once (no server gathers its workers' metrics), which
    # still shows the route served, to anyone.
    assert ("GET", "/metrics", None) in routes
    # Every path the service documents is in the table (BentoML's /healthz was not).
    document = asgi_client.get("/docs.json").json()
    assert {path for _, path, _ in routes} == {*document["paths"], "/", "/docs.json"}
    for method, path, roles in routes:
        for role in KEYS:
            response = _call(asgi_client, method, path, auth(role))
            assert _served(response), f"{method} {path}: {response.status_code}"
            allowed = roles is None or role in roles
            assert (response.status_code != 403) == allowed, (
                f"{method} {path} as {role}: {response.status_code}, README: {roles or 'anyone'}"
            )
        if roles is None:
            response = _call(asgi_client, method, path, {})
            assert response.status_code not in (401, 403), f"{method} {path} without a key"


def test_every_curl_of_the_readme_reaches_a_route(asgi_client):
    calls = _curls((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(calls) >= 4
    for method, path in calls:
        responses = [_call(asgi_client, method, path, auth(role)) for role in KEYS]
        assert all(_served(r) for r in responses), f"{method} {path}"
        assert any(r.status_code != 403 for r in responses), f"{method} {path}: no role may"


def test_the_migration_example_numbers_the_next_revision():
    # As written it once made a second revision 0002 after 0005, which Alembic only warns of.
    newest = max(int(p.name[:4]) for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    shown = re.findall(r"--rev-id (\d{4})", (ROOT / "docs" / "migrations.md").read_text())
    assert shown == [f"{newest + 1:04d}"]
