"""``recommender serve``: run the recommendation service with ``bentoml serve``.

What ``--print-example`` prints once it answers is in :mod:`recommender.cli._serve_example`.
"""

from __future__ import annotations

from recommender.cli._numbers import whole_number
from recommender.cli._serve_example import _print_example

HELP = "serve the champion model over HTTP (BentoML) on 127.0.0.1:3000"

# The models folder: refuses to start over a restore killed midway.
MODELS_FOLDER = "serves"
SERVE_CONFIG_OPTION = "config"  # its --config is the service's settings
# Once the server has stopped, this process holds nothing open (its BentoML home removed, the
# audit store closed at the check): it ends without collecting its objects.
EXIT_UNCOLLECTED = True

_TARGET = "recommender.service.service:Recommender"
# Signals passed on to the server (a hangup as SIGTERM: BentoML's arbiter takes SIGHUP as
# "restart the workers"); Ctrl-C's SIGINT arrives as KeyboardInterrupt and is passed on too.
_FORWARDED = ("SIGTERM", "SIGHUP")


def configure(parser) -> None:
    parser.add_argument("--host", default=None, help="address to bind (default: serve.yaml's)")
    parser.add_argument(
        "--port",
        type=whole_number(minimum=1, maximum=65535, accepted="a port from 1 to 65535"),
        default=None,
        help="port (default: serve.yaml's)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="service settings (default: configs/serve.yaml)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the settings, the catalog, that the address is free, that a database "
        "server's audit store and the model registry can be read, and warn of what serving "
        "would warn about the champion (changing nothing), then exit without serving "
        "(make demo does this before it trains)",
    )
    parser.add_argument(
        "--print-example",
        action="store_true",
        help="make one API key per role for this run and, once the service "
        "answers, print a curl request and its response, and the "
        "auditor's and the scientist's calls",
    )


def run(args) -> int:
    import os
    import shutil
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from recommender.catalog import load_catalog
    from recommender.service import WORKER_ENV, load_serve_config, worker_settings
    from recommender.service import API_KEYS_ENV, ROLES, check_before_serving

    config = load_serve_config(args.config)
    host = args.host or config.host
    port = config.port if args.port is None else args.port
    # Checked here, once, in one line (as the service class does under a plain `bentoml serve`).
    check_before_serving(config)
    # Worker settings reach the service class through the environment (see service.py): the
    # file's, or the variables' where they are set; checked before `--check` says ready.
    workers = worker_settings(config)
    # Every worker loads the catalog at start, crisis answers or not: one it cannot load is a
    # worker that fails at every start and answers nothing, so it is refused here, named.
    load_catalog()
    _check_address(host, port)
    _warn_of_readable_salt(config)
    if args.check:
        # Both said in one run; either one unreadable fails the check, as the service would
        # then give crisis answers only. What only warns at serve (no champion yet: make demo
        # checks before it trains; a champion's concerns) warns here too, and passes.
        store = _reach_audit_store(config)
        if store is not None:
            _check_salt(config)
        champion = _check_champion(check=True)
        if store is None or champion is None:
            return 1
        print(
            f"ready to serve on http://{host}:{port}: settings and catalog read, port free"
            f"{store}{champion}"
        )
        return 0
    _check_audit_store(config)
    _check_champion()

    env = dict(os.environ)
    env["BENTOML_DO_NOT_TRACK"] = "True"
    env["RECOMMENDER_SERVE_CONFIG"] = str(Path(config.source).resolve())
    env[WORKER_ENV["workers"]] = str(workers["workers"])
    env[WORKER_ENV["threads"]] = str(workers["threads"])
    env[WORKER_ENV["timeout"]] = str(workers["traffic"]["timeout"])
    demo_keys = {}
    if args.print_example:
        import secrets

        # One key per role, valid for this run only, so every role's calls can be tried.
        demo_keys = {role: secrets.token_urlsafe(24) for role in ROLES}
        extra = ",".join(f"{role}={key}" for role, key in demo_keys.items())
        env[API_KEYS_ENV] = ",".join(filter(None, [env.get(API_KEYS_ENV), extra]))
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        _TARGET,
        "--host",
        host,
        "--port",
        str(port),
    ]
    _check_address(host, port)  # again: the audit store and champion checks take a while
    print(
        f"serving on http://{host}:{port} (OpenAPI: /docs.json; stop with Ctrl-C)", file=sys.stderr
    )
    # BentoML writes its home, never the user's ~/bentoml: in memory for this run when it can.
    home, temporary_home = _bentoml_home(config)
    env["BENTOML_HOME"] = str(home)
    # In a session of its own, so that the signals of this terminal reach the server only
    # through this process: a closed terminal (SIGHUP) would otherwise make BentoML's arbiter
    # restart its workers, and the server would go on running, orphaned, on the port.
    try:
        process = subprocess.Popen(
            command, env=env, start_new_session=True, preexec_fn=_stop_with_this_process()
        )
    except BaseException:
        if temporary_home:
            shutil.rmtree(home, ignore_errors=True)
        raise

    def forward(signum, _frame):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {
        getattr(signal, name): signal.signal(getattr(signal, name), forward) for name in _FORWARDED
    }
    try:
        if args.print_example:
            _print_example(process, host, port, demo_keys)
        return process.wait()
    except KeyboardInterrupt:
        forward(signal.SIGINT, None)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            return 130
        # A server that stopped cleanly is no error (make stays quiet); one ended by a signal
        # (-N) exits 128 + N as a shell would say it, not 256 - N.
        return 128 - code if code < 0 else code
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if temporary_home:
            shutil.rmtree(home, ignore_errors=True)


