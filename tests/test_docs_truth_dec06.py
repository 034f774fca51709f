"""What README.md and docs/ quote from the code and the measurements is what they hold.

Found reading the documents beside the code (2026-12-06): the README quoted a second worker at
"1.2-2x" and planning at "4.5 s" end to end after docs/benchmarks.md had been re-measured
(2.01x; 2.6 s); docs/migrations.md's hand upgrade (`alembic ... upgrade head`) stopped at
"table recommendations already exists" on a store made before migrations, which the service
stamps by itself; and docs/calibration.md said that it "cannot drift from the simulator" while
no test compared the page with what `recommender calibration` writes. Each kind of drift now
fails here: links and the benchmark sections they name, file paths, environment variables,
config keys, the `/readyz` reasons, the example answer's fields, the figures quoted from
docs/benchmarks.md, the calibration page and the list of schema revisions. (Commands and flags:
tests/test_docs_commands.py.)
"""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
from pathlib import Path

import pytest
import yaml

from recommender.cli import main
from service_fixtures import asgi_client, linear_model, service_home  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/calibration.md", "docs/evidence.md", "docs/migrations.md"]
VERSIONS = ROOT / "recommender" / "service" / "migrations" / "versions"


def _read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def _flat(text: str) -> str:
    """The text with every run of white space one space (a figure may span a line break)."""
    return " ".join(text.split())


# --- links and the sections of docs/benchmarks.md they name ---------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(text: str) -> list[str]:
    body = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return [m.group(1) for m in re.finditer(r"^#{1,6} (.+)$", body, flags=re.MULTILINE)]


def link_problems(text: str, folder: Path) -> list[str]:
    """Each Markdown link to a file that is not there, or to a heading no longer there; and each
    section of a linked document named in quotes right after the link (``[x](x.md), "Name"``)
    that no heading of it begins with."""
    problems = []
    for link in re.finditer(r"\]\(([^)\s]+)\)(?:,\s+\"([^\"]+)\")?", text):
        target, section = link.group(1), link.group(2) and _flat(link.group(2))
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        file = (folder / path).resolve() if path else None
        if file is not None and not file.exists():
            problems.append(f"{target}: no such file")
            continue
        if not (anchor or section) or (file is not None and file.suffix != ".md"):
            continue
        headings = _headings(file.read_text(encoding="utf-8") if file else text)
        if anchor and anchor not in map(_slug, headings):
            problems.append(f"{target}: no heading with this anchor")
        if section and not any(h.lower().startswith(section.lower()) for h in headings):
            problems.append(f'{target}, "{section}": no such section')
    return problems


