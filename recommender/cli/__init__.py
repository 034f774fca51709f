"""The ``recommender`` command.

Each subcommand is a module ``recommender/cli/cmd_<name>.py`` that defines

- ``HELP``: one line for ``recommender --help``;
- ``configure(parser)``: adds its arguments to an ``argparse`` parser;
- ``run(args) -> int``: calls one pipeline or library function and returns the exit code.

Modules are discovered, so adding a subcommand touches no shared file. Heavy imports belong
inside ``run`` so that ``recommender --help`` stays instant. An :class:`~recommender.errors.InputError`
raised anywhere becomes a message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import pkgutil
import signal
import sys
import threading

from recommender import __version__
from recommender.errors import InputError, ModelUnavailable

__all__ = ["main", "build_parser"]


def _command_modules():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            yield (
                info.name[4:].replace("_", "-"),
                importlib.import_module(f"{__name__}.{info.name}"),
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recommender",
        description="Recommend clinician-wellness interventions from multi-arm uplift models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in _command_modules():
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(sub)
        sub.set_defaults(_run=module.run)
    return parser


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a plain ``kill``), raised like Ctrl-C so that the same clean-up runs."""


@contextlib.contextmanager
def _terminate_as_interrupt():
    # Without this a `kill` ends the process at once: a training run stays RUNNING in MLflow,
    # and a version caught mid-registration keeps its aliases without its card or log entry.
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _terminate_as_interrupt():
            return int(args._run(args) or 0)
    except (InputError, ModelUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        terminated = isinstance(interrupt, _Terminated)
        print("terminated" if terminated else "interrupted", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130
    except BrokenPipeError:
        # `recommender validate big.csv | head`: the reader left; that is not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