def _bentoml_home(config):
    """``(folder, temporary)``: BentoML's home for this run, and whether it is to be removed.

    It keeps nothing between runs but the workers' metrics: files each worker maps into memory
    and writes as it counts. On a full disk the first new count (the 503 of a store that could
    not be written) killed the worker with SIGBUS, and each worker restarted after it died at
    start, so nothing was answered, crisis requests included, until space was freed. So the
    home is a folder of this run in shared memory (/dev/shm), which no full disk reaches; where
    there is none, the models folder's, as before. The folder is named by this process's id,
    and the folders of runs whose process has ended without removing theirs (``kill -9``) are
    removed first: shared memory is the machine's memory.
    """
    import os
    import tempfile
    from pathlib import Path

    memory = Path("/dev/shm")
    if memory.is_dir() and os.access(memory, os.W_OK | os.X_OK):
        _remove_ended_runs_homes(memory)
        try:
            prefix = f"{_SHARED_HOME}{os.getpid()}-"
            return Path(tempfile.mkdtemp(prefix=prefix, dir=memory)), True
        except OSError:
            pass  # full or refused: the models folder's, as where there is no /dev/shm
    home = config.bentoml_home
    home.mkdir(parents=True, exist_ok=True)
    return home, False


_SHARED_HOME = "recommender-bentoml-"


def _remove_ended_runs_homes(memory) -> None:
    """Remove this user's BentoML homes in ``memory`` whose `recommender serve` has ended."""
    import os
    import shutil

    from recommender._processes import process_alive

    for folder in memory.glob(f"{_SHARED_HOME}*-*"):
        pid = folder.name.removeprefix(_SHARED_HOME).partition("-")[0]
        try:
            mine = folder.is_dir() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdecimal() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _stop_with_this_process():
    """What the server's process runs before it starts (Linux): SIGTERM when this process ends,
    even by ``kill -9``, which no longer reaches the server through the process group; and, if
    this process already ended between the fork and that call, SIGTERM at once.

    libc is loaded here, in this process: loading a library in the forked child can deadlock."""
    import ctypes
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def stop_with_parent() -> None:
        PR_SET_PDEATHSIG = 1
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # orphaned before the signal was set
            os.kill(os.getpid(), signal.SIGTERM)

    return stop_with_parent


