"""What validation found: one :class:`Problem` per offending cell, grouped per check.

Validation works on whole columns, so findings are stored per check (column and rule) as
arrays of row positions and values. The per-row :class:`Problem` objects are built only when
asked for, which keeps a report about a million bad rows cheap to produce and to summarise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from recommender.errors import InputError

from ._contract import PRACTICE_START_AGE
from ._person_id import shown_id

__all__ = ["Problem", "ValidationReport", "RULES"]

# rule -> how a finding reads in a sentence. Tests and callers match on the rule name.
RULES: dict[str, str] = {
    "missing_column": "required column is missing",
    "unknown_column": "column is not part of the contract",
    "crisis_column_misnamed": "the crisis flag's column is not spelled crisis_risk",
    "missing_value": "missing value",
    "type": "wrong type",
    "not_integer": "not a whole number",
    "range": "out of range",
    "practice_too_early": f"practice begun before age {PRACTICE_START_AGE}",
    "category": "unknown category",
    "duplicate_id": "duplicate person_id",
    "id_length": "person_id length",
    "id_characters": "person_id character not accepted",
    "unknown_arm": "arm not in the catalog",
    "arm_too_small": "arm has too few rows",
    "arm_carried": "arm too small to learn: its published estimate is carried",
    "no_learnable_arm": "no arm besides the control has enough rows to learn",
    "no_control": "no row received the control arm",
    "no_treated_arm": "no row received an arm other than the control",
    "propensity_range": "propensity outside (0, 1]",
    "unused_arm": "catalog arm has no rows",
    "duplicate_column": "column name appears more than once",
    "empty_table": "table has no rows",
    "extra_levels": "categorical extra feature has too many distinct values",
    "extra_spelling": "categorical extra feature writes one value several ways",
    "constant_feature": "feature takes one value in every row",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a cohort table.

    Attributes
    ----------
    rule : str
        The contract rule broken, one of :data:`RULES` (``"range"``, ``"duplicate_id"`` ...).
    column : str or None
        The column concerned; None for table-level problems.
    row : int or None
        0-based row position in the table (a CSV's line number is ``row + 2``); None for
        column- or table-level problems.
    person_id : str or None
        The row's ``person_id`` when it has one.
    value : object
        The offending value as read (``"abc"``, ``61``); None when there is none.
    message : str
        A sentence saying where, what was found and what is accepted.
    severity : str
        ``"error"`` (the table is refused) or ``"note"`` (reported, not refused).
    """

    rule: str
    column: str | None
    row: int | None
    person_id: str | None
    value: object
    message: str
    severity: str = "error"


@dataclass(frozen=True)
class _Check:
    """All findings of one rule on one column (or one table-level finding)."""

    rule: str
    column: str | None
    accepted: str
    severity: str = "error"
    rows: np.ndarray | None = None  # 0-based positions, None for table-level findings
    values: np.ndarray | None = None
    person_ids: np.ndarray | None = None
    details: np.ndarray | None = None  # per-row extra words, e.g. "same as row 3" ("": none)
    summary: str = ""  # for table-level findings: the whole sentence
    table_value: object = None  # for table-level findings: the value concerned (an arm name)

    @property
    def count(self) -> int:
        return 1 if self.rows is None else len(self.rows)

    def row_message(self, i: int) -> str:
        where = _where(int(self.rows[i]), self._pid(i))
        detail = self._detail(i)
        return (
            f"{where}, column {self.column}: {RULES[self.rule]}: {_show(self.values[i])}"
            f"{detail}; accepted: {self.accepted}"
        )

    def _detail(self, i: int) -> str:
        return f" ({self.details[i]})" if self.details is not None and self.details[i] else ""

    def _pid(self, i: int) -> str | None:
        if self.person_ids is None:
            return None
        pid = self.person_ids[i]
        return None if _isna(pid) else str(pid)

    def problems(self) -> list[Problem]:
        if self.rows is None:
            return [
                Problem(
                    self.rule,
                    self.column,
                    None,
                    None,
                    self.table_value,
                    self.summary,
                    self.severity,
                )
            ]
        return [
            Problem(
                self.rule,
                self.column,
                int(self.rows[i]),
                self._pid(i),
                _plain(self.values[i]),
                self.row_message(i),
                self.severity,
            )
            for i in range(len(self.rows))
        ]


def _isna(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value):
    """numpy scalars to Python ones, so problems compare and serialise simply."""
    if _isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


_SHOWN = 40  # characters of a value or id shown in a message; an over-long id is the fault


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 10]}... ({len(text)} characters)"


def _show(value) -> str:
    value = _plain(value)
    if value is None:
        return "(empty)"
    return (
        repr(_clip(shown_id(value, edge_spaces=False)))
        if isinstance(value, str)
        else _clip(str(value))
    )


