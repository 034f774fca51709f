"""The ``recommender`` command.

Each subcommand is a module ``recommender/cli/cmd_<name>.py`` that defines

- ``HELP``: one line for ``recommender --help``;
- ``configure(parser)``: adds its arguments to an ``argparse`` parser;
- ``run(args) -> int``: calls one pipeline or library function and returns the exit code;
- ``answer_refused(options, refusal) -> str`` (a command that reads a cohort file and answers
  its crisis-flagged rows): what to say of an option argparse refuses, once those rows have
  their resources; ``options`` holds the arguments as given, unchecked.
- ``INTERRUPTED`` (a command that writes to a store): what Ctrl-C or ``kill`` leaves, said
  after ``interrupted:``; a command that knows more at the time sets ``left`` on the
  KeyboardInterrupt it re-raises. Without either, the command writes only files, whole.
- ``MODELS_FOLDER`` (a command that opens the models folder's stores): ``"reads"``,
  ``"writes"`` or ``"serves"``, or a function of the arguments saying which. Before ``run``, a
  restore killed in that folder is finished, or refused by ``serve``
  (:mod:`recommender.cli._restore_first`); the folders are the models folder and the one the
  service's settings name: the command's ``--serve-config``, or the option
  ``SERVE_CONFIG_OPTION`` names (``"config"``: its ``--config`` is the service's), or a
  function of the arguments giving the file (a command reading ``train.yaml``: the one its
  ``log.serve_config`` names).
- ``EXIT_UNCOLLECTED`` (``True``: a command that holds nothing open once ``run`` returns): the
  process, when it runs the command line (not a caller's ``main(argv)``), ends without the
  interpreter's collection of its objects at exit (:func:`main`).

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
from recommender.cli._restore_first import settle_models_folders
from recommender.errors import InputError, ModelUnavailable

__all__ = ["main", "build_parser"]


def _command_modules():
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            yield (
                info.name[4:].replace("_", "-"),
                importlib.import_module(f"{__name__}.{info.name}"),
            )


def _keeps_one_value(action) -> bool:
    """Whether ``action`` keeps one value, the last given (a plain ``store`` option), rather
    than none (a flag) or all of them (``append``): tried on a scratch namespace, since
    argparse names its action kinds only privately."""
    if action is None or action.nargs is not None or not action.option_strings:
        return False
    probe = argparse.Namespace(**{action.dest: None})
    action(None, probe, "first")
    action(None, probe, "second")
    return getattr(probe, action.dest) == "second"


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser. An argument it refuses (``--budget -5``, ``--alpha abc``, an
    unknown option) is said as argparse says it, exit 2, but first the command's
    ``answer_refused`` gives the crisis-flagged rows of its cohort file their resources, as
    every refusal once the file is read does: a malformed option never withholds them."""

    answer_refused = None  # the command module's, when it has one
    configure = None

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)
        options, extras = super().parse_known_args(args, namespace)
        if extras and self.answer_refused is not None:
            # said here, not by the top parser, so that the crisis rows are answered first
            self.error("unrecognized arguments: " + " ".join(extras))
        repeated = self._repeated(self._given)
        if repeated:
            self.error(repeated)
        return options, extras

    def _repeated(self, given: list[str]) -> str | None:
        """The refusal of a one-value option given twice with different values (``--seed 7
        ... --seed 8``): argparse keeps the last and drops the other unsaid, as YAML does with
        a key written twice, which the config reader refuses for the same reason."""
        seen: dict[argparse.Action, tuple[str, str]] = {}
        tokens = iter(given)
        for token in tokens:
            if token == "--":
                break
            name, equals, value = token.partition("=")
            action = self._option_string_actions.get(name)
            if action is None and name.startswith("--"):
                # argparse takes an unambiguous prefix (--se for --seed)
                matches = {a for o, a in self._option_string_actions.items() if o.startswith(name)}
                action = matches.pop() if len(matches) == 1 else None
            if not _keeps_one_value(action):
                continue
            if not equals:
                value = next(tokens, "")
            if action in seen and seen[action][1] != value:
                first, earlier = seen[action]
                return (
                    f"argument {'/'.join(action.option_strings)}: given twice, "
                    f"{first} {earlier!r} and {name} {value!r}; give it once"
                )
            seen.setdefault(action, (name, value))
        return None

    def error(self, message):
        if self.answer_refused is not None:
            options = _as_given(self.configure, self._given)
            if options is not None:
                message = self.answer_refused(options, message)
        super().error(message)


class _Unparsed(Exception):
    pass


class _AsGiven(argparse.ArgumentParser):
    """A command's arguments as given: no type, choice or requirement checked."""

    def add_argument(self, *names, **kwargs):
        for check in ("type", "choices", "required"):
            kwargs.pop(check, None)
        return super().add_argument(*names, **kwargs)

    def error(self, message):
        raise _Unparsed(message)


def _as_given(configure, given: list[str]):
    """The arguments ``given`` to a command configured by ``configure``, unchecked; None when
    even so they cannot be read (an option without its value, say)."""
    parser = _AsGiven(add_help=False)
    configure(parser)
    try:
        return parser.parse_known_args(given)[0]
    except _Unparsed:
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recommender",
        description="Recommend clinician-wellness interventions from multi-arm uplift models.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_CommandParser
    )
    for name, module in _command_modules():
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        sub.answer_refused = getattr(module, "answer_refused", None)
        sub.configure = module.configure
        module.configure(sub)
        sub.set_defaults(
            _run=module.run,
            _interrupted=getattr(module, "INTERRUPTED", _FILES_LEFT),
            _models_folder=getattr(module, "MODELS_FOLDER", None),
            _serve_config_option=getattr(module, "SERVE_CONFIG_OPTION", "serve_config"),
            _exit_uncollected=getattr(module, "EXIT_UNCOLLECTED", False),
        )
    return parser


# What a command that writes only files leaves when stopped: each is written to a temporary
# sibling and renamed into place (recommender._files).
_FILES_LEFT = "no file was left half-written (an earlier one stays as it was); run it again"


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
    code = _main(args)
    if argv is None and args._exit_uncollected:
        # The interpreter's teardown collected the command's ~300,000 objects (MLflow's,
        # SQLAlchemy's, pandas') cycle by cycle as it cleared the modules: over a second of CPU
        # after `recommender serve`'s server had stopped, and seconds of a test's teardown.
        # Frozen, they are freed by reference counts only; nothing of the command is open.
        import gc

        gc.freeze()
    return code


def _main(args) -> int:
    try:
        with _terminate_as_interrupt():
            # never a half-restored models folder: finished (or refused) before it is read
            settle_models_folders(args)
            return int(args._run(args) or 0)
    except (InputError, ModelUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        # One line, no traceback: what stopped, and what it left (the command says, or its
        # module's INTERRUPTED does).
        terminated = isinstance(interrupt, _Terminated)
        left = getattr(interrupt, "left", None) or args._interrupted
        stopped = "terminated (SIGTERM)" if terminated else "interrupted (SIGINT)"
        command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
        print(f"{stopped}: recommender {command} stopped; {left}", file=sys.stderr)
        return 128 + signal.SIGTERM if terminated else 130
    except BrokenPipeError:
        # `recommender validate big.csv | head`: the reader left; that is not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # what a shell reports for a command ended by SIGPIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
