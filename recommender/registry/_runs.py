"""A training run in MLflow, and the all-or-nothing registration that ends it.

Everything a run logs before registration is harmless if the run later fails: the run is marked
FAILED and nothing is registered. Registration comes last and is undone as a whole when any of
its steps fails: the new version is deleted, aliases are put back where they were, and the run
is marked FAILED, so ``champion`` only ever points at a version whose registration finished (a
process killed while registering is undone by the next alias change on the store).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from dataclasses import dataclass, field

from recommender.registry._aliases import (
    CHALLENGER,
    CHAMPION,
    aliases,
    move_alias,
    settle,
    tag_events,
)
from recommender.registry._gate import GateDecision
from recommender.registry._lock import registry_lock, store_is_local
from recommender.registry._pending import (
    PENDING_TAG,
    end_abandoned_runs,
    pending_aliases,
    process_tags,
)
from recommender.registry._promotion import PromotionEvent, append_events
from recommender.registry._store import (
    EXPERIMENT_NAME,
    MODEL_NAME,
    client,
    ensure_experiment,
    few_retries,
    mlflow_session,
)

__all__ = ["TrainingRun", "Registration"]

# MLflow refuses parameter values longer than this.
_PARAM_LIMIT = 6000
# Run tags a registered version carries too, so that the registry's page of a version says what
# it was trained from without opening its run.
LINEAGE_TAGS = (
    "git_commit",
    "catalog.version",
    "catalog.sha256",
    "config.sha256",
    "data.source",
    "data.sha256",
    "reproduce.command",
    # what a from-log run read (it has no command): pipelines' lineage, log_read
    "data.log.rows",
    "data.log.recorded_through",
    "data.log.last_outcome_id",
    "data.log.table_rows",
    "data.log.table_sha256",
    "data.log.left_out_rows",  # rows the data contract refuses (pipelines._log_contract)
)


@dataclass
class Registration:
    """What :meth:`TrainingRun.register` did."""

    name: str
    version: str
    run_id: str
    model_uri: str
    aliases: list[str]
    gate: GateDecision
    events: list[PromotionEvent] = field(default_factory=list)
    previous_champion: str | None = None

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"


class TrainingRun:
    """An MLflow run as a context manager: FINISHED when the block ends, FAILED when it raises.

    An interrupt (Ctrl-C, or a kill the CLI turns into one) ends it KILLED instead, so a search
    for ``attributes.status = 'FAILED'`` finds the runs that went wrong, not the ones stopped.

    The run holds an :func:`~recommender.registry.mlflow_session` from start to end, so another
    thread's session waits for it; open and close the run in the same thread.

    Parameters
    ----------
    experiment : str, default "burnout-recommender"
    run_name : str, optional
    tags : dict, optional
    description : str, optional
        What the run is and why it was made: the run's description in MLflow, and, with the
        gate's verdict, the description of the version it registers.

    Examples
    --------
    >>> with TrainingRun(run_name="seed-7") as run:  # doctest: +SKIP
    ...     run.log_params({"seed": 7})
    ...     info = run.log_model(model, profiles.head(5), safety=rules)
    ...     registration = run.register(info, gate=decision, reason="scheduled retrain")
    """

    def __init__(
        self,
        *,
        experiment: str = EXPERIMENT_NAME,
        run_name: str | None = None,
        tags: dict | None = None,
        model_name: str = MODEL_NAME,
        description: str | None = None,
    ):
        self.experiment = experiment
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.description = description
        self.model_name = model_name
        self.run_id: str | None = None
        self._session = None
        self._mlflow = None

    # -- lifetime ------------------------------------------------------------------------------
    def __enter__(self) -> TrainingRun:
        self._session = mlflow_session()
        self._mlflow = self._session.__enter__()
        try:
            experiment_id = ensure_experiment(self.experiment)
            if store_is_local():  # every run of such a store was started on this machine
                end_abandoned_runs(experiment_id, mlflow_client=client())
            run = self._mlflow.start_run(
                experiment_id=experiment_id,
                run_name=self.run_name,
                tags={**{k: str(v) for k, v in self.tags.items()}, **process_tags()},
                description=self.description,
            )
            self.run_id = run.info.run_id
        except BaseException as error:
            if self._mlflow.active_run() is not None:  # stopped just as the run started
                self._end_stopped(type(error), error)
            self._session.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        try:
            if error is None:
                self._mlflow.end_run(status=_end_status(kind))
            else:
                self._end_stopped(kind, error)
        finally:
            self._session.__exit__(None, None, None)
        return False

    def _end_stopped(self, kind, error: BaseException) -> None:
        """End a run its block stopped, FAILED or KILLED, without hiding why it stopped.

        A store that cannot be reached (a tracking server down) is tried briefly: MLflow would
        retry for minutes again after the block's own request already did. If the run cannot be
        ended, ``error.run_not_ended`` says why, and the store shows it RUNNING; else
        ``error.run_ended`` is the status it ended with (an error with neither stopped the work
        before a run was started).
        """
        try:
            with few_retries():
                self._mlflow.end_run(status=_end_status(kind))
            error.run_ended = _end_status(kind)
        except Exception as ending:  # noqa: BLE001 - the block's error is the one to raise
            error.run_not_ended = f"{type(ending).__name__}: {str(ending)[:300]}"

    # -- logging -------------------------------------------------------------------------------
    def log_params(self, params: dict) -> None:
        """Log flattened parameters (``a.b`` keys), values cut to MLflow's length limit."""
        flat = {k: _text(v)[:_PARAM_LIMIT] for k, v in _flatten(params).items()}
        self._mlflow.log_params(flat)

    def set_tags(self, tags: dict) -> None:
        """Tag the run; those of :data:`LINEAGE_TAGS` also tag the version it registers."""
        self._mlflow.set_tags({k: _text(v)[:_PARAM_LIMIT] for k, v in tags.items()})
        self.tags.update(tags)

    def log_metrics(self, metrics: dict) -> None:
        """Log the finite numeric metrics; MLflow keys allow ``[A-Za-z0-9_\\-. /]`` only."""
        clean = {}
        for key, value in metrics.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                clean[_metric_key(key)] = number
        self._mlflow.log_metrics(clean)

    def log_metric_steps(self, series: dict) -> None:
        """Log metrics that have a step (``name -> {step: value}``), e.g. a curve, in batches.

        MLflow's charts draw such a metric against its step, and its compare view overlays
        the same name across runs. Non-finite values are left out, as in :meth:`log_metrics`.
        A point at the step of a model the run logged belongs to that model too, as MLflow's
        own ``log_metrics`` links it (and ``log_model`` links the points logged before it).
        """
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        models = self._models_by_step()
        metrics = [
            Metric(_metric_key(name), float(value), now, int(step), model_id=model_id)
            for name, points in series.items()
            for step, value in points.items()
            if math.isfinite(float(value))
            for model_id in models.get(int(step), [None])
        ]
        if metrics:  # the client splits them into batches of MLflow's size limit
            client().log_batch(self.run_id, metrics=metrics)

    def _models_by_step(self) -> dict[int, list[str]]:
        """The ids of the models this run has logged, by the step they were logged at."""
        outputs = self._mlflow.active_run().outputs
        models: dict[int, list[str]] = {}
        for output in outputs.model_outputs if outputs is not None else []:
            models.setdefault(int(output.step), []).append(output.model_id)
        return models

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self._mlflow.log_dict(data, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._mlflow.log_text(text, artifact_file)

    def log_artifacts(self, folder, artifact_path: str | None = None) -> None:
        self._mlflow.log_artifacts(str(folder), artifact_path)

    def log_dataset(
        self, frame, *, name: str, context: str, source=None, targets: str | None = None
    ) -> None:
        """Record ``frame`` as an input of the run (MLflow's Datasets): schema, rows, digest.

        MLflow keeps the schema, the row and cell counts and a digest of the rows, never the
        rows themselves; leave person identifiers out of ``frame`` all the same, as the digest
        is computed from what is given.

        Parameters
        ----------
        frame : DataFrame
        name : str
            The dataset's name in the run's inputs, the same for every run on the same data.
        context : str
            ``"training"`` or ``"evaluation"``.
        source : str or dict, optional
            Where it came from: a file's path, or a mapping describing it (a simulated cohort,
            the service's log).
        targets : str, optional
            The column the models learn.
        """
        import warnings

        import mlflow.data
        from mlflow.data.code_dataset_source import CodeDatasetSource

        if not isinstance(source, str):
            source = CodeDatasetSource({k: str(v) for k, v in (source or {}).items()})
        with warnings.catch_warnings():
            # MLflow's own: a path taken for a local file (it is one), integer columns (the
            # contract has no missing values), pandas deprecations inside its digest. The
            # schema is inferred when the dataset is logged, not when it is made.
            warnings.simplefilter("ignore")
            dataset = mlflow.data.from_pandas(frame, source=source, name=name, targets=targets)
            self._mlflow.log_input(dataset, context=context)

    def log_model(self, model, input_example, *, safety):
        """Log the pyfunc model of ``model`` (not registered yet), carrying the service's
        ``safety`` rules (:class:`recommender.policy.SafetyRules`); returns its ModelInfo."""
        from recommender.registry._pyfunc import log_pyfunc

        return log_pyfunc(model, input_example, safety=safety)

    # -- registration ------------------------------------------------------------------------
    def register(
        self,
        model_info,
        *,
        gate: GateDecision,
        reason: str,
        actor: str | None = None,
        on_registered=None,
        regate=None,
    ) -> Registration:
        """Register the logged model as a new version, alias it, and record the changes.

        All of it holds the store's alias lock (:mod:`recommender.registry._lock`), so no other
        training run, promote or rollback changes the aliases meanwhile. First a registration
        a killed run left half done is undone. Then, if the champion is no longer the one
        ``gate`` compared with (another run or a person moved it since), ``regate()`` gives the
        gate against the current one; without ``regate`` a passing gate is withdrawn and the
        version stays challenger. The version is created marked pending;
        ``on_registered(registration)`` runs (the pipeline writes the final model card there,
        from ``registration.gate``); the version gets ``challenger``, and ``champion`` when the
        gate passed; the changes are tagged on the version, the pending mark removed, and the
        changes appended to the promotion log. If any step raises, the version is deleted,
        the previous aliases are restored and the error propagates (the run then ends FAILED);
        if the process is killed, the next alias change on the store undoes it.

        Parameters
        ----------
        model_info : mlflow.models.model.ModelInfo
            From :meth:`log_model`.
        gate : GateDecision
        reason : str
            Recorded with each alias change.
        actor : str, optional
        on_registered : callable, optional
            ``on_registered(registration) -> None``; part of the transaction.
        regate : callable, optional
            ``regate() -> GateDecision`` against the champion as it is now.
        """
        mlflow_client = client()
        with registry_lock():
            settle(self.model_name, mlflow_client=mlflow_client)
            before = aliases(self.model_name, mlflow_client=mlflow_client)
            gate = _current_gate(gate, before.get(CHAMPION), regate)
            # The same names for every pipeline, so the gate's figures compare across runs.
            self.log_metrics(_gate_metrics(gate))
            return self._register(model_info, gate, reason, actor, on_registered, before)

    def _register(self, model_info, gate, reason, actor, on_registered, before) -> Registration:
        from mlflow.exceptions import MlflowException

        mlflow_client = client()
        name = self.model_name
        created_model = False
        version = None
        try:
            try:
                mlflow_client.get_registered_model(name)
            except MlflowException:
                mlflow_client.create_registered_model(
                    name,
                    description="Recommends a clinician-wellness intervention per person "
                    "(multi-arm uplift on burnout scores).",
                )
                created_model = True
            verdict = f"Gate {'passed' if gate.passed else 'not passed'}: {gate.reason}"
            created = mlflow_client.create_model_version(
                name,
                source=model_info.model_uri,
                run_id=self.run_id,
                model_id=getattr(model_info, "model_id", None),
                await_creation_for=0,
                description=f"{self.description}\n\n{verdict}" if self.description else verdict,
                tags={
                    "gate.passed": str(gate.passed).lower(),
                    "gate.reason": gate.reason[:5000],
                    # whom it was judged against: the same data and champion, the same verdict
                    "gate.champion": gate.champion_version or "none",
                    "run_id": self.run_id,
                    **{k: _text(self.tags[k]) for k in LINEAGE_TAGS if k in self.tags},
                    PENDING_TAG: pending_aliases(before),
                },
            )
            version = str(created.version)
            registration = Registration(
                name=name,
                version=version,
                run_id=self.run_id,
                model_uri=model_info.model_uri,
                aliases=[CHALLENGER, CHAMPION] if gate.passed else [CHALLENGER],
                gate=gate,
                previous_champion=before.get(CHAMPION),
            )
            self._mlflow.set_tags(
                {"registered_version": version, "gate.passed": str(gate.passed).lower()}
            )
            if on_registered is not None:
                on_registered(registration)
            # The aliases move last, once the card is out: the service never loads a version
            # whose card is missing.
            policy = gate.to_dict()
            reasons = {CHALLENGER: reason, CHAMPION: f"{reason}; gate: {gate.reason}"}
            registration.events = [
                move_alias(
                    alias,
                    version,
                    kind="gate",
                    reason=reasons[alias],
                    actor=actor,
                    policy=policy,
                    name=name,
                    mlflow_client=mlflow_client,
                    record=False,
                )
                for alias in registration.aliases
            ]
            tag_events(registration.events, mlflow_client=mlflow_client)
            mlflow_client.delete_model_version_tag(name, version, PENDING_TAG)
            append_events(registration.events)
            return registration
        except BaseException as error:
            if not _undo(mlflow_client, name, version, before, created_model):
                # The store took no more writes (a full disk, say): the version stays, marked
                # pending, without aliases, until the next alias change on the store deletes it.
                error.pending_version = version
            if version is not None:
                # The run ends FAILED and must not name the version just deleted again.
                with contextlib.suppress(Exception):
                    mlflow_client.delete_tag(self.run_id, "registered_version")
            raise


def _current_gate(gate: GateDecision, champion: str | None, regate) -> GateDecision:
    """``gate`` if it compared with ``champion``, the champion now; else the gate again against
    it (``regate``) or, without one, a passing gate withdrawn: it judged another champion."""
    if gate.champion_version == champion:
        return gate
    if regate is not None:
        fresh = regate()
        if fresh.champion_version == champion:
            return fresh
        gate = fresh
    if not gate.passed:
        return gate
    compared = f"version {gate.champion_version}" if gate.champion_version else "no champion"
    now = f"version {champion}" if champion else "none"
    return dataclasses.replace(
        gate,
        passed=False,
        reason=f"{gate.reason.rstrip('.')}. But the gate compared with {compared}, and the "
        f"champion changed (now {now}) while this run was training, so it stays challenger "
        "until a person compares it with the champion and promotes it "
        "(`recommender promote VERSION --force`).",
    )


def _gate_metrics(gate: GateDecision) -> dict:
    """``gate.challenger``, ``gate.champion``, ``gate.difference``, ``gate.extrapolated``
    (each with bounds, when the gate has it), rows, passed."""
    metrics = {"gate.passed": float(gate.passed), "gate.rows": gate.challenger.n}
    for part in ("challenger", "champion", "difference", "extrapolated"):
        value = getattr(gate, part)
        if value is not None:
            metrics[f"gate.{part}"] = value.estimate
            metrics[f"gate.{part}.lower"] = value.lower
            metrics[f"gate.{part}.upper"] = value.upper
    return metrics


def _end_status(kind) -> str:
    if kind is None:
        return "FINISHED"
    return "KILLED" if issubclass(kind, KeyboardInterrupt) else "FAILED"


def _undo(mlflow_client, name, version, before, created_model) -> bool:
    """Delete the partial version and put the aliases back; never masks the original error.
    False when that failed (the version may be left, marked pending)."""
    try:
        if version is not None:
            mlflow_client.delete_model_version(name, version)
        for alias in (CHAMPION, CHALLENGER):
            if alias in before:
                mlflow_client.set_registered_model_alias(name, alias, before[alias])
        if created_model and not mlflow_client.search_model_versions(f"name='{name}'"):
            mlflow_client.delete_registered_model(name)
    except Exception:  # noqa: BLE001 - the registration's own error is the one to report
        return False
    return True


def _flatten(params: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _text(value) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _metric_key(key: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-. /")
    return "".join(c if c in allowed else "_" for c in str(key))
