"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a temporary folder,
loopback only, trust authentication, stopped and deleted at the end of the session, or by a
watchdog once the test process has ended without doing so (killed: tests/tether.py).

`make test` installs Debian's `postgresql` package when it is missing; nothing else (no system
service, no ~/.pgpass) is used. As root, the server runs as the `postgres` user (PostgreSQL
refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import tether

USER = "recommender"
# What the server logs when another process holds its port, and how many ports it is given.
_PORT_TAKEN = b"Address already in use"
_PORT_TRIES = 5


def server_binaries() -> Path | None:
    """The folder with initdb and pg_ctl: Debian's newest version, else whatever is on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Cluster:
    """One running cluster; :meth:`database` makes a fresh, empty database and gives its URL."""

    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.folder = Path(tempfile.mkdtemp(prefix="recommender-pg-"))
        self.data = self.folder / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        # Before anything runs in the folder: a test process killed from here on leaves no
        # server running and no folder.
        stop = self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self._record = tether.record(folder=self.folder, stop=stop)
        self._watchdog = tether.watch(self._record)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        self._start_on_a_free_port()

    def _start_on_a_free_port(self) -> None:
        """Start on a loopback port free now. The port is released before the server binds it:
        when another process took it meanwhile, start on another."""
        from service_fixtures import free_port

        log = self.folder / "server.log"
        for _ in range(_PORT_TRIES):
            self.port = free_port()
            said = log.stat().st_size if log.exists() else 0  # this try's lines follow
            try:
                self.start()
                return
            except RuntimeError:
                if _PORT_TAKEN not in log.read_bytes()[said:]:
                    raise
        raise RuntimeError(
            f"{_PORT_TRIES} free ports in a row were taken before PostgreSQL bound them"
        )

    def start(self) -> None:
        """Start the server (again, after :meth:`halt`: same port, same databases)."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def halt(self) -> None:
        """Stop the server as an operator would (``pg_ctl stop -m fast``), keeping its data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.binaries / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return command

    def _run(self, tool: str, *args: str) -> None:
        command = self._command(tool, *args)
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def database(self, prefix: str = "db", *, copy_of: str | None = None) -> str:
        """A new database, empty or a copy of the one at URL ``copy_of``; returns its
        SQLAlchemy URL.

        PostgreSQL copies only a database no one is connected to: the sessions still open on
        ``copy_of`` (a connection pool left by the run that filled it) are ended first.
        """
        import psycopg
        import sqlalchemy as sa

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres", autocommit=True
        ) as connection:
            if copy_of is None:
                connection.execute(f'CREATE DATABASE "{name}"')
            else:
                source = sa.engine.make_url(copy_of).database
                connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (source,),
                )
                # It waits up to 5 s for the ended sessions to be gone.
                connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            tether.forget(self._record)
            self._watchdog.kill()
            self._watchdog.wait()
