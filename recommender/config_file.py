"""The one reader of hand-edited YAML config files (train.yaml, serve.yaml, the catalog, scenarios).

``yaml.safe_load`` takes what a hand edit produces and reads it as something else without a
word: a key written twice keeps its last value, ``no`` and ``off`` become false, ``010`` is 8
(octal), ``2e4`` and ``1e-3`` are texts, ``1:30`` is 90, a date becomes a ``datetime.date``, and
a few lines of anchors and aliases expand to billions of values. :func:`read_config` reads with
rules that say what was written or refuse it, naming the file, the line and the key:

- a key twice in one mapping is refused (a ``<<`` merge's keys may still be overridden);
- numbers are read as written: ``2e4`` and ``1e-3`` are numbers, ``0o10`` and ``0x1f`` octal
  and hex, ``1_000`` a thousand; ``1:30`` and dates stay texts;
- ``true``/``false`` are the booleans;
- a plain ``yes``, ``no``, ``on`` or ``off`` (a boolean to YAML 1.1, a text to YAML 1.2) and a
  number with a leading zero (``010``: octal to YAML 1.1, ten to YAML 1.2, a text to whoever
  wrote the phone number ``0800111222``) are refused: the writer says which by writing
  ``false`` or ``10``, or the text in quotes;
- the file is UTF-8 (a byte-order mark is allowed), at most :data:`MAX_BYTES`, a mapping
  expanding to at most :data:`MAX_VALUES` values, and not empty.

What a mapping's keys and values must be is each reader's own check (pydantic sections in
:mod:`recommender.settings`, the catalog's and the scenario's tables).

A relative path written in a config file names a place beside that file, wherever the command
runs from (:func:`beside`): a program's configs kept with their models folder, catalog or
scenarios mean the same from any working folder. A file the config reads is also looked for
where earlier releases looked (the working folder, or the configs folder for a catalog) when
there is none beside it (:func:`read_beside`). A path from the environment or the command line
is the caller's, read from the working folder as ever.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from recommender.errors import InputError

__all__ = ["read_config", "ConfigMapping", "beside", "read_beside", "MAX_BYTES", "MAX_VALUES"]

# The shipped catalog is 55 kB; a config a hundred times larger is not one written by hand.
MAX_BYTES = 5_000_000
# Values once anchors are expanded; the shipped catalog has about 2,000.
MAX_VALUES = 200_000

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# Plain scalars that YAML 1.1 and 1.2 read differently, refused so that the writer picks.
_YES_NO = "tag:recommender,2026:yes-no"
_LEADING_ZERO = "tag:recommender,2026:leading-zero"
_AMBIGUOUS = {
    _YES_NO: "write true or false for a yes/no setting, or {text} in quotes for the text",
    _LEADING_ZERO: "write the number without its leading zero, or {text} in quotes for a text "
    "(a phone number, a code)",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's reading of plain scalars (numbers, booleans, no dates)."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern) for tag, pattern in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    _YES_NO, re.compile(r"^(?:yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF)$"), list("yYnNoO")
)
_Loader.add_implicit_resolver(_LEADING_ZERO, re.compile(r"^[-+]?0[0-9_]+$"), list("-+0"))
_Loader.add_implicit_resolver(
    _INT,
    re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


def _construct_int(loader: _Loader, node: ScalarNode) -> int:
    text = str(node.value).replace("_", "")
    try:
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)
    except ValueError:  # an explicit !!int on something else
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a whole number", node.start_mark
        ) from None


def _ambiguity(node: ScalarNode) -> str:
    one, other = (
        ("true/false", "a text")
        if node.tag == _YES_NO
        else ("an octal number", "a decimal one or a text")
    )
    return (
        f"{node.value} is read as {one} by some YAML readers and as {other} by others; "
        + _AMBIGUOUS[node.tag].format(text=f'"{node.value}"')
    )


def _refuse_ambiguous(loader: _Loader, node: ScalarNode):
    # Values are refused with their key by _check_nodes; this is a key written so.
    raise yaml.constructor.ConstructorError(None, None, _ambiguity(node), node.start_mark)


_Loader.add_constructor(_INT, _construct_int)
for _tag in _AMBIGUOUS:
    _Loader.add_constructor(_tag, _refuse_ambiguous)


# The same rules over libyaml's parser (PyYAML's C extension, in its wheels), about nine times
# faster: the 55 kB catalog takes 7 ms instead of 60, and every worker, command, test and reload
# reads it. A file with a tab, or one libyaml refuses, is read again by _Loader, so that every
# refusal and its message stay PyYAML's own. The two read valid files alike (the same values and
# lines: tests/test_config_reader_dec07e.py); a fuzz of 3,000 edited configs found one corner
# where libyaml is the more lenient: a `?` inside a plain text within {...} is read as written
# (as YAML 1.2 reads it), where PyYAML refused it.
_FastLoader = None
if getattr(yaml, "__with_libyaml__", False):

    class _FastLoader(yaml.CSafeLoader):
        """_Loader's resolvers and constructors over libyaml's parser."""

    _FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
    _FastLoader.yaml_constructors = _Loader.yaml_constructors


class ConfigMapping(dict):
    """A config file's top-level mapping, with the line each key was written on.

    ``lines`` maps a dotted key (``evaluation.alpha``, ``arms[1].capacity``) to its line, so
    that a reader refusing a value can say where it is (:meth:`line`).
    """

    lines: dict[str, int]

    def line(self, dotted: str) -> int | None:
        """The line of ``dotted`` in the file (``None`` for a key it does not hold)."""
        return getattr(self, "lines", {}).get(dotted)


def read_config(path, *, what: str) -> ConfigMapping:
    """The mapping a YAML config file holds, read by the rules above.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file is, for messages (``"training config"``, ``"catalog"``).

    Returns
    -------
    ConfigMapping
        The file's top-level mapping, with the line of each key.

    Raises
    ------
    InputError
        Naming the file, the line and key where it can, the value and what is accepted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "train.yaml"
    >>> _ = path.write_text("n: 2e4\\nalpha: 0.1\\nalpha: 0.5\\n")
    >>> read_config(path, what="training config")
    Traceback (most recent call last):
    ...
    recommender.errors.InputError: training config ...train.yaml: line 3: alpha is given twice (also line 2); keep one
    """
    path = Path(path)
    where = f"{what} {path}"
    text = _text(path, where)
    node = None
    if _FastLoader is not None and "\t" not in text:
        try:
            node, lines, data = _read(_FastLoader(text), where)
        except (yaml.YAMLError, RecursionError):  # read again below, for PyYAML's own message
            node = None
    if node is None:
        try:
            node, lines, data = _read(_Loader(text), where)
        except yaml.YAMLError as error:
            raise InputError(f"{where}: {_yaml_problem(error)}") from None
        except RecursionError:
            raise InputError(
                f"{where}: lists or mappings nested too deeply to read; accepted: a config "
                "nested a few levels, as the shipped ones are"
            ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{where}: the file holds {_kind(data)}, not settings; accepted: a mapping of "
            "`key: value` lines"
        )
    mapping = ConfigMapping(data)
    mapping.lines = lines
    return mapping


def _read(loader, where: str):
    """``(root node, line of each key, data)`` of the text ``loader`` holds; YAML's errors are
    raised as they are, the rules' refusals as :class:`InputError`."""
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError(
                f"{where} is empty (or holds only comments); give its settings (the shipped "
                "configs/ folder has an example of each file)"
            )
        lines = _check_nodes(node, where)
        return node, lines, loader.construct_document(node)
    finally:
        loader.dispose()


