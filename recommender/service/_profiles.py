"""What one served model takes as a profile: the data contract's fields and its extra features.

A model trained with ``extra_features`` (columns a program added to the data contract, see
:func:`recommender.cohort.feature_frame`) needs each of them for every person. Its feature schema
says what they are (numeric, or categorical with the values seen in training), so the request
model is built from it when the model is loaded, and a missing or mistyped extra feature is
refused at the edge, naming the field and what it accepts, like any other field.

A profile flagged ``crisis_risk`` is the exception: it never reaches the model and is always
answered with crisis resources. The service answers such a body on the crisis path
(:mod:`recommender.service._crisis`) whatever else it holds, so the front door lets it through;
a library caller validating rows here still gets them checked against the data contract's
fields only (extra features may be left out, and are ignored when sent).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, StrictFloat, StrictInt, TypeAdapter, ValidationError, create_model

from recommender.cohort import PROFILE_COLUMNS
from recommender.errors import InputError
from recommender.service._problems import problems_from
from recommender.service._requests import PROFILE_FIELDS, ProfileRequest, profile_list_adapter

__all__ = ["ExtraFeature", "ProfileSchema", "extra_features", "profile_schema"]

_MAX_LISTED_LEVELS = 50


@dataclass(frozen=True)
class ExtraFeature:
    """A feature a model was trained on beyond the data contract's profile columns.

    Attributes
    ----------
    name : str
        The column name, which is also the request field's name.
    levels : tuple of str, or None
        The values seen in training, for a categorical feature; None for a numeric one.
    integer : bool
        A numeric feature fitted as whole numbers.
    """

    name: str
    levels: tuple[str, ...] | None = None
    integer: bool = False

    @classmethod
    def from_schema(cls, entry: Mapping) -> ExtraFeature:
        """From one entry of a model's feature schema (:func:`recommender.model.feature_schema`)."""
        if entry["kind"] == "category":
            return cls(str(entry["name"]), levels=tuple(str(c) for c in entry["categories"]))
        return cls(str(entry["name"]), integer=entry["kind"] == "integer")

    @property
    def accepted(self) -> str:
        if self.levels is None:
            return "a whole number" if self.integer else "a finite number"
        shown = ", ".join(self.levels[:_MAX_LISTED_LEVELS])
        more = len(self.levels) - _MAX_LISTED_LEVELS
        return (
            "one of "
            + shown
            + (f" and {more} more" if more > 0 else "")
            + " (the values the served model was trained on)"
        )

    def field(self):
        """The pydantic field: required, and strict (a string or true is not a number)."""
        if self.levels is not None:
            kind, example = Literal[self.levels], self.levels[0]
        elif self.integer:
            kind, example = StrictInt, 0
        else:
            kind, example = Annotated[StrictFloat, Field(allow_inf_nan=False)], 0.0
        # The alias is the column name: any text, even one Python could not name a field.
        return (
            kind,
            Field(
                alias=self.name,
                examples=[example],
                description=f"Extra feature of the served model. Accepted: {self.accepted}.",
            ),
        )


def extra_features(schema: Sequence[Mapping]) -> tuple[ExtraFeature, ...]:
    """The features of a model's schema that are not profile columns of the data contract."""
    return tuple(
        ExtraFeature.from_schema(entry) for entry in schema if entry["name"] not in PROFILE_COLUMNS
    )


class ProfileSchema:
    """The profile one served model takes: the data contract's fields, then its extra features.

    For a model without extra features this is :data:`ProfileRequest` itself. Rows come out as
    plain dicts keyed by field name (extra features by their column names).

    Parameters
    ----------
    extras : tuple of ExtraFeature

    Raises
    ------
    InputError
        When an extra feature has the name of a request field (``offered``, ``crisis_risk``).
    """

    def __init__(self, extras: tuple[ExtraFeature, ...] = ()):
        self._extra_names = frozenset(x.name for x in extras)
        clash = [x.name for x in extras if x.name in PROFILE_FIELDS]
        if clash:
            raise InputError(
                f"the model's extra feature(s) {clash} have the name of a request "
                f"field; it cannot be served (request fields: "
                f"{', '.join(PROFILE_FIELDS)})"
            )
        self.extras = extras
        self.fields = PROFILE_FIELDS + tuple(x.name for x in extras)
        self.accepted = {x.name: x.accepted for x in extras}
        self.model = (
            ProfileRequest
            if not extras
            else create_model(
                "ProfileRequest",
                __base__=ProfileRequest,
                __doc__=ProfileRequest.__doc__,
                **{f"extra_{i}": x.field() for i, x in enumerate(extras)},
            )
        )

    @functools.cached_property
    def _many(self) -> TypeAdapter:
        return profile_list_adapter() if not self.extras else TypeAdapter(list[self.model])

    @property
    def front_door(self):
        """What the service's front door checks a ``/recommend`` body with (its
        ``model_validate_json``): :attr:`model`, but a crisis flag needs nothing else."""
        return _FrontDoor(self)

    def validate(self, raw) -> dict:
        """One checked row; raises pydantic's ValidationError (see :meth:`problems`).

        A row flagged ``crisis_risk`` is checked against the data contract's fields only (see
        the module's docstring) and comes out without extra features.
        """
        try:
            return self.model.model_validate(raw).model_dump(by_alias=True)
        except ValidationError:
            if not self.crisis_flagged(raw):
                raise
        return self.contract_only(raw)

    def crisis_flagged(self, raw) -> bool:
        """Is ``raw`` (a request body) flagged ``crisis_risk``, read as every route reads it?

        Only asked of a model with extra features: without them every field is the contract's.
        """
        from recommender.service._crisis import crisis_flagged

        return bool(self.extras) and crisis_flagged(raw)

    def contract_only(self, raw: Mapping) -> dict:
        """``raw`` checked against the data contract's fields alone, extra features dropped
        (the row of a crisis flag); raises ValidationError naming contract fields only."""
        kept = {k: v for k, v in raw.items() if k not in self._extra_names}
        return ProfileRequest.model_validate(kept).model_dump()

    def validate_many(self, raws: Sequence) -> list[dict]:
        """Checked rows, in one pydantic call; raises ValidationError."""
        return [row.model_dump(by_alias=True) for row in self._many.validate_python(raws)]

    def problems(self, error: ValidationError, *, prefix: str = "") -> list[dict]:
        """The problems of a failed :meth:`validate` (see :func:`problems_from`)."""
        return problems_from(error, prefix=prefix, known=self.fields, accepted=self.accepted)


class _FrontDoor:
    # Quacks like a pydantic model for recommender.service._gate.Gate, which calls
    # model_validate_json(body) and turns a ValidationError into problems.
    def __init__(self, schema: ProfileSchema):
        self.schema = schema

    def model_validate_json(self, body):
        try:
            return self.schema.model.model_validate_json(body)
        except ValidationError as error:
            refused = error
        if any(problem["type"] == "json_invalid" for problem in refused.errors()):
            # Not JSON as the request models read it (UTF-16, a byte-order mark), however
            # Python's parser reads it: its flag is looked for in its text (a 400).
            raise refused
        try:
            raw = json.loads(body)
        except ValueError:
            raise refused from None
        from recommender.service._crisis import crisis_flagged

        # A crisis flag is answered whatever else the body holds (recommender.service._crisis).
        if not crisis_flagged(raw):
            raise refused
        return raw


@functools.cache
def profile_schema(extras: tuple[ExtraFeature, ...] = ()) -> ProfileSchema:
    """The :class:`ProfileSchema` for these extra features (built once per set)."""
    return ProfileSchema(extras)
