"""Config files read through pydantic models that refuse typos, and secrets kept out of them.

Every config section is a :class:`Section`: unknown keys are refused (``audit: {ulr: ...}`` is an
error, not a silently ignored line), types are strict (``"3000"`` is not a port) and ranges are
declared once with ``Field(ge=..., le=...)``. :func:`check_settings` turns pydantic's errors into
one :class:`~recommender.errors.InputError` whose message names each key by its dotted path, the
value found and what is accepted, with a "did you mean" for a misspelt key.

Adding a setting is adding a field to a section; its range or ``Literal`` choices are the
accepted values the error shows. A ``description=`` on the field replaces the generated text.

Secrets (database passwords, API keys, salts) never need to be in a YAML file:
:func:`read_secret` takes them from the environment or from a secrets folder
(``$RECOMMENDER_SECRETS_DIR/<name>``, one file per secret, as Docker and Kubernetes mount them).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import secrets
import tempfile
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from recommender.errors import InputError

__all__ = [
    "Section",
    "check_settings",
    "check_value",
    "make_secret_file",
    "read_secret",
    "SECRETS_DIR_ENV",
]

SECRETS_DIR_ENV = "RECOMMENDER_SECRETS_DIR"
# Field metadata marking a value never to be repeated in an error (keys, salts, passwords).
SECRET = {"secret": True}


class Section(BaseModel):
    """Base of every config section: unknown keys refused, no silent type conversion.

    Examples
    --------
    >>> from pydantic import Field
    >>> class Audit(Section):
    ...     url: str = "sqlite://"
    ...     port: int = Field(3000, ge=1, le=65535)
    >>> check_settings(Audit, {"port": 8080}).port
    8080
    >>> check_settings(Audit, {"ulr": "sqlite://"}, source="serve.yaml: audit")
    Traceback (most recent call last):
    ...
    recommender.errors.InputError: serve.yaml: audit: ulr = 'sqlite://' is not a known key; accepted: url, port (did you mean 'url'?)
    >>> check_settings(Audit, {"port": 0})
    Traceback (most recent call last):
    ...
    recommender.errors.InputError: config: port = 0 is not accepted; give an integer from 1 to 65535
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_Model = typing.TypeVar("_Model", bound=BaseModel)


def check_settings(
    model: type[_Model], raw: Any, *, source: str = "config", lines: Mapping | None = None
) -> _Model:
    """Validate ``raw`` (a parsed YAML mapping) against ``model``.

    ``lines`` (dotted key -> line, as :class:`recommender.config_file.ConfigMapping` holds
    them) puts ``line N:`` before each problem of a key the file holds.

    Raises
    ------
    InputError
        One message for all problems, each as ``<dotted.key> = <value> ...; <accepted>``;
        ``problems`` holds them as ``{"field", "value", "message", "accepted"}`` dicts.
    """
    if not isinstance(raw, dict):
        raise InputError(f"{source}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = [_problem(model, item) for item in error.errors()]
    for problem in problems:
        line = (lines or {}).get(problem["field"])
        problem["text"] = (f"line {line}: " if line else "") + problem["text"]
    text = "; ".join(p["text"] for p in problems)
    raise InputError(
        f"{source}: {text}",
        problems=[{k: v for k, v in p.items() if k != "text"} for p in problems],
    )


def check_value(model: type[BaseModel], key: str, value: Any, *, source: str) -> Any:
    """``value`` checked as the setting ``key`` of ``model`` alone (an override given elsewhere,
    such as an environment variable named by ``source``).

    Examples
    --------
    >>> from pydantic import Field
    >>> class Server(Section):
    ...     workers: int = Field(1, ge=1, le=64)
    >>> check_value(Server, "workers", 4, source="WORKERS")
    4
    >>> check_value(Server, "workers", "four", source="WORKERS")
    Traceback (most recent call last):
    ...
    recommender.errors.InputError: WORKERS = 'four' is not accepted; give an integer from 1 to 64
    """
    field = model.model_fields[key]
    check = TypeAdapter(typing.Annotated[field.annotation, *field.metadata])
    try:
        return check.validate_python(value, strict=True)
    except ValidationError as error:
        item = error.errors()[0]
    accepted = _accepted(field, item)
    raise InputError(
        f"{source} = {_show(value)} is not accepted; give {accepted}",
        problems=[
            {"field": source, "value": _show(value), "message": item["msg"], "accepted": accepted}
        ],
    )


def read_secret(name: str, *, env: str | None = None) -> str | None:
    """A secret from ``$<env>``, else from the file ``$RECOMMENDER_SECRETS_DIR/<name>``.

    Returns ``None`` when neither holds it. Surrounding whitespace (a trailing newline of a
    mounted file) is stripped; an empty value counts as absent.

    Raises
    ------
    InputError
        When ``$RECOMMENDER_SECRETS_DIR`` is set but names no folder (a mount that failed: its
        secrets ignored, the service would start without them), or ``<name>`` in it is not a
        readable text file; naming the variable or the file and what is needed.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = open(os.path.join(folder, "audit_salt"), "w").write("s3cret\\n")
    >>> os.environ[SECRETS_DIR_ENV] = folder
    >>> read_secret("audit_salt", env="NO_SUCH_VARIABLE_SET")
    's3cret'
    >>> del os.environ[SECRETS_DIR_ENV]
    """
    if env and os.environ.get(env, "").strip():
        return os.environ[env].strip()
    folder = os.environ.get(SECRETS_DIR_ENV, "").strip()
    if not folder:
        return None
    if not Path(folder).is_dir():
        raise InputError(
            f"{SECRETS_DIR_ENV} = {folder!r} is not a folder; give the folder holding the "
            "secret files (api_keys, audit_salt, audit_url), or unset it"
        )
    path = Path(folder) / name
    if not path.exists():
        return None
    if not path.is_file():
        raise InputError(f"the secret {path} is not a file; give it as a file holding the secret")
    try:
        value = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"the secret {path} cannot be read: it is not UTF-8 text") from None
    except OSError as error:  # a file the service's user may not read (a mount's owner)
        raise InputError(
            f"the secret {path} cannot be read ({error.strerror}); it must be readable by the "
            "user the service runs as"
        ) from None
    return value or None


