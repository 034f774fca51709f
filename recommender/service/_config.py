"""The service's settings (``configs/serve.yaml``), checked once when the service starts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from recommender.policy import ExplorationRule, SafetyRules
from recommender.service._auth import ROLES
from recommender.service._erasure import PART_ROWS
from recommender.service._requests import MAX_BATCH_ROWS
from recommender.settings import SECRET, Section, check_settings, check_value, read_secret

__all__ = [
    "ServeConfig",
    "ServeSettings",
    "load_serve_config",
    "worker_settings",
    "check_before_serving",
    "CONFIG_ENV",
    "WORKER_ENV",
    "AUDIT_URL_ENV",
    "SERVICE_NAME",
]

# The BentoML service's name (its section in a BentoML configuration file).
SERVICE_NAME = "burnout_recommender"

# `recommender serve --config FILE` hands its file to the BentoML worker through this variable.
CONFIG_ENV = "RECOMMENDER_SERVE_CONFIG"

# Said in every answer and plan when serve.yaml gives no wording of its own.
ORGANISATIONAL_CHANGE = (
    "Individual programs complement organisational change; they do not replace it."
)

# Overrides of serve.yaml's worker settings, for one run (a benchmark, a container).
WORKER_ENV = {
    "workers": "RECOMMENDER_SERVE_WORKERS",
    "threads": "RECOMMENDER_SERVE_THREADS",
    "timeout": "RECOMMENDER_SERVE_TIMEOUT",
}

# Overrides of serve.yaml's audit URL (as does the secrets folder's audit_url file): a
# deployment points every worker at its database without editing the file or putting a
# password in it.
AUDIT_URL_ENV = "RECOMMENDER_AUDIT_URL"


class _KeyEntry(Section):
    role: Literal[ROLES]
    sha256: str = Field(
        pattern=r"^[0-9a-fA-F]{64}$",
        json_schema_extra=SECRET,
        description="a SHA-256 hex digest (64 hex characters); store the hash "
        "of the key, never the key itself",
    )


class _Auth(Section):
    keys: list[_KeyEntry] = []


class _Audit(Section):
    url: str | None = Field(
        None,
        json_schema_extra=SECRET,
        description="a SQLAlchemy URL (sqlite:///path, postgresql+psycopg://user@host/db) or null",
    )
    salt: str | None = Field(
        None,
        json_schema_extra=SECRET,
        description="a text, or better null and RECOMMENDER_AUDIT_SALT "
        "(or the secrets folder's audit_salt file)",
    )
    durability: Literal["process_crash", "power_loss"] = Field(
        "process_crash",
        description="process_crash (SQLite synchronous=NORMAL) or power_loss "
        "(synchronous=FULL): what a committed record must survive before its answer is given",
    )


class _Erasure(Section):
    part_rows: int = Field(
        PART_ROWS,
        ge=1,
        le=1_000_000,
        description="rows (answers, assignments, outcomes) one transaction of an erasure may "
        "change: the store's write lock is held that long while the service's answers wait",
    )


class _Ranking(Section):
    max_overlap: float = Field(0.5, ge=0, le=1)


class _Explanation(Section):
    top: int = Field(3, ge=1, le=20)


class ServeSettings(Section):
    """The keys of ``serve.yaml``, their types and ranges (see the file for what each means)."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    threads: int = Field(1, ge=1, le=64)
    timeout: float = Field(120, ge=1, le=3600)
    alpha: float = Field(0.1, ge=0.001, le=0.5)
    max_batch_rows: int = Field(MAX_BATCH_ROWS, ge=1, le=MAX_BATCH_ROWS)
    reload_poll_seconds: float = Field(5, ge=0.5, le=3600)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="DEBUG, INFO, WARNING or ERROR: the service's own log lines kept"
    )
    models_dir: str | None = None
    auth: _Auth = _Auth()
    audit: _Audit = _Audit()
    erasure: _Erasure = _Erasure()
    ranking: _Ranking = _Ranking()
    explanation: _Explanation = _Explanation()
    # Checked entry by entry by SafetyRules.from_config (recommender.policy).
    safety: dict[str, Any] = {}
    disclaimer: str = Field(
        min_length=1, pattern=r"\S", description="a non-empty text shown with every answer"
    )
    organisational_change: str = Field(
        ORGANISATIONAL_CHANGE,
        min_length=1,
        pattern=r"\S",
        description="a non-empty text said in every answer and plan",
    )
    # Checked by ExplorationRule.from_config (recommender.policy).
    exploration: dict[str, Any] = {}


@dataclass(frozen=True)
class ServeConfig:
    """Settings of the recommendation service; see ``configs/serve.yaml`` for each one."""

    host: str
    port: int
    workers: int
    threads: int
    timeout: float
    alpha: float
    max_batch_rows: int
    models_dir: Path
    api_keys: tuple[tuple[str, str], ...]
    audit_url: str | None
    audit_salt: str | None
    max_overlap: float
    top: int
    safety: SafetyRules
    disclaimer: str
    source: Path | None = None
    exploration: ExplorationRule = field(default_factory=ExplorationRule)
    organisational_change: str = ORGANISATIONAL_CHANGE
    reload_poll_seconds: float = 5.0
    audit_durability: str = "process_crash"
    log_level: str = "INFO"
    erase_part_rows: int = PART_ROWS

    @property
    def coverage(self) -> float:
        return 1.0 - self.alpha

    @property
    def audit_store(self) -> str:
        """The audit store's URL: ``audit_url``, else a SQLite file in the models folder."""
        return self.audit_url or f"sqlite:///{self.models_dir / 'audit.db'}"

    @property
    def bentoml_home(self) -> Path:
        """Where BentoML may write (never the user's ~/bentoml)."""
        return self.models_dir / "bentoml"


