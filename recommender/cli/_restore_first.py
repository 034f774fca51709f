"""What a command that opens the models folder does first over a restore killed there: the one
place the CLI looks, before the command reads anything (see :mod:`recommender._restore_swap`
for what is done and why)."""

from __future__ import annotations

from pathlib import Path

from recommender.errors import InputError

__all__ = ["settle_models_folders"]


def settle_models_folders(args) -> None:
    """Finish (or, for ``serve``, refuse) a restore killed in the folders the command opens,
    saying on stderr what was done; nothing for a command that opens none."""
    kind = args._models_folder
    if callable(kind):
        kind = kind(args)
    if kind is None:
        return
    import sys

    from recommender._restore_swap import settle_interrupted_restore

    command = " ".join(filter(None, (args.command, getattr(args, "action", None))))
    for folder in _models_folders(getattr(args, args._serve_config_option, None)):
        for line in settle_interrupted_restore(folder, command=command, finish=kind != "serves"):
            print(f"recovered: {line}", file=sys.stderr)


def _models_folders(serve_config) -> list[Path]:
    """The models folder (``RECOMMENDER_HOME`` ...: the registry's) and the one the service's
    settings name (the audit store's; where ``backup --restore`` keeps its journal), once each."""
    from recommender.paths import models_dir
    from recommender.service._config import load_serve_config

    folders = [models_dir()]
    try:
        folders.append(load_serve_config(serve_config).models_dir)
    except (InputError, OSError):
        pass  # a serve.yaml that cannot be read names no folder; a command reading it says why
    return list(dict.fromkeys(Path(folder).resolve() for folder in folders))