def _text(path: Path, where: str) -> str:
    """The file's text, refused when it is not a readable UTF-8 file of a config's size."""
    if path.is_dir():
        raise InputError(f"{where} is a folder; give the path of a YAML file")
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(
                f"{where} is {size:,} bytes; accepted: a config of at most {MAX_BYTES:,} bytes"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{where} does not exist") from None
    except OSError as error:  # a file this user may not read, a dangling link
        raise InputError(
            f"{where} cannot be read ({error.strerror}); give a readable YAML file"
        ) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{where} is UTF-16 text; save it as UTF-8")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (Windows Notepad) is no setting
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise InputError(
            f"{where}: line {line} is not UTF-8 text (byte 0x{data[error.start]:02x}, as "
            "Windows-1252 or Latin-1 write an accented letter); save the file as UTF-8"
        ) from None


def _check_nodes(root, where: str) -> dict[str, int]:
    """Refuse a key twice in one mapping, and anchors expanding past :data:`MAX_VALUES`;
    returns the line of each dotted key and list item (where first written, for an alias)."""
    sizes: dict[int, int] = {}  # values under a node, anchors expanded (each node counted once)
    open_nodes: set[int] = set()
    lines: dict[str, int] = {}

    def walk(node, dotted: str) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise InputError(
                f"{where}: line {node.start_mark.line + 1}: {dotted or 'the top level'} holds an "
                "alias of itself; accepted: anchors of values outside the one they are used in"
            )
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, ScalarNode) and node.tag in _AMBIGUOUS:
            raise InputError(
                f"{where}: line {node.start_mark.line + 1}: {dotted or 'the file'} = "
                f"{_ambiguity(node)}"
            )
        if isinstance(node, MappingNode):
            keys: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == _MERGE:  # merged keys may be overridden: that is what << is for
                    total += walk(value, dotted)
                    continue
                name = key.value if isinstance(key, ScalarNode) else "(a key)"
                line = key.start_mark.line + 1
                inner = f"{dotted}.{name}" if dotted else str(name)
                if isinstance(key, ScalarNode) and name in keys:
                    raise InputError(
                        f"{where}: line {line}: {inner} is given twice (also line "
                        f"{keys[name]}); keep one"
                    )
                keys[name] = line
                lines.setdefault(inner, line)
                total += walk(value, inner)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                lines.setdefault(f"{dotted}[{index}]", item.start_mark.line + 1)
                total += walk(item, f"{dotted}[{index}]")
        if total > MAX_VALUES:
            raise InputError(
                f"{where}: line {node.start_mark.line + 1}: {dotted or 'the file'} expands to "
                f"more than {MAX_VALUES:,} values (anchors and aliases repeat what they name); "
                f"accepted: a config of at most {MAX_VALUES:,} values"
            )
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    walk(root, "")
    return lines


