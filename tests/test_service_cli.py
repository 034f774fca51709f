"""`recommender audit export`, and `recommender serve` as a user starts and stops it: its
checks before starting, its signals, and the example it prints for `make demo`."""

import contextlib
import csv
import json
import sys
from datetime import datetime, timedelta, timezone

import pytest

from recommender.cli import main
from recommender.service import AuditLog
from service_fixtures import asgi_client, auth, linear_model, service_home  # noqa: F401  (fixtures)


def _log(home):
    log = AuditLog(f"sqlite:///{home / 'audit.db'}", salt="s")
    old = datetime.now(timezone.utc) - timedelta(days=10)
    log.append(
        [
            {
                "request_id": f"r{i}",
                "model_version": "2",
                "caller_role": "program",
                "person_id": f"secret-person-{i}",
                "safety_level": "routine",
                "recommended": "coaching",
                "ranking_meaningful": True,
                "effects": {"coaching": [-3.0, -5.0, -1.0]},
                **({"logged_at": old} if i == 0 else {}),
            }
            for i in range(3)
        ]
    )
    return log


def test_export_csv_and_jsonl_without_person_ids(service_home, tmp_path, capsys):
    _log(service_home)
    out = tmp_path / "audit.csv"
    assert main(["audit", "export", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["request_id"] for r in rows] == ["r0", "r1", "r2"]
    assert "secret-person" not in out.read_text()
    assert (
        main(
            [
                "audit",
                "export",
                "--since",
                (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat(),
                "--out",
                str(tmp_path / "recent.jsonl"),
            ]
        )
        == 0
    )
    recent = [json.loads(line) for line in (tmp_path / "recent.jsonl").read_text().splitlines()]
    assert [r["request_id"] for r in recent] == ["r1", "r2"]
    assert main(["audit", "export"]) == 0
    assert capsys.readouterr().out.startswith("id,logged_at,request_id")


def test_export_mistakes_exit_2(service_home, capsys):
    assert main(["audit", "export"]) == 2  # no audit log yet
    assert "no audit log at" in capsys.readouterr().err
    _log(service_home)
    assert main(["audit", "export", "--since", "soon"]) == 2
    assert "since: 'soon'" in capsys.readouterr().err


def test_serve_refuses_port_0(service_home, capsys):
    # Without a champion the service starts for crisis answers only (see
    # test_service_crisis_server.py); a wrong port is still refused before anything starts.
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--port", "0"])
    assert refused.value.code == 2
    assert "argument --port: '0' is not accepted; accepted: a port from 1 to 65535" in (
        capsys.readouterr().err
    )


class _Started:
    """What `recommender serve` starts, recorded instead of run."""

    def __init__(self, command, env, **options):
        self.env = env
        self.options = options
        self.signals = []

    def wait(self, timeout=None):
        return 0

    def poll(self):
        return None if not self.signals else 0

    def send_signal(self, signum):
        self.signals.append(signum)


def _serve_without_starting(monkeypatch, started_as=_Started):
    import subprocess

    started = []
    monkeypatch.setattr(
        subprocess,
        "Popen",
        lambda command, env, **options: (
            started.append(started_as(command, env, **options)) or started[-1]
        ),
    )
    monkeypatch.setattr("recommender.cli.cmd_serve._check_champion", lambda **_: "")
    return started


def test_serve_refuses_a_worker_setting_from_the_environment_before_starting(
    service_home, monkeypatch, capsys
):
    """`serve --check` (which `make demo` runs before training) passed such a setting, and the
    demo was refused only after it had simulated and trained."""
    started = _serve_without_starting(monkeypatch)
    monkeypatch.setenv("RECOMMENDER_SERVE_WORKERS", "two")
    for argv in (["serve"], ["serve", "--check"], ["serve", "--print-example"]):
        assert main(argv) == 2
        assert "RECOMMENDER_SERVE_WORKERS = 'two' is not accepted" in capsys.readouterr().err
    assert started == []


def test_serve_hands_the_workers_a_worker_setting_from_the_environment(service_home, monkeypatch):
    """`recommender serve` overwrote RECOMMENDER_SERVE_THREADS with serve.yaml's value, though
    the variable is documented to win (as under a plain `bentoml serve`)."""
    started = _serve_without_starting(monkeypatch)
    monkeypatch.setenv("RECOMMENDER_SERVE_THREADS", "3")
    assert main(["serve"]) == 0
    assert started[0].env["RECOMMENDER_SERVE_THREADS"] == "3"


def test_serve_refuses_an_audit_url_that_names_no_store_before_starting(
    service_home, monkeypatch, capsys
):
    """`postgres://` (SQLAlchemy knows `postgresql://`) started a service that could answer
    nothing but crisis requests, its cause a NoSuchModuleError traceback in the worker's log."""
    started = _serve_without_starting(monkeypatch)
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", "postgres://svc:Pa55word@db.example/audit")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "the audit store URL postgres://svc:***@db.example/audit is not accepted" in err
    assert "RECOMMENDER_AUDIT_URL" in err and "postgresql+psycopg://" in err
    assert "Pa55word" not in err and started == []


def test_serve_says_at_start_when_the_audit_store_cannot_be_opened(
    service_home, monkeypatch, capsys
):
    started = _serve_without_starting(monkeypatch)
    (service_home / "a-file").write_text("")
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", f"sqlite:///{service_home}/a-file/audit.db")
    assert main(["serve"]) == 0  # crisis answers need no store: it starts all the same
    err = capsys.readouterr().err
    assert "warning: cannot open the audit store" in err and "crisis answers only" in err
    assert len(started) == 1


def test_serve_refuses_a_broken_catalog_before_starting(
    service_home, monkeypatch, tmp_path, capsys
):
    """A catalog the workers cannot load (here a version written as a number) started a
    service whose every worker failed at start with a traceback, again and again: no answer at
    all, crisis answers included. It is named now, and nothing starts."""
    import re
    import shutil

    from recommender.paths import config_dir

    configs = tmp_path / "configs"
    shutil.copytree(config_dir(), configs)
    catalog = configs / "interventions.yaml"
    text = catalog.read_text(encoding="utf-8")
    text = re.sub(r"^version: .*$", "version: 2026.12", text, count=1, flags=re.M)
    catalog.write_text(text, encoding="utf-8")
    monkeypatch.setenv("RECOMMENDER_CONFIG_DIR", str(configs))
    started = _serve_without_starting(monkeypatch)
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert f"{catalog}: 1 problem(s) in the intervention catalog" in err
    assert "catalog.version: wrong type; found 2026.12; accepted: a text" in err
    assert "Traceback" not in err and started == []


def test_serve_says_at_start_when_the_audit_file_is_not_a_database(
    service_home, monkeypatch, capsys
):
    """A damaged audit file (or another file in its place) stopped `recommender serve` with
    SQLAlchemy's DatabaseError traceback, so not even crisis answers were given; the workers of
    a plain `bentoml serve` logged the traceback. It is said in one line now, and the service
    starts for crisis answers, as for any store that cannot be opened."""
    started = _serve_without_starting(monkeypatch)
    damaged = service_home / "damaged" / "audit.db"
    damaged.parent.mkdir()
    damaged.write_bytes(bytes(range(256)) * 64)
    monkeypatch.setenv("RECOMMENDER_AUDIT_URL", f"sqlite:///{damaged}")
    assert main(["serve"]) == 0
    err = capsys.readouterr().err
    assert f"the audit store sqlite:///{damaged} is not a database this service can read" in err
    assert "file is not a database" in err and "restore it from a backup" in err
    assert "Traceback" not in err and len(started) == 1
    assert damaged.read_bytes() == bytes(range(256)) * 64  # left as it was, for recovery


def test_serve_refuses_a_port_in_use_before_starting_and_names_a_free_one(
    service_home, monkeypatch, capsys
):
    """A port held by another server (an earlier `make demo` still running) let BentoML start,
    fail to bind with a traceback, and meanwhile the other server answered the printed example
    with this run's key: 401. `make demo` found out only after training."""
    import socket

    started = _serve_without_starting(monkeypatch)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv in (["serve"], ["serve", "--check"], ["serve", "--print-example"]):
            assert main([*argv, "--host", "127.0.0.1", "--port", str(port)]) == 2
            err = capsys.readouterr().err
            assert f"port {port} on 127.0.0.1 is already in use" in err, err
            free = int(err.split("--port ")[1].split(",")[0])
            assert port < free <= port + 20 and f"make demo PORT={free}" in err
            assert "Traceback" not in err
    assert started == []


def test_serve_check_starts_nothing_and_says_the_address_is_free(service_home, monkeypatch, capsys):
    """`make demo` runs it before training, so a port in use is said before, not after."""
    started = _serve_without_starting(monkeypatch)
    port, code = serve_on_a_free_port(capsys, "--check")
    assert code == 0
    assert f"ready to serve on http://127.0.0.1:{port}" in capsys.readouterr().out
    assert started == []


def test_serve_refuses_a_host_name_bentoml_cannot_bind(service_home, monkeypatch, capsys):
    started = _serve_without_starting(monkeypatch)
    assert main(["serve", "--check", "--host", "localhost"]) == 2
    err = capsys.readouterr().err
    assert "--host localhost: give an IP address" in err and "127.0.0.1" in err
    assert started == []


class _HungUp(_Started):
    """A server whose terminal is closed while it runs: this process gets SIGHUP."""

    def wait(self, timeout=None):
        import os
        import signal

        # Without a handler of serve's the hangup would end the test run itself.
        if callable(signal.getsignal(signal.SIGHUP)):
            os.kill(os.getpid(), signal.SIGHUP)
        return 0


def test_a_closed_terminal_stops_the_server(service_home, monkeypatch, capsys):
    """Closing the terminal of `make demo` left BentoML's server running, orphaned, on the port
    (its arbiter takes SIGHUP as "restart the workers"), so the next demo found the port taken.
    The server runs in a session of its own and a hangup reaches it as SIGTERM."""
    import signal

    before = signal.getsignal(signal.SIGHUP)
    started = _serve_without_starting(monkeypatch, started_as=_HungUp)
    _, code = serve_on_a_free_port(capsys)
    assert code == 0
    assert started[0].options.get("start_new_session") is True
    assert callable(started[0].options.get("preexec_fn"))
    assert started[0].signals == [signal.SIGTERM]
    assert signal.getsignal(signal.SIGHUP) == before  # put back once the server is gone


def serve_on_a_free_port(capsys, *options: str) -> tuple[int, int]:
    """``recommender serve *options --port PORT`` on a port free when chosen: ``(PORT, exit
    code)``. The port is released before serve checks it, so another process may take it
    meanwhile; serve then refuses it (exit 2, "already in use") and is given another port, 5
    times at most. Its output is left for the test to read."""
    import sys

    from service_fixtures import free_port

    for _ in range(5):
        port = free_port()
        code = main(["serve", *options, "--port", str(port)])
        if code != 2:
            return port, code
        out, err = capsys.readouterr()
        if f"port {port} on 127.0.0.1 is already in use" not in err:
            sys.stdout.write(out)  # for the test to read
            sys.stderr.write(err)
            return port, code
    raise RuntimeError("5 free ports in a row were taken before serve checked them")


def test_serve_is_given_another_port_when_its_own_was_taken_meanwhile(
    service_home, monkeypatch, capsys
):
    import socket

    import service_fixtures

    started = _serve_without_starting(monkeypatch)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = taken.getsockname()[1]
        ports = [held, service_fixtures.free_port()]
        monkeypatch.setattr(service_fixtures, "free_port", lambda: ports.pop(0))
        port, code = serve_on_a_free_port(capsys, "--check")
    assert code == 0 and ports == [] and port != held
    assert f"ready to serve on http://127.0.0.1:{port}" in capsys.readouterr().out
    assert started == []


def test_the_printed_example_fits_a_screen_and_keeps_what_decides_the_answer(
    asgi_client, monkeypatch, capsys
):
    """`make demo` printed the example's whole answer, about 700 lines (every arm's evidence,
    the complements), so the keys and the request to paste were far out of sight. It prints
    what decides the answer, the safety block whole, and says the curl gives all of it."""
    import json

    import httpx

    from recommender.service import example_profile

    full = asgi_client.post("/recommend", json=example_profile(), headers=auth("program"))
    assert full.status_code == 200 and full.json()["ranking"]
    _serve_without_starting(monkeypatch)
    monkeypatch.setattr(httpx, "get", lambda url, timeout: httpx.Response(200))
    monkeypatch.setattr(
        httpx,
        "post",
        lambda url, json, timeout, headers: httpx.Response(
            200, content=full.content, headers={"content-type": "application/json"}
        ),
    )
    port, code = serve_on_a_free_port(capsys, "--print-example")
    assert code == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) < 60
    head, _, rest = out.partition("Response (200), shortened")
    assert "  program " in head and f"curl -s -X POST http://127.0.0.1:{port}/recommend" in head
    assert f"all {len(full.content):,} bytes" in rest
    printed, _, calls = rest.partition("):\n\n")[2].partition("\nAn auditor")
    short, answer = json.loads(printed), full.json()
    assert short["recommended"] == answer["recommended"]
    assert short["safety"] == answer["safety"]
    assert [(a["arm"], a["ee_effect"], a["ee_lower"], a["ee_upper"]) for a in short["ranking"]] == [
        (a["arm"], a["ee_effect"], a["ee_lower"], a["ee_upper"]) for a in answer["ranking"]
    ]
    assert short["explanation"]["sentence"] == answer["explanation"]["sentence"]
    statement = answer["context"]["training_data"]["statement"]
    assert short["context"]["training_data"]["statement"] == statement
    assert "citation" not in printed and "/model_card" in calls


@pytest.mark.parametrize("server_exit, serve_exit", [(0, 0), (-2, 130), (-15, 143)])
def test_ctrl_c_passes_on_and_exits_as_the_server_stopped(
    service_home, monkeypatch, capsys, server_exit, serve_exit
):
    """Ctrl-C is passed on to the server; one that stopped cleanly is no error (`make demo` said
    "Error 254" for a server ended by the signal, -2 read as 256 - 2)."""
    import signal

    class Interrupted(_Started):
        def wait(self, timeout=None):
            if not self.signals:
                raise KeyboardInterrupt
            return server_exit

    started = _serve_without_starting(monkeypatch, started_as=Interrupted)
    _, code = serve_on_a_free_port(capsys)
    assert code == serve_exit
    assert started[0].signals == [signal.SIGINT]


def test_the_example_is_written_at_once_and_an_error_answer_whole(
    service_home, monkeypatch, capsys
):
    """The server logs the example request on the same terminal: written line by line, the
    example had that log line among its keys."""
    import sys

    import httpx

    class Terminal:
        def __init__(self):
            self.writes = []

        def write(self, text):
            self.writes.append(text)

        def flush(self):
            pass

    _serve_without_starting(monkeypatch)
    monkeypatch.setattr(httpx, "get", lambda url, timeout: httpx.Response(200))
    refused = {"error": "the API key is not valid", "problems": []}
    monkeypatch.setattr(httpx, "post", lambda *a, **k: httpx.Response(401, json=refused))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    port, code = serve_on_a_free_port(capsys, "--print-example")
    assert code == 0
    (example,) = [text for text in terminal.writes if "Keys made for this run" in text]
    assert "Response (401):" in example and '"error": "the API key is not valid"' in example
    assert "/reload -H 'Authorization: Bearer" in example.strip().splitlines()[-1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_server_ends_with_serve_even_when_serve_is_killed(tmp_path):
    """In a session of its own, the server is no longer reached by a signal to serve's process
    group: killed with -9, serve takes it along all the same."""
    import os
    import signal
    import subprocess
    import time

    script = (
        "import subprocess, sys, time\n"
        "from recommender.cli.cmd_serve import _stop_with_this_process\n"
        "child = subprocess.Popen(['sleep', '300'], start_new_session=True,"
        " preexec_fn=_stop_with_this_process())\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    serve = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    server = int(serve.stdout.readline())
    serve.kill()
    serve.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(server, os.WNOHANG)
        time.sleep(0.1)
    os.kill(server, signal.SIGKILL)
    pytest.fail("the server outlived serve")