def load_serve_config(path: str | os.PathLike | None = None) -> ServeConfig:
    """Read and check ``serve.yaml``.

    A relative ``models_dir`` and a relative SQLite file in ``audit.url`` are read beside the
    file, whatever the working folder (``RECOMMENDER_AUDIT_URL`` and the secrets folder's
    ``audit_url`` still win over ``audit.url``, as given).

    Parameters
    ----------
    path : path-like, optional
        Defaults to ``$RECOMMENDER_SERVE_CONFIG`` and then ``configs/serve.yaml``.

    Raises
    ------
    InputError
        Naming the key, the value found and what is accepted.
    """
    from recommender.config_file import beside, read_config
    from recommender.paths import config_path, models_dir
    from recommender.service._sqlite import sqlite_beside

    path = Path(path or os.environ.get(CONFIG_ENV) or config_path("serve.yaml"))
    raw = read_config(path, what="service config")
    where = f"service config {path}"
    settings = check_settings(ServeSettings, raw, source=where, lines=raw.lines)
    # A relative models_dir or SQLite file in the file is beside the file, from any working
    # folder; the environment's and the secrets folder's are the caller's, as given.
    file_url = settings.audit.url and sqlite_beside(settings.audit.url, beside(".", path))
    # A URL with a password comes from the environment or the secrets folder, never the file.
    audit_url = read_secret("audit_url", env=AUDIT_URL_ENV) or file_url
    return ServeConfig(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        threads=settings.threads,
        timeout=float(settings.timeout),
        alpha=float(settings.alpha),
        max_batch_rows=settings.max_batch_rows,
        models_dir=beside(settings.models_dir, path) if settings.models_dir else models_dir(),
        api_keys=tuple((k.role, k.sha256.lower()) for k in settings.auth.keys),
        audit_url=audit_url or None,
        audit_salt=settings.audit.salt,
        max_overlap=float(settings.ranking.max_overlap),
        top=settings.explanation.top,
        safety=SafetyRules.from_config(settings.safety, where=f"{where}: safety"),
        disclaimer=" ".join(settings.disclaimer.split()),
        source=path,
        exploration=ExplorationRule.from_config(
            settings.exploration,
            coverage=1.0 - float(settings.alpha),
            where=f"{where}: exploration",
        ),
        organisational_change=" ".join(settings.organisational_change.split()),
        reload_poll_seconds=float(settings.reload_poll_seconds),
        audit_durability=settings.audit.durability,
        log_level=settings.log_level,
        erase_part_rows=settings.erasure.part_rows,
    )


def worker_settings(config: ServeConfig | None = None) -> dict:
    """``workers``, ``threads``, ``traffic`` and ``logging`` for ``@bentoml.service``, from
    ``serve.yaml``.

    BentoML reads them when the service class is defined, under ``recommender serve`` and a
    plain ``bentoml serve`` alike: both read the file named by ``$RECOMMENDER_SERVE_CONFIG``
    (else ``configs/serve.yaml``). ``RECOMMENDER_SERVE_WORKERS``, ``..._THREADS`` and
    ``..._TIMEOUT`` still win when set, checked as the file's settings are.
    """
    config = config or load_serve_config()
    chosen = {key: _worker_override(key, getattr(config, key)) for key in WORKER_ENV}
    return {
        "workers": chosen["workers"],
        "threads": chosen["threads"],
        "traffic": {"timeout": float(chosen["timeout"])},
        # The access log prints a request's Content-Type header as sent: any text a caller
        # puts there (a name, a note) would reach the log. Every route takes JSON anyway.
        "logging": {"access": {"request_content_type": False}},
    }


def check_before_serving(config: ServeConfig) -> None:
    """Refuse what every worker would refuse at its start, once, before any worker starts.

    The API keys given outside ``serve.yaml`` (``$RECOMMENDER_API_KEYS`` or the secrets
    folder's ``api_keys``: an entry a worker cannot read would stop it at every start) and an
    audit URL that names no store (no server can make it work), and a models folder that a
    restore killed midway left part restored (its journal is there). Called by ``recommender
    serve`` and when the service class is defined, which a plain ``bentoml serve`` (the bento's
    container) does in its own process before it starts workers, so both stop here, naming the
    setting, instead of running without a worker that can answer.

    Raises
    ------
    InputError
        Naming the variable, file or URL (password masked) and what is accepted.
    """
    from recommender._restore_swap import refuse_interrupted_restore
    from recommender.service._audit import check_audit_url
    from recommender.service._auth import secret_api_keys

    secret_api_keys()
    check_audit_url(config.audit_store)
    # A models folder a killed restore left part restored: `recommender backup` (or any other
    # command opening it) sorts it out; the service does not (recommender.cli._restore_first).
    refuse_interrupted_restore(config.models_dir)


def _worker_override(key: str, configured):
    env = WORKER_ENV[key]
    text = os.environ.get(env, "").strip()
    if not text:
        return configured
    kind = ServeSettings.model_fields[key].annotation  # int or float
    try:
        value = kind(text)
    except ValueError:
        value = text  # refused by name below
    return check_value(ServeSettings, key, value, source=env)
