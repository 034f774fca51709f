"""The service's settings (``configs/serve.yaml``), checked once when the service starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from recommender.errors import InputError
from recommender.policy import ExplorationRule, SafetyRules
from recommender.service._schemas import MAX_BATCH_ROWS

__all__ = ["ServeConfig", "load_serve_config", "CONFIG_ENV", "SERVICE_NAME"]

# The BentoML service's name (its section in a BentoML configuration file).
SERVICE_NAME = "burnout_recommender"

# `recommender serve --config FILE` hands its file to the BentoML worker through this variable.
CONFIG_ENV = "RECOMMENDER_SERVE_CONFIG"

_KEYS = {
    "host", "port", "workers", "threads", "timeout", "alpha", "max_batch_rows", "models_dir",
    "auth", "audit", "ranking", "explanation", "safety", "disclaimer", "exploration",
    "auth", "audit", "ranking", "explanation", "safety", "disclaimer", "organisational_change",
}

# Said in every answer and plan when serve.yaml gives no wording of its own.
ORGANISATIONAL_CHANGE = ("Individual programs complement organisational change; they do not "
                         "replace it.")


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

    @property
    def coverage(self) -> float:
        return 1.0 - self.alpha

    @property
    def bentoml_home(self) -> Path:
        """Where BentoML may write (never the user's ~/bentoml)."""
        return self.models_dir / "bentoml"


def load_serve_config(path: str | os.PathLike | None = None) -> ServeConfig:
    """Read and check ``serve.yaml``.

    Parameters
    ----------
    path : path-like, optional
        Defaults to ``$RECOMMENDER_SERVE_CONFIG`` and then ``configs/serve.yaml``.

    Raises
    ------
    InputError
        Naming the key, the value found and what is accepted.
    """
    import yaml

    from recommender.paths import config_path, models_dir

    path = Path(path or os.environ.get(CONFIG_ENV) or config_path("serve.yaml"))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise InputError(f"service config {path} does not exist") from None
    except yaml.YAMLError as error:
        raise InputError(f"service config {path} is not valid YAML: {error}") from None
    where = str(path)
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; accepted: {sorted(_KEYS)}")

    def number(key, kind, lo, hi, default, section=raw, prefix=""):
        value = section.get(key, default)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and kind is int:
            ok = float(value).is_integer()
        if not ok or not lo <= value <= hi:
            raise InputError(f"{where}: {prefix}{key} = {value!r} is not accepted; give "
                             f"{'an integer' if kind is int else 'a number'} from {lo} to {hi}")
        return kind(value)

    def section(key):
        value = raw.get(key) or {}
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: {key} must be a mapping, got {value!r}")
        return value

    auth, audit, ranking, explanation = (section(k) for k in ("auth", "audit", "ranking",
                                                               "explanation"))
    keys = []
    for i, entry in enumerate(auth.get("keys") or []):
        keys.append(_parse_key_entry(entry, f"{where}: auth.keys[{i}]"))
    disclaimer = raw.get("disclaimer")
    if not isinstance(disclaimer, str) or not disclaimer.strip():
        raise InputError(f"{where}: disclaimer = {disclaimer!r} is not accepted; give a text")
    home = raw.get("models_dir")
    organisational = raw.get("organisational_change", ORGANISATIONAL_CHANGE)
    if not isinstance(organisational, str) or not organisational.strip():
        raise InputError(f"{where}: organisational_change = {organisational!r} is not accepted; "
                         "give a text")
    return ServeConfig(
        host=str(raw.get("host", "127.0.0.1")),
        port=number("port", int, 1, 65535, 3000),
        workers=number("workers", int, 1, 64, 1),
        threads=number("threads", int, 1, 64, 1),
        timeout=number("timeout", float, 1, 3600, 120),
        alpha=number("alpha", float, 0.001, 0.5, 0.1),
        max_batch_rows=number("max_batch_rows", int, 1, MAX_BATCH_ROWS, MAX_BATCH_ROWS),
        models_dir=Path(home) if home else models_dir(),
        api_keys=tuple(keys),
        audit_url=audit.get("url") or None,
        audit_salt=None if audit.get("salt") is None else str(audit["salt"]),
        max_overlap=number("max_overlap", float, 0, 1, 0.5, ranking, "ranking."),
        top=number("top", int, 1, 20, 3, explanation, "explanation."),
        safety=SafetyRules.from_config(raw.get("safety") or {}, where=f"{where}: safety"),
        disclaimer=" ".join(disclaimer.split()),
        source=path,
        exploration=ExplorationRule.from_config(
            section("exploration"), coverage=1.0 - number("alpha", float, 0.001, 0.5, 0.1),
            where=f"{where}: exploration"),
        organisational_change=" ".join(organisational.split()),
    )


def _parse_key_entry(entry, spot: str) -> tuple[str, str]:
    from recommender.service._auth import ROLES

    if not isinstance(entry, Mapping) or set(entry) != {"role", "sha256"}:
        raise InputError(f"{spot}: {entry!r} is not accepted; give {{role: ..., sha256: ...}}")
    role, digest = entry["role"], str(entry["sha256"]).lower()
    if role not in ROLES:
        raise InputError(f"{spot}.role: {role!r} is not accepted; roles: {', '.join(ROLES)}")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise InputError(f"{spot}.sha256: not a SHA-256 hex digest (64 hex characters); "
                         "store the hash of the key, never the key itself")
    return role, digest