def test_the_link_check_finds_a_missing_file_a_renamed_heading_and_section(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## The learning loop on a program\n")
    text = (
        "[a](other.md) [b](missing.md) [c](other.md#the-learning-loop-on-a-program) "
        '[d](other.md#the-loop) [e](other.md), "The learning loop" [f](other.md), "Workers" '
        "[g](#own) [h](https://example.org/x)\n\n## Own\n"
    )
    assert link_problems(text, tmp_path) == [
        "missing.md: no such file",
        "other.md#the-loop: no heading with this anchor",
        'other.md, "Workers": no such section',
    ]


@pytest.mark.parametrize("name", DOCS)
def test_every_link_and_section_the_docs_name_exists(name):
    assert link_problems(_read(name), (ROOT / name).parent) == []


def test_the_readme_names_benchmark_sections_to_check():
    # Against a check that passes because it reads nothing.
    assert len(re.findall(r"benchmarks\.md\),\s+\"", _read("README.md"))) >= 3


# --- file paths, modules, environment variables ---------------------------------------------

_PATH = re.compile(
    r"(?<![\w/.<-])((?:recommender|tests|configs|docs|bench|pipelines|requirements)/[\w./-]*\w)"
)
_MODULE = re.compile(r"python -m ((?:bench|pipelines|recommender)(?:\.\w+)+)")


def path_problems(text: str, root: Path) -> list[str]:
    """Each project path or ``python -m`` module the text names that does not exist."""
    missing = [p for p in _PATH.findall(text) if not (root / p).exists()]
    for module in _MODULE.findall(text):
        as_path = root / module.replace(".", "/")
        if not (as_path.with_suffix(".py").exists() or (as_path / "__init__.py").exists()):
            missing.append(f"python -m {module}")
    return sorted(set(missing))


def test_the_path_check_finds_a_moved_file_and_module():
    text = (
        "`tests/test_docs_commands.py`, tests/no_such_test.py, `python -m bench.rollout` and "
        "`python -m bench.gone`; not `<env>/share/burnout-recommender/configs`"
    )
    assert path_problems(text, ROOT) == ["python -m bench.gone", "tests/no_such_test.py"]


@pytest.mark.parametrize("name", DOCS)
def test_every_path_and_module_the_docs_name_exists(name):
    assert path_problems(_read(name), ROOT) == []


_VARIABLE = re.compile(r"\b(?:RECOMMENDER|MLFLOW|BENTOML|PROMETHEUS)_[A-Z_]*[A-Z]\b")


def _code_text() -> str:
    files = [*ROOT.glob("recommender/**/*.py"), *ROOT.glob("pipelines/**/*.py")]
    files += [*ROOT.glob("bench/*.py"), ROOT / "Makefile", ROOT / "bentofile.yaml"]
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def variable_problems(text: str, code: str) -> list[str]:
    """Each environment variable the text names that no code reads or sets."""
    return sorted({v for v in _VARIABLE.findall(text) if v not in code})


def test_the_variable_check_finds_a_renamed_variable():
    code = 'os.environ.get("RECOMMENDER_HOME")'
    text = "`RECOMMENDER_HOME`, else `RECOMMENDER_MODELS_DIR`"
    assert variable_problems(text, code) == ["RECOMMENDER_MODELS_DIR"]


@pytest.mark.parametrize("name", DOCS)
def test_every_environment_variable_the_docs_name_is_read_by_the_code(name):
    assert variable_problems(_read(name), _code_text()) == []


# --- config keys ------------------------------------------------------------------------------


def _keys(mapping: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in mapping.items():
        keys.add(prefix + str(key))
        if isinstance(value, dict):
            keys |= _keys(value, f"{prefix}{key}.")
    return keys


def _shipped_keys() -> dict[str, set[str]]:
    return {
        name: _keys(yaml.safe_load(_read(f"configs/{name}.yaml"))) for name in ("serve", "train")
    }


# `key` in `serve.yaml` / of `configs/train.yaml`; serve.yaml`'s `key`.
_KEY_BEFORE = re.compile(r"`([a-z_][a-z_.]*)`,? (?:in|of|from) `?(?:configs/)?(serve|train)\.yaml")
_KEY_AFTER = re.compile(r"(serve|train)\.yaml`?'s `([a-z_][a-z_.]*)`")


def quoted_keys(text: str) -> list[tuple[str, str]]:
    """``(file, key)`` for each config key the text quotes with its file."""
    text = _flat(text)
    found = [(m.group(2), m.group(1)) for m in _KEY_BEFORE.finditer(text)]
    return found + [(m.group(1), m.group(2)) for m in _KEY_AFTER.finditer(text)]


def key_problems(text: str, shipped: dict[str, set[str]]) -> list[str]:
    return [f"{file}.yaml: {key}" for file, key in quoted_keys(text) if key not in shipped[file]]


def test_the_key_check_finds_a_renamed_key():
    text = (
        "`audit.durability` in `serve.yaml`, `gate.alpha` in train.yaml, `audit.durable` in\n"
        "`configs/serve.yaml` and `serve.yaml`'s `worker_count`"
    )
    assert key_problems(text, _shipped_keys()) == [
        "serve.yaml: audit.durable",
        "serve.yaml: worker_count",
    ]


@pytest.mark.parametrize("name", ["README.md", "docs/migrations.md"])
def test_every_config_key_the_docs_quote_is_in_the_shipped_file(name):
    assert key_problems(_read(name), _shipped_keys()) == []


def test_the_readme_quotes_config_keys_to_check():
    assert len(quoted_keys(_read("README.md"))) >= 8


def default_phrases(serve: dict, train: dict) -> list[str]:
    """The README's words for the shipped configs' defaults, from the files' values."""
    from pipelines.train import fit_min_arm_rows

    exploration, share = serve["exploration"], train["split"]["holdout_share"]
    return [
        f"{serve['host']}:{serve['port']}",
        f"`usual_care_share` ({exploration['usual_care_share'] * 100:g} %)",
        f"`max_cost` ({exploration['max_cost'] * 100:g} %)",
        f"`min_cell`, {train['card']['min_cell']} by default",
        f"`card.min_cell` suppressed: {train['card']['min_cell']} by default",
        f"three quarters of the request timeout ({0.75 * serve['timeout']:g} s)",
        f"up to {serve['max_batch_rows']:,} profiles",
        f"`log_level` in `serve.yaml` (`{serve['log_level']}`;",
        f"The default, `{serve['audit']['durability']}`,",
        f"{fit_min_arm_rows(train)} with the shipped config",
        f"the {(1 - share) * 100:g} % training part and 30 to evaluate in the {share * 100:g} % held",
    ]


def _shipped(name: str) -> dict:
    return yaml.safe_load(_read(f"configs/{name}.yaml"))


def test_the_defaults_the_readme_gives_are_the_shipped_configs():
    readme = _flat(_read("README.md"))
    phrases = default_phrases(_shipped("serve"), _shipped("train"))
    assert [phrase for phrase in phrases if phrase not in readme] == []
    # A default changed in the file is a phrase the README no longer has.
    serve = _shipped("serve")
    serve["exploration"]["max_cost"], serve["timeout"] = 0.05, 60
    changed = default_phrases(serve, _shipped("train"))
    assert [phrase for phrase in changed if phrase not in readme] == [
        "`max_cost` (5 %)",
        "three quarters of the request timeout (45 s)",
    ]


def test_every_make_target_the_docs_name_is_the_makefiles():
    targets = set(re.findall(r"^([a-z][\w-]*):", _read("Makefile"), flags=re.MULTILINE))
    for name in DOCS:
        named = re.findall(r"`make ([a-z][\w-]*)", _flat(_read(name)))
        named += re.findall(r"^make ([a-z][\w-]*)", _read(name), flags=re.MULTILINE)
        assert set(named) <= targets, (name, set(named) - targets)
    assert {"demo", "test", "bench", "bento", "lock"} <= set(
        re.findall(r"`make ([a-z][\w-]*)", _flat(_read("README.md")))
    ) | set(re.findall(r"^make ([a-z][\w-]*)", _read("README.md"), flags=re.MULTILINE))


# --- what the service answers ------------------------------------------------------------------


def _readyz_table(text: str) -> list[str]:
    part = text.split("| `reason` | what to do |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", part, flags=re.MULTILINE)


def _resolve(schema: dict, document: dict) -> dict:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _options(schema: dict, document: dict) -> list[dict]:
    schema = _resolve(schema, document)
    if "anyOf" in schema or "oneOf" in schema:
        return [o for s in schema.get("anyOf", schema.get("oneOf")) for o in _options(s, document)]
    return [schema]


def unknown_fields(example, schema: dict, document: dict, where: str = "") -> list[str]:
    """Each field of ``example`` (a shortened answer; ``"..."`` stands for the rest) that the
    schema does not define."""
    options = _options(schema, document)
    if isinstance(example, dict):
        properties = {}
        for option in options:
            properties.update(option.get("properties", {}))
        problems = []
        for key, value in example.items():
            if key == "...":
                continue
            if key not in properties:
                problems.append(f"{where}.{key}".lstrip("."))
            else:
                problems += unknown_fields(value, properties[key], document, f"{where}.{key}")
        return problems
    if isinstance(example, list):
        items = [o["items"] for o in options if "items" in o]
        return [
            problem
            for value in example
            if value != "..."
            for problem in unknown_fields(value, items[0], document, f"{where}[]")
        ]
    return []


def _readme_answer() -> dict:
    text = _read("README.md").split("The answer (shortened", 1)[1]
    return json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])