def _where(row: int, person_id: str | None) -> str:
    # Escaped: a bidirectional control in an id would make the whole line read otherwise.
    return f"row {row} (person {_clip(shown_id(person_id))})" if person_id else f"row {row}"


@dataclass
class ValidationReport:
    """Every problem found in one cohort table.

    Attributes
    ----------
    n_rows, n_columns : int
        Size of the table validated.
    training : bool
        Whether the training columns were required.
    arm_counts : dict
        Rows per arm when the table has an ``intervention`` column (training only).
    carried_arms : list of str
        Treatment arms too small to learn that training carries instead (only when validated
        with ``carry_small_arms``).
    """

    n_rows: int
    n_columns: int
    training: bool = False
    arm_counts: dict[str, int] = field(default_factory=dict)
    carried_arms: list[str] = field(default_factory=list)
    checks: list[_Check] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        """True when nothing of severity ``"error"`` was found (notes do not count)."""
        return not any(check.severity == "error" for check in self.checks)

    @property
    def n_errors(self) -> int:
        return sum(check.count for check in self.checks if check.severity == "error")

    @cached_property
    def problems(self) -> list[Problem]:
        """Every problem, one per offending cell, errors before notes."""
        ordered = sorted(self.checks, key=lambda c: c.severity != "error")
        return [problem for check in ordered for problem in check.problems()]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_frame(self) -> pd.DataFrame:
        """One row per problem: severity, rule, column, row, person_id, value, message."""
        columns = ["severity", "rule", "column", "row", "person_id", "value", "message"]
        frame = pd.DataFrame(
            [
                (p.severity, p.rule, p.column, p.row, p.person_id, p.value, p.message)
                for p in self.problems
            ],
            columns=columns,
        )
        frame["row"] = frame["row"].astype("Int64")
        return frame

    def counts(self) -> pd.DataFrame:
        """Problems per (severity, column, rule), in the order found."""
        return pd.DataFrame(
            [(c.severity, c.column, c.rule, c.count) for c in self.checks],
            columns=["severity", "column", "rule", "count"],
        )

    def summary_line(self) -> str:
        text = f"{self.n_rows:,} rows, {self.n_columns} columns"
        if self.arm_counts:
            arms = ", ".join(f"{arm} {n:,}" for arm, n in self.arm_counts.items())
            text += f"; arms: {arms}"
        return text

    def format(self, max_listed: int = 3) -> str:
        """A readable report: one line per (column, rule) with its count and first rows.

        Parameters
        ----------
        max_listed : int
            How many offending rows to show per check; the counts always cover all of them.
        """
        n_checks = sum(c.severity == "error" for c in self.checks)
        if self.ok:
            head = f"OK: {self.summary_line()}"
        else:
            head = (
                f"INVALID: {self.n_errors:,} problem{'s' * (self.n_errors != 1)} in "
                f"{n_checks} check{'s' * (n_checks != 1)}; "
                f"{self.summary_line()} (rows are 0-based; a CSV line is row + 2)"
            )
        lines = [head]
        for check in sorted(self.checks, key=lambda c: c.severity != "error"):
            label = "error" if check.severity == "error" else "note "
            lines.append(f"  {label} {_check_line(check, max_listed)}")
        return "\n".join(lines)

    def notes(self, max_listed: int = 3) -> list[str]:
        """One line per check of severity ``"note"`` (what is allowed but may be unintended:
        an arm of the catalog with no rows, one value written several ways), as :meth:`format`
        words it."""
        return [_check_line(c, max_listed) for c in self.checks if c.severity != "error"]

    def raise_if_invalid(self) -> None:
        """Raise :class:`~recommender.errors.InputError` carrying every problem, if any."""
        if not self.ok:
            raise InputError(self.format(), problems=self.errors)


def _check_line(check: _Check, max_listed: int) -> str:
    """``column [rule]: count rows <rule> (accepted: ...), first: ...`` of one check."""
    column = check.column or "table"
    if check.rows is None:
        return f"{column} [{check.rule}]: {check.summary}"
    noun = "row" if check.count == 1 else "rows"
    examples = "; ".join(
        f"{_where(int(check.rows[i]), check._pid(i))} value {_show(check.values[i])}"
        + check._detail(i)
        for i in range(min(max_listed, check.count))
    )
    more = check.count - min(max_listed, check.count)
    tail = f"; and {more:,} more" if more else ""
    return (
        f"{column} [{check.rule}]: {check.count:,} {noun} "
        f"{RULES[check.rule]} (accepted: {check.accepted}), first: {examples}{tail}"
    )