def _check_address(host: str, port: int) -> None:
    """Raise :class:`InputError` unless a server can listen on ``host``:``port`` now.

    BentoML finds out only after it has started, with a traceback, and ``make demo`` only
    after training; meanwhile another server on the port (an earlier demo, say) answered the
    example request with this run's keys, 401.
    """
    import errno
    import ipaddress
    import socket

    from recommender.errors import InputError

    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        raise InputError(
            f"--host {host}: give an IP address (BentoML takes no name): 127.0.0.1 for this "
            "machine only, 0.0.0.0 for every interface (make demo: HOST=...)"
        ) from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As the server binds: a port some connection just left (TIME_WAIT) is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                free = _free_port_after(host, port, family)
                instead = f" (e.g. --port {free}, or make demo PORT={free})" if free else ""
                raise InputError(
                    f"port {port} on {host} is already in use, by another program (an "
                    f"earlier `recommender serve` or `make demo` still running, say); stop it, "
                    f"or serve on another port{instead}"
                ) from None
            if error.errno == errno.EACCES:
                raise InputError(
                    f"--port {port}: this user may not listen on it (ports below 1024 need "
                    "root); give a port from 1024 to 65535 (make demo: PORT=...)"
                ) from None
            raise InputError(
                f"cannot listen on {host}:{port} ({error.strerror}); --host must be an address "
                "of this machine (make demo: HOST=...)"
            ) from None


def _free_port_after(host: str, port: int, family) -> int | None:
    """The first port after ``port`` (within 20) that is free on ``host`` now, or None."""
    import socket

    for candidate in range(port + 1, min(port + 21, 65536)):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return candidate
    return None


def _reach_audit_store(config) -> str | None:
    # A database server is reached once, changing nothing (no migration: a check before a
    # rollout must not upgrade the store the serving release uses): a wrong password, host or
    # database is said here rather than only once the service runs. None: it cannot be.
    import sys

    from recommender.errors import InputError
    from recommender.service import AuditUrlRefused, reach_audit_store

    try:
        state = reach_audit_store(config.audit_store)
    except AuditUrlRefused:
        raise
    except InputError as error:
        print(
            f"error: {error}; `recommender serve` would start for crisis answers only (/readyz "
            "not ready; every other answer 503) until it can open the store",
            file=sys.stderr,
        )
        return None
    return "" if state is None else f", audit store {state}"


def _warn_of_salt(error) -> None:
    import sys

    print(
        f"warning: {error}; the service starts for crisis answers only (/readyz not ready; "
        "every other answer 503) until it has a salt (a salt file or the secrets folder is "
        "read again every reload_poll_seconds; a variable or serve.yaml needs a restart)",
        file=sys.stderr,
    )


def _warn_of_readable_salt(config) -> None:
    # A salt in serve.yaml that other users can read lets any of them recompute a person's
    # hash from a guessed id (ids are payroll numbers, ids in sequence): the audit export's
    # hashes are then names. Said, not refused: the service works, and a person fixes it.
    import os
    import stat
    import sys

    from recommender.service import SALT_ENV
    from recommender.settings import read_secret

    source = config.source
    if not (config.audit_salt and config.audit_salt.strip()) or source is None:
        return
    if read_secret("audit_salt", env=SALT_ENV):  # the environment's or secrets folder's wins
        return
    try:
        mode = stat.S_IMODE(os.stat(source).st_mode)
    except OSError:
        return
    if mode & 0o077:
        print(
            f"warning: the audit salt is in {source}, which other users of this machine may "
            f"read (mode {mode:04o}): whoever reads it can recompute a person's hash from a "
            f"guessed id. Give it as {SALT_ENV} or the secrets folder's audit_salt, or make "
            f"the file its owner's alone (chmod 600 {source})",
            file=sys.stderr,
        )