def test_the_readme_answer_and_readyz_reasons_are_the_services(asgi_client):
    document = asgi_client.get("/docs.json").json()
    answer = document["paths"]["/recommend"]["post"]["responses"]["200"]["content"]
    schema = answer["application/json"]["schema"]
    example = _readme_answer()
    assert unknown_fields(example, schema, document) == []
    # The check reads the nested blocks, and finds a field the answer lacks.
    example["ranking"][0]["ee_interval"] = [-8.56, -3.63]
    example["safety"]["crisis_line"] = "988"
    assert unknown_fields(example, schema, document) == [
        "ranking[].ee_interval",
        "safety.crisis_line",
    ]
    # The README's table of /readyz reasons is every reason the service gives, in its order.
    reasons = document["components"]["schemas"]["Reason"]["enum"]
    assert _readyz_table(_read("README.md")) == reasons


def evidence_problems(example: dict, catalog) -> list[str]:
    """Each cost or evidence figure of the example answer's ranking that is not the catalog's
    (evidence is quoted exactly, in the README as in the answers)."""
    problems = []
    for item in example["ranking"]:
        arm = catalog.arm(item["arm"])
        if "cost_per_person" in item and item["cost_per_person"] != arm.cost_per_person:
            problems.append(f"{arm.id}: cost_per_person {item['cost_per_person']}")
        for quoted in item.get("evidence", []):
            found = [
                e
                for e in arm.evidence
                if e.journal in quoted["citation"] and str(e.year) in quoted["citation"]
            ]
            if len(found) != 1:
                problems.append(f"{arm.id}: {quoted['citation']} is not one of its evidence")
                continue
            for field in ("design", "effect_points", "effect_points_ci"):
                value = getattr(found[0], field)
                value = list(value) if isinstance(value, tuple) else value
                if field in quoted and quoted[field] != value:
                    problems.append(f"{arm.id}: {field} {quoted[field]}, the catalog's {value}")
    return problems


