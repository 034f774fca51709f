"""The shipped nginx example (configs/nginx.conf.example) in front of a real `recommender serve`.

nginx runs with the example as shipped, its placeholders replaced by this test's paths and ports
(plain string replacement), as a non-daemon process with its own prefix, logs and temp folders.
Through it: a recommendation over HTTPS equals the direct one; a body over the service's read
limit is refused by nginx (413) with the crisis resources; a caller's X-Forwarded-For never
reaches the service's log; and with the service stopped, a crisis-flagged request on each
profile route gets the crisis resources and "service unavailable" (502), never a recommendation.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from service_fixtures import (  # noqa: F401 - champion_home: a fixture
    _SESSION,
    _stop,
    auth,
    champion_home,
    profile,
    running_server_process,
    serving,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "configs" / "nginx.conf.example"
SPOOFED = "203.0.113.77"  # a documentation address (RFC 5737)

pytestmark = pytest.mark.skipif(
    shutil.which("nginx") is None,
    reason="nginx is not installed (`make system-test-deps` installs Debian's nginx-light)",
)


def _render(folder: Path, upstream: str, fallback: Path, port: int) -> Path:
    text = EXAMPLE.read_text()
    replacements = {
        "/etc/ssl/recommender/cert.pem": str(folder / "cert.pem"),
        "/etc/ssl/recommender/key.pem": str(folder / "key.pem"),
        "/srv/recommender/crisis-fallback/": f"{fallback}/",
        "127.0.0.1:3000": upstream,
        "listen 443 ssl": f"listen 127.0.0.1:{port} ssl",
        "/run/nginx-recommender.pid": str(folder / "nginx.pid"),
        "/var/log/nginx/recommender-error.log": str(folder / "error.log"),
        "/var/log/nginx/recommender-access.log": str(folder / "access.log"),
        # nginx's compiled-in temp folders are the system's: this one's own instead
        "\nhttp {\n": "\nhttp {\n"
        + "".join(
            f"    {kind}_temp_path {folder / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        ),
    }
    for placeholder, value in replacements.items():
        assert placeholder in text, f"the example no longer has {placeholder!r}"
        text = text.replace(placeholder, value)
    config = folder / "nginx.conf"
    config.write_text(text)
    return config


@contextlib.contextmanager
def _nginx(folder: Path, upstream: str, fallback: Path):
    """nginx on a free loopback port, as a server of the suite is started (serving: another
    port when the one chosen was taken meanwhile); yields its port once it accepts there."""
    pid_file = folder / "nginx.pid"

    def command(port: int) -> list[str]:
        config = _render(folder, upstream, fallback, port)
        command = ["nginx", "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        # `nginx -t` leaves an empty pid file (it checks that it can create one): the wait
        # below took it for the started nginx's and let the tests connect before it listened.
        pid_file.unlink(missing_ok=True)
        return [*command, "-g", "daemon off;"]

    def ready(url: str, process: subprocess.Popen) -> None:
        # nginx writes its pid once it has bound its port (a port taken: it exits, saying
        # "Address already in use", and serving starts it on another); a connection accepted
        # there is then nginx's.
        port = urlsplit(url).port
        deadline = time.monotonic() + 60
        while not (_pid_in(pid_file) == process.pid and _accepts(port)):
            if process.poll() is not None:
                raise RuntimeError(f"nginx exited with code {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not accept connections on port {port} in 60 s")
            time.sleep(0.05)

    # nginx's own log of its start (its errors go to its error log too)
    with serving(
        command, env=dict(os.environ), log_path=folder / "nginx.out", cwd=folder, ready=ready
    ) as (url, _):
        yield urlsplit(url).port


def _pid_in(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text())
    except (FileNotFoundError, ValueError):  # not yet written, or being written
        return None


def _accepts(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(2)
        try:
            sock.connect(("127.0.0.1", port))
        except OSError:
            return False
        return True


def make_certificate(folder: Path) -> None:
    """A self-signed certificate for 127.0.0.1, valid a day: ``folder``/cert.pem and key.pem, as
    the example names them once rendered (:func:`_render`)."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def proxied(champion_home, tmp_path_factory):
    """``{"direct", "proxy", "tls", "service", "log", "folder"}``: the service and nginx."""
    # nginx's workers run as `nobody` when started by root: its folder must be readable.
    os.makedirs("/tmp/proxy", exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="nginx-", dir="/tmp/proxy"))
    folder.chmod(0o755)
    home = tmp_path_factory.mktemp("proxy-home")
    shutil.copytree(_SESSION["as_trained"], home, dirs_exist_ok=True)  # champion_home's
    make_certificate(folder)
    fallback = folder / "fallback"
    # The command in this process: its files are what the test needs, not another interpreter.
    from recommender.cli import main

    assert main(["crisis-fallback", "--out", str(fallback)]) == 0
    fallback.chmod(0o755)
    for file in fallback.iterdir():
        file.chmod(0o644)
    tls = ssl.create_default_context(cafile=str(folder / "cert.pem"))
    log = folder / "serve.log"
    # Ports as every server of the suite takes them (free_port): a fixed one collided when
    # xdist ran this module's tests on both workers, each starting its own nginx.
    try:
        with running_server_process(home, log_path=log) as (url, service):
            with _nginx(folder, url.removeprefix("http://"), fallback) as port:
                yield {
                    "direct": url,
                    "proxy": f"https://127.0.0.1:{port}",
                    "tls": tls,
                    "service": service,
                    "log": log,
                    "folder": folder,
                }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _post(base: str, path: str, body, *, tls=None, headers=None, content=None):
    with httpx.Client(base_url=base, verify=tls or True, timeout=60) as client:
        if content is not None:
            return client.post(path, content=content, headers=headers)
        return client.post(path, json=body, headers=headers)


