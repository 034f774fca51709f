"""What a command that opens the models folder does first over a restore killed there.

``recommender backup --restore`` keeps a journal in the models folder while it puts a backup in
place, and a restore killed by ``kill -9`` leaves it there, the folder perhaps part restored
(see :mod:`recommender._restore_swap`). The CLI looks for it in one place,
:func:`settle_models_folders`, before a command whose module says ``MODELS_FOLDER`` (see
:mod:`recommender.cli`) reads anything, in the folders that command opens: the models folder
(``RECOMMENDER_HOME`` ...: the registry's) and the one the service's settings name (the audit
store's, where the restore keeps its journal), those the command itself reads: for ``train``
and ``evaluate-policy`` the serve.yaml their training config's ``log.serve_config`` names.
What each command does, and why:

* ``recommender serve`` refuses to start while a journal is there (and so does a plain
  ``bentoml serve``: :func:`~recommender.service.check_before_serving`). The service does not
  change the folder it is pointed at: it is started by scripts and containers (replicas,
  restarts in a loop) where nobody reads what was done; the refusal says what to run instead.
* Every other command, those that write (``train``, ``promote``, ``rollback``, ``outcomes
  import``, ``audit erase``, ``backup``) and those that read (``champions``, ``card``,
  ``score``, ``allocate``, ``batch-score``, ``evaluate-policy``, ``audit export``), finishes or
  undoes the restore first and says so on stderr (``recovered: ...``). A writer must: what it
  wrote into a part-restored folder would be moved aside by a later finish, or mixed with the
  backup's files. A reader may as well: finishing is deterministic and idempotent by the
  journal (the outcome is the same whoever runs it, and twice is once), as ``champions``
  already completes a promotion stopped midway before it reads; refusing would only ask the
  operator to run a command that does exactly this. A reader that may not write the folder is
  refused, naming what to run. So no command reads a half-restored folder.
* Every one of them refuses, doing nothing, while the restore still runs or while a process
  holds open a store it would rename (:func:`~recommender._restore_swap.finish_interrupted_restore`).
"""

from __future__ import annotations

from pathlib import Path

from recommender.errors import InputError

__all__ = ["settle_models_folders", "serve_config_of_training"]


def settle_models_folders(args) -> None:
    """Finish (or, for ``serve``, refuse) a restore killed in the folders the command opens,
    saying on stderr what was done; nothing for a command that opens none.

    Raises
    ------
    InputError
        From ``serve``; a restore still running, a store held open, a folder this user may not
        write: what to run instead, and that nothing was read there.
    """
    kind = args._models_folder
    if callable(kind):
        kind = kind(args)
    if kind is None:
        return
    import sys

    command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
    option = args._serve_config_option
    serve_config = option(args) if callable(option) else getattr(args, option, None)
    for folder in _models_folders(serve_config):
        for line in _settled(folder, command=command, finish=kind != "serves"):
            print(f"recovered: {line}", file=sys.stderr)


def _settled(models_dir, *, command: str, finish: bool) -> list[str]:
    """With ``finish``, finish or undo a restore killed in ``models_dir`` and return what was
    done; without, refuse while its journal is there. No journal: nothing, after one look."""
    from recommender._restore_swap import (
        JOURNAL,
        finish_interrupted_restore,
        refuse_interrupted_restore,
    )

    models = Path(models_dir).resolve()
    if not (models / JOURNAL).exists():
        return []
    if not finish:
        refuse_interrupted_restore(models)
    try:
        # not sweeping the folder for copies a restore from before the journal left: backup's
        return finish_interrupted_restore(models, sweep=False)
    except OSError as error:
        # the journal stays: what was done is redone or skipped by the next run
        raise InputError(
            f"{models / JOURNAL}: a restore into this models folder was stopped midway "
            f"(killed) and the folder may be part restored; `recommender {command}` could not "
            f"finish it ({error.strerror or error}: {error.filename or models}) and read "
            "nothing there: run `recommender backup --restore DIR` again (or any `recommender "
            f"backup`) as a user that may write {models}"
        ) from None


def serve_config_of_training(args):
    """The service's settings a command reading ``train.yaml`` follows, as it follows them:
    its ``--serve-config``, else the file the training config's ``log.serve_config`` names
    (read beside it, as :func:`pipelines.train.load_config` reads it), else None (the
    environment's, else the default). A command module's ``SERVE_CONFIG_OPTION``."""
    if args.serve_config:
        return args.serve_config
    from pipelines.train import load_config

    try:
        return load_config(args.config)["log"]["serve_config"]
    except (InputError, OSError):
        # a training config that cannot be read names no folder; the command says why
        return None


def _models_folders(serve_config) -> list[Path]:
    """The models folder and the one the service's settings name, once each."""
    from recommender.paths import models_dir
    from recommender.service import load_serve_config

    folders = [models_dir()]
    try:
        folders.append(load_serve_config(serve_config).models_dir)
    except (InputError, OSError):
        pass  # a serve.yaml that cannot be read names no folder; a command reading it says why
    return list(dict.fromkeys(Path(folder).resolve() for folder in folders))