def test_the_readme_answer_quotes_the_catalogs_costs_and_evidence_exactly():
    from recommender.catalog import load_catalog

    catalog = load_catalog(ROOT / "configs" / "interventions.yaml")
    example = _readme_answer()
    assert evidence_problems(example, catalog) == []
    assert any(item.get("evidence") for item in example["ranking"])  # it reads something
    example["ranking"][0]["evidence"][0]["effect_points_ci"] = [-10.1, -3.0]
    assert evidence_problems(example, catalog) == [
        "coaching: effect_points_ci [-10.1, -3.0], the catalog's [-10.1, -3.3]"
    ]


# --- figures quoted from docs/benchmarks.md ---------------------------------------------------


def _section(text: str, heading: str) -> str:
    """The section of ``text`` whose heading begins with ``heading``, to the next heading of
    its level or higher."""
    match = re.search(rf"^(#+) {re.escape(heading)}.*$", text, flags=re.MULTILINE)
    assert match, heading
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.MULTILINE)
    return rest[: end.start() if end else len(rest)]


def _row(section: str, first_cell: str) -> list[str]:
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0].startswith(first_cell):
            return cells
    raise AssertionError(f"no row {first_cell!r}")


def benchmark_figures(benchmarks: str) -> list[str]:
    """The figures the README quotes from docs/benchmarks.md, as the README writes them."""
    figures = []
    planning = _section(benchmarks, "Cohort planning")
    figures.append(f"{float(_row(planning, '`plan_allocation`, median')[1]):.2f} s")
    figures.append(f"{float(_row(planning, '`recommender allocate` end to end')[1]):.1f} s")
    workers = _row(_section(benchmarks, "Workers"), "SQLite")
    figures += [f"{workers[3]}x", f"{workers[2]} against {workers[1]}"]
    loop = _section(benchmarks, "The learning loop")
    cycle3 = {}
    for scenario in ("default", "conservative", "local"):
        row = _row(_section(loop, f"Scenario `{scenario}`"), "3")
        cycle3[scenario] = float(row[1].split("%")[0]), float(row[2].split("%")[0])
        figures.append(f"{cycle3[scenario][0]:.1f} %")
    greedy = sorted(cycle3[s][1] for s in ("default", "conservative"))
    figures.append(f"greedy climbs to {greedy[0]:.1f}-{greedy[1]:.1f} %")
    trails = sorted(round(cycle3[s][1] - cycle3[s][0], 1) for s in ("default", "conservative"))
    figures.append(f"trails greedy by {trails[0]:.1f}-{trails[1]:.1f} points")
    costs = re.findall(r"\(max (\d+\.\d)%\)", loop)
    figures.append(f"at most {max(map(float, costs)):.1f} % of the oracle")
    pooled = _flat(loop.split("**Against the acceptance targets", 1)[1])
    for name, label in (("DR", "doubly robust"), ("IPS", "IPS"), ("SNIPS", "SNIPS")):
        share = re.search(rf"{name} (\d+\.\d) % \(\d+", pooled).group(1)
        figures.append(f"{share} % ({label})")
    return figures


def test_the_figures_the_readme_quotes_are_docs_benchmarks_mds():
    readme = _flat(_read("README.md"))
    figures = benchmark_figures(_read("docs/benchmarks.md"))
    assert len(figures) == 13
    assert [figure for figure in figures if figure not in readme] == []


def test_the_figure_check_finds_a_figure_measured_again():
    benchmarks = _read("docs/benchmarks.md").replace("| 2.64 |", "| 3.17 |")
    assert "3.2 s" in benchmark_figures(benchmarks)


# --- docs/calibration.md --------------------------------------------------------------------


def test_the_calibration_page_is_what_the_command_writes_today(tmp_path, capsys):
    out = tmp_path / "calibration.md"
    assert main(["calibration", "--out", str(out)]) == 0
    written = out.read_text(encoding="utf-8")
    command = "`recommender calibration --out docs/calibration.md`"
    assert f"`recommender calibration --out {out}`" in written
    written = written.replace(f"`recommender calibration --out {out}`", command)
    assert written == _read("docs/calibration.md"), (
        "docs/calibration.md is stale: run `recommender calibration --out docs/calibration.md`"
    )


# --- docs/migrations.md ---------------------------------------------------------------------