def _comparable(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "request_id"}


def test_a_recommendation_through_the_proxy_equals_the_direct_one(proxied):
    body = profile(person_id="proxy-same-1")
    direct = _post(proxied["direct"], "/recommend", body, headers=auth("program"))
    through = _post(
        proxied["proxy"], "/recommend", body, tls=proxied["tls"], headers=auth("program")
    )
    assert direct.status_code == through.status_code == 200, through.text
    assert _comparable(through.json()) == _comparable(direct.json())
    assert through.json()["recommended"] is not None
    # the key went through once: a request without one is refused by the service, not nginx
    refused = _post(proxied["proxy"], "/recommend", body, tls=proxied["tls"])
    assert refused.status_code == 401 and "error" in refused.json()


def test_a_body_over_the_service_limit_is_refused_by_nginx_with_the_resources(proxied):
    from recommender.service._gate import MAX_BODY_BYTES

    content = b'{"crisis_risk": true, "profiles": [' + b" " * MAX_BODY_BYTES + b"]}"
    answer = _post(
        proxied["proxy"],
        "/recommend_batch",
        None,
        tls=proxied["tls"],
        headers={**auth("program"), "Content-Type": "application/json"},
        content=content,
    )
    assert answer.status_code == 413
    body = answer.json()
    assert "larger than the proxy accepts" in body["error"] and "32 MiB" in body["error"]
    assert _resource_names(body) == _configured_resources()
    assert answer.headers["cache-control"] == "no-store"


def test_a_callers_forwarded_address_never_reaches_the_service_log(proxied):
    headers = {**auth("program"), "X-Forwarded-For": SPOOFED}
    through = _post(
        proxied["proxy"],
        "/recommend",
        profile(person_id="p-xff"),
        tls=proxied["tls"],
        headers=headers,
    )
    assert through.status_code == 200
    # What the header does when it reaches the service from loopback: the address is logged.
    direct_spoof = "198.51.100.77"
    _post(
        proxied["direct"],
        "/recommend",
        profile(person_id="p-xff"),
        headers={**auth("program"), "X-Forwarded-For": direct_spoof},
    )
    log = proxied["log"]
    deadline = time.monotonic() + 20
    while direct_spoof not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the direct request's access line never came"
        time.sleep(0.2)
    assert SPOOFED not in log.read_text(errors="replace")
    # nor does nginx's own log keep an address or a query string
    _post(proxied["proxy"], "/recommend?person_id=p-in-query", None, tls=proxied["tls"])
    access = (proxied["folder"] / "access.log").read_text()
    assert '"POST /recommend"' in access
    assert "127.0.0.1" not in access and "p-in-query" not in access


def test_with_the_service_stopped_a_crisis_flag_gets_the_resources_not_a_502_page(proxied):
    _stop(proxied["service"])
    with _held(urlsplit(proxied["direct"]).port):
        _the_stopped_service_gets_the_resources(proxied)


@contextlib.contextmanager
def _held(port: int):
    """The stopped service's port, bound here without listening: nginx's connections are refused
    as by a stopped service, and no server started meanwhile (another xdist worker's: free_port
    scans RECOMMENDER_TEST_PORTS in order) takes it and answers nginx instead."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))  # without SO_REUSEADDR, as free_port binds
        except OSError:
            # Its closed connections (TIME_WAIT) hold it from free_port as well; a listener
            # would be another server's.
            assert not _accepts(port), f"another server took port {port} once the service stopped"
        yield


def _the_stopped_service_gets_the_resources(proxied) -> None:
    flagged = {"person_id": "p-crisis", "role": "nurse", "crisis_risk": True}
    bodies = {
        "/recommend": flagged,
        "/recommend_batch": {"profiles": [flagged]},
        "/allocate": {"profiles": [flagged], "budget": 100},
        "/outcomes": {"outcomes": [flagged]},
    }
    for path, body in bodies.items():
        answer = _post(proxied["proxy"], path, body, tls=proxied["tls"], headers=auth("program"))
        assert answer.status_code == 502, (path, answer.text[:200])
        assert answer.headers["content-type"] == "application/json", path
        said = answer.json()
        assert said["error"].startswith("the recommendation service is unavailable"), path
        assert "no recommendation or plan was made" in said["error"]
        (result,) = said["crisis_results"]
        assert result["answer"]["recommended"] is None and result["answer"]["ranking"] == []
        assert result["answer"]["safety"]["level"] == "crisis"
        assert _resource_names(said) == _configured_resources(), path
    # A route that takes no profile gets nginx's own page.
    with httpx.Client(verify=proxied["tls"]) as client:
        ready = client.get(f"{proxied['proxy']}/readyz")
    assert ready.status_code == 502 and "crisis_results" not in ready.text


def _resource_names(body: dict) -> list[str]:
    (result,) = body["crisis_results"]
    return [r["name"] for r in result["answer"]["safety"]["resources"]]


def _configured_resources() -> list[str]:
    from recommender.service._config import load_serve_config

    rules = load_serve_config(ROOT / "configs" / "serve.yaml").safety
    return [r.name for r in rules.crisis_resources]


def test_the_fallback_files_are_the_ones_the_example_names():
    from recommender.service._proxy_fallback import FALLBACK_FILES, PROFILE_ROUTES

    text = EXAMPLE.read_text()
    for name, (statuses, _, _) in FALLBACK_FILES.items():
        line = f"error_page {' '.join(map(str, statuses))} /.crisis-fallback/{name};"
        assert line in text, line
    routes = "|".join(route.lstrip("/") for route in PROFILE_ROUTES)
    assert f"location ~ ^/({routes})/?$" in text