def _check_salt(config) -> None:
    # --check says what serve says at start of a salt it cannot use (a short one, an empty or
    # unreadable salt file), in the same words, and passes, as serve starts for crisis answers.
    # It makes no salt file (--check changes nothing): with no salt given and no file yet,
    # serve makes one, so there is nothing to say.
    from pathlib import Path

    from recommender.service import AuditSaltMissing, resolve_salt

    salt_file = Path(config.models_dir) / "audit.salt"
    try:
        resolve_salt(config.audit_salt, config.models_dir, create=False, store=config.audit_store)
    except AuditSaltMissing as error:
        if not salt_file.exists() and str(error).startswith("no audit salt:"):
            return
        _warn_of_salt(error)
    except OSError:  # a models folder it cannot read: the workers say it
        return


def _check_audit_store(config) -> None:
    # A URL that names no store is refused now (AuditUrlRefused, exit 2); a store that cannot
    # be opened (a server down, a wrong password) or that was written with another salt is
    # said in one line, and the service starts for crisis answers, which need no store.
    import sys

    from recommender.errors import InputError
    from recommender.service import AuditLog, AuditSaltMismatch, AuditUrlRefused, resolve_salt

    try:
        # The salt the workers will use (the same settings, the same salt file), so that a
        # store written with another one is said now rather than only in the workers' log.
        salt = resolve_salt(config.audit_salt, config.models_dir, store=config.audit_store)
    except OSError:  # a models folder not writable: the workers say it, the store is checked
        salt = None
    except InputError as error:  # no usable salt: the workers try again every poll
        _warn_of_salt(error)
        salt = None  # the URL is still checked
    try:
        AuditLog(config.audit_store, salt=salt, durability=config.audit_durability).close()
    except AuditUrlRefused:
        raise
    except AuditSaltMismatch as error:
        print(
            f"warning: {error}; the service starts for crisis answers only (/readyz not "
            "ready; every other answer 503) until it is given that salt (a salt file is read "
            "again every reload_poll_seconds; a variable or serve.yaml needs a restart)",
            file=sys.stderr,
        )
    except InputError as error:
        print(
            f"warning: {error}; the service starts for crisis answers only (/readyz not "
            "ready; every other answer 503) and opens the store once it can (tried again "
            "every reload_poll_seconds)",
            file=sys.stderr,
        )


def _check_champion(*, check: bool = False) -> str | None:
    # A clear message now beats a traceback from inside the server's worker later. Without a
    # champion the service still starts, because crisis answers need no model: it gives them,
    # says not ready on /readyz and answers everything else 503 until /reload loads one.
    # ``check`` (serve --check): a registry that cannot be read is an error, as an audit store
    # that cannot be reached is; returns what the ready line says of the champion, or None then.
    import sys

    from recommender._locations import shown_location
    from recommender.errors import InputError, ModelUnavailable
    from recommender.registry import (
        MODEL_NAME,
        champion_concerns,
        client,
        resolve_model,
        tracking_uri,
    )
    from recommender.service import give_up_on_registry_soon

    give_up_on_registry_soon()  # a registry down: start for crisis answers within seconds
    try:
        champion = resolve_model("champion")
    except ModelUnavailable as error:
        print(
            f"{'error' if check else 'warning'}: {error}; if the service cannot read it either, "
            "it starts for crisis answers only (/readyz not ready) until /reload loads the "
            "champion",
            file=sys.stderr,
        )
        return None
    except InputError:
        print(
            f"warning: no model holds the 'champion' alias in the MLflow store at "
            f"{shown_location(tracking_uri())}; the service starts for crisis answers only (/readyz not "
            "ready) until `recommender train` registers one and /reload loads it (or set "
            "MLFLOW_TRACKING_URI to the store that has one)",
            file=sys.stderr,
        )
        return ", no champion yet"
    try:
        concerns = champion_concerns(MODEL_NAME, mlflow_client=client(existing=True))
    except Exception as error:  # noqa: BLE001 - a check, not a reason to stop the start
        concerns = [f"the champion could not be checked ({type(error).__name__}: {error})"]
    for concern in concerns:
        print(f"warning: {concern}", file=sys.stderr)
    warned = f" ({len(concerns)} warning{'s' * (len(concerns) != 1)} above)" if concerns else ""
    return f", champion version {champion.version}{warned}"