def _revision_files() -> dict[str, Path]:
    return {p.name[:4]: p for p in sorted(VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))}


def _revision_text(doc: str, revision: str) -> str:
    """What the document says of one revision: its list entry and its paragraph."""
    parts = re.findall(rf"^- `{revision}`:.*?(?=^- |^\s*$)", doc, flags=re.MULTILINE | re.DOTALL)
    parts += re.findall(rf"^Revision `{revision}` .*?(?=^\s*$)", doc, re.MULTILINE | re.DOTALL)
    return "\n".join(parts)


def _made_by(source: str) -> set[str]:
    """The tables, indexes and added columns a revision file names as it makes them."""
    constants = dict(re.findall(r'^(_[A-Z_]+) = "(\w+)"', source, flags=re.MULTILINE))
    made = set(re.findall(r'create_table\(\s*"(\w+)"', source))
    for name in re.findall(r"create_index\(\s*(\"\w+\"|_[A-Z_]+)", source):
        made.add(constants.get(name, name.strip('"')))
    made |= set(re.findall(r'add_column\((?:\s*"\w+",)?\s*sa\.Column\(\s*"(\w+)"', source))
    tuple_of = re.search(r"^_COLUMNS = \(([^)]*)\)", source, flags=re.MULTILINE)
    if tuple_of:
        made |= set(re.findall(r'"(\w+)"', tuple_of.group(1)))
    return made


def migration_problems(doc: str, files: dict[str, Path]) -> list[str]:
    """Revisions the document does not describe or describes out of order, and what a revision
    makes that its description does not name."""
    problems = []
    first_said = [m.group(1) for m in re.finditer(r"^(?:- |Revision )`(\d{4})`", doc, re.M)]
    order = list(dict.fromkeys(first_said))
    if order != list(files):
        problems.append(f"revisions described {order}, in versions/ {list(files)}")
    for revision, path in files.items():
        said = _revision_text(doc, revision)
        for name in sorted(_made_by(path.read_text(encoding="utf-8"))):
            if f"`{name}`" not in said:
                problems.append(f"{revision}: {name} not named")
    return problems


def test_the_migration_check_finds_a_revision_left_out_and_a_name_changed(tmp_path):
    doc = _read("docs/migrations.md")
    files = _revision_files()
    following = f"{int(max(files)) + 1:04d}"
    extra = tmp_path / f"{following}_more.py"
    extra.write_text('op.create_table(\n    "surveys",\n)\n')
    assert migration_problems(doc, {**files, following: extra}) == [
        f"revisions described {list(files)}, in versions/ {[*files, following]}",
        f"{following}: surveys not named",
    ]
    renamed = doc.replace("`uq_outcomes_corrects`", "`uq_outcomes_once`")
    assert migration_problems(renamed, files) == ["0007: uq_outcomes_corrects not named"]


def test_the_migrations_doc_describes_every_revision_in_order_with_what_it_makes():
    assert migration_problems(_read("docs/migrations.md"), _revision_files()) == []


def _alembic(commands: str) -> None:
    """Run the document's ``.venv/bin/alembic ...`` commands (``&&`` between them) in process."""
    from alembic.config import main as alembic

    for command in commands.split("&&"):
        program, *argv = shlex.split(command)
        assert program == ".venv/bin/alembic"
        alembic(argv=argv)


def test_the_hand_upgrade_the_migrations_doc_gives_upgrades_a_store_made_before_migrations(
    tmp_path, monkeypatch
):
    doc = _flat(_read("docs/migrations.md"))
    upgrade = re.search(r"`RECOMMENDER_AUDIT_URL=\S+ (\.venv/bin/alembic [^`]+)`", doc).group(1)
    stamped = re.search(r"`(\.venv/bin/alembic [^`]*stamp 0001 && [^`]+)`", doc).group(1)
    store = tmp_path / "audit.db"
    monkeypatch.chdir(ROOT)  # the commands name alembic.ini from the project folder
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", f"sqlite:///{store}")
    _alembic(upgrade.replace("upgrade head", "upgrade 0001"))
    with sqlite3.connect(store) as database:  # as create_all made it: no version table
        database.execute("DROP TABLE recommender_schema_version")
    with pytest.raises(Exception, match="table recommendations already exists"):
        _alembic(upgrade)
    with sqlite3.connect(store) as database:  # nothing changed
        tables = database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        assert [name for (name,) in tables] == ["recommendations"]
    _alembic(stamped)
    with sqlite3.connect(store) as database:
        version = database.execute("SELECT version_num FROM recommender_schema_version")
        assert version.fetchall() == [(max(_revision_files()),)]