def _yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's error as one line: where, what, and for a tab what to do."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if "'\\t'" in problem:
        problem = "a tab; YAML indents with spaces only: replace the tab with spaces"
    context = getattr(error, "context", None)
    context_mark = getattr(error, "context_mark", None)
    if context and context_mark is not None and mark is not None:
        problem += f" ({context} at line {context_mark.line + 1})"
    at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"not valid YAML: {at}{problem}"


def _kind(data) -> str:
    if isinstance(data, list):
        return "a list"
    if isinstance(data, str):
        return f"one text ({len(data):,} characters)"
    return f"one value ({type(data).__name__})"


def beside(value, config_file) -> Path:
    """The place a path written in ``config_file`` names: as written when absolute, else
    beside that file.

    >>> beside("../models", "/srv/program/configs/serve.yaml")
    PosixPath('/srv/program/configs/../models')
    >>> beside("/var/lib/models", "configs/serve.yaml")
    PosixPath('/var/lib/models')
    """
    path = Path(value)
    return path if path.is_absolute() else Path(config_file).absolute().parent / path


def read_beside(value: str, config_file, earlier: Path) -> str:
    """The file a config reads, named ``value`` in ``config_file``: ``value`` unchanged when
    absolute, when nothing of that name is beside the config, or when what is beside it is
    the file ``earlier / value`` (where earlier releases read it, kept as written so that a
    config that trained alike still does); else the absolute path of the file beside it."""
    found = beside(value, config_file)
    if Path(value).is_absolute() or not found.is_file():
        return value
    before = earlier / value
    if before.is_file() and (before.samefile(found) or before.read_bytes() == found.read_bytes()):
        return value
    return str(found)