def make_secret_file(path) -> None:
    """Make ``path`` (owner-only) holding a new random secret, unless it exists already.

    Written to a temporary sibling and linked into place, so another process sees the whole
    secret or no file, never an empty one; when two make it at once the first link wins and
    both then read that one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, secrets.token_hex(32).encode())
        os.fsync(handle)
        os.close(handle)
        handle = None
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(temp, path)
    finally:
        if handle is not None:
            with contextlib.suppress(OSError):
                os.close(handle)
        with contextlib.suppress(OSError):
            os.unlink(temp)


# ------------------------------------------------------------------------------ messages
def _problem(model: type[BaseModel], item: dict) -> dict:
    loc = item["loc"]
    dotted = _dotted(loc)
    parent, field = _resolve(model, loc)
    secret = field is not None and (field.json_schema_extra or {}).get("secret")
    value = "<hidden>" if secret else _show(item.get("input"))
    if item["type"] == "extra_forbidden":
        known = list(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        accepted = ", ".join(known) or "no keys"
        text = f"{dotted} = {value} is not a known key; accepted: {accepted}{hint}"
        return {
            "field": dotted,
            "value": value,
            "message": "unknown key",
            "accepted": accepted,
            "text": text,
        }
    if item["type"] == "missing":
        accepted = _accepted(field, item)
        text = f"{dotted} is missing; give {accepted}"
        return {
            "field": dotted,
            "value": None,
            "message": "missing",
            "accepted": accepted,
            "text": text,
        }
    accepted = _accepted(field, item)
    text = f"{dotted} = {value} is not accepted; give {accepted}"
    return {
        "field": dotted,
        "value": value,
        "message": item["msg"],
        "accepted": accepted,
        "text": text,
    }


def _dotted(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text or "(top level)"


def _resolve(model: type[BaseModel], loc: tuple):
    """The model holding the last key of ``loc`` and that key's FieldInfo (either may be None)."""
    current: Any = model
    parent, field = None, None
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            parent, field, current = None, None, None
            continue
        parent = current
        field = current.model_fields.get(str(part))
        current = _inner_model(field.annotation) if field is not None else None
    return parent, field


def _inner_model(annotation):
    """The pydantic model inside ``annotation`` (``Model``, ``list[Model]``, ``Model | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _accepted(field, item: dict) -> str:
    if field is None:
        return _plain(item["msg"])
    inner = _inner_model(field.annotation) if item["type"] == "model_type" else None
    if inner is not None:  # a list or a text where a section goes; not pydantic's class name
        return f"a mapping of settings (keys: {', '.join(inner.model_fields)})"
    if field.description:
        return field.description
    bounds = {}
    for rule in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(rule, name, None) is not None:
                bounds[name] = getattr(rule, name)
    annotation = field.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = type(None) in typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    base = args[0] if optional and len(args) == 1 else annotation
    kind = {int: "an integer", float: "a number", bool: "true or false", str: "a text"}.get(base)
    if kind is None:
        return _plain(item["msg"])
    low = (
        f"from {bounds['ge']}"
        if "ge" in bounds
        else (f"above {bounds['gt']}" if "gt" in bounds else "")
    )
    high = (
        f"to {bounds['le']}"
        if "le" in bounds
        else (f"below {bounds['lt']}" if "lt" in bounds else "")
    )
    # "from 1 to 5", "above 0 and up to 5", "above 0 and below 1", "at least 1e-12 and below 0.5"
    if low and high and not (low.startswith("from") and high.startswith("to ")):
        low = low.replace("from ", "at least ", 1)
        high = "and " + ("up " if high.startswith("to ") else "") + high
    text = " ".join(part for part in (kind, low, high) if part)
    return text + (" (or null)" if optional else "")


def _plain(message: str) -> str:
    # pydantic's own wording ("Input should be ...") as the accepted part of our sentence.
    return re.sub(r"^Input should be\s+", "", message)


_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@\s]+@")


def _show(value: Any) -> str:
    """The value as found, short, with any URL's password masked."""
    text = _PASSWORD.sub(r"\1:***@", repr(value))
    return text if len(text) <= 80 else text[:77] + "..."
