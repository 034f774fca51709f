"""The numeric options of every command, read one way: a value that is not accepted is refused
by argparse as ``argument --partitions: '0' is not accepted; accepted: a whole number >= 1``,
naming the option as typed and what it takes, never Python's ``invalid int value`` or a
library's ``partitions must ...``. A command that reads a cohort file still answers its crisis
rows before the refusal (``recommender.cli``)."""

from __future__ import annotations

import argparse
import math

from recommender.levels import ALPHA_ACCEPTED, alpha_accepted

__all__ = ["ALPHA_ACCEPTED", "alpha", "number", "simulator_whole_number", "whole", "whole_number"]


def number(ok, accepted: str):
    """An argparse type: a finite number for which ``ok`` holds, else argparse names the option
    ("argument --budget: ...") and what it accepts, at once rather than once the model is loaded."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"{text!r} is not accepted; accepted: {accepted}")
        return value

    return parse


def whole(text) -> int | None:
    """``text`` as a whole number (``20000``, ``1_000_000``, ``20,000``, ``2e4``), or None."""
    cleaned = str(text).replace("_", "").replace(",", "").strip()
    try:
        value = float(cleaned) if ("e" in cleaned.lower() or "." in cleaned) else int(cleaned)
        number_ = int(value)  # OverflowError for '1e400' (inf), ValueError for 'nan'
    except (ValueError, OverflowError):
        return None
    return number_ if value == number_ else None


def whole_number(*, minimum: int, maximum: int | None = None, accepted: str | None = None):
    """An argparse type: a whole number from ``minimum`` (to ``maximum``), else refused as
    :func:`number` refuses, saying ``accepted`` (default: the range in words)."""
    if accepted is None:
        accepted = f"a whole number >= {minimum}" + (
            "" if maximum is None else f" and <= {maximum:,}"
        )

    def parse(text: str) -> int:
        value = whole(text)
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{text!r} is not accepted; accepted: {accepted}")
        return value

    return parse


def simulator_whole_number(limit: str, *, minimum: int):
    """An argparse type for ``--n`` (``limit="people"``) or ``--seed`` (``"seed"``): a whole
    number from ``minimum`` to the simulator's limit, refused as every numeric option is
    (``argument --seed: '-1' is not accepted; accepted: ...``). The limit is read when a value
    is parsed, so building the parser does not import the simulator."""

    def parse(text: str) -> int:
        from recommender.simulate import MAX_PEOPLE, MAX_SEED

        maximum = {"people": MAX_PEOPLE, "seed": MAX_SEED}[limit]
        return whole_number(minimum=minimum, maximum=maximum)(text)

    return parse


alpha = number(alpha_accepted, ALPHA_ACCEPTED)
