"""Ctrl-C during batch-score: the wait for the cancelled tasks trusts Spark's status tracker only
once it has caught up with the cancel.

The tracker is fed by the listener bus, which runs behind the scheduler. A fresh-clone CI run
(loaded machine) found a staging folder re-created by a task still being killed after the
interrupted ``recommender batch-score`` had removed it: right after the cancel the tracker did
not know the job yet, so "no stage has a running task" held at once. Here a tracker that sees
the scheduler's events one poll at a time stands for a loaded machine, deterministically.
"""

from __future__ import annotations

import threading

import pyspark
import pytest
from pyspark.status import SparkJobInfo, SparkStageInfo

from pipelines._batch_session import _wait_for_tasks

GROUP = "burnout-recommender-test"


class _Scheduler:
    """What the scheduler posted (``events``) and what is really running (``running``)."""

    def __init__(self, tasks: int, ends_after_polls: int):
        self.events: list[tuple] = [("job", 1, GROUP, 10)]
        self.events += [("task-start", 10)] * tasks
        self.events.append(("job-end", 1, "FAILED"))  # cancelled: the tasks are being killed
        self.running = tasks
        self.polls = 0
        self.ends_after_polls = ends_after_polls
        self.lock = threading.Lock()

    def post_marker(self, group: str) -> None:
        with self.lock:
            self.events += [("job", 2, group, 20), ("job-end", 2, "SUCCEEDED")]

    def poll(self) -> None:
        """One look by the tracker; the killed tasks end after ``ends_after_polls`` looks."""
        with self.lock:
            self.polls += 1
            if self.running and self.polls >= self.ends_after_polls:
                self.events += [("task-end", 10)] * self.running
                self.running = 0


class _LaggingTracker:
    """A status tracker that has processed one more of the scheduler's events at each look."""

    def __init__(self, scheduler: _Scheduler):
        self.scheduler = scheduler
        self.seen = 0

    def _state(self):
        self.scheduler.poll()
        with self.scheduler.lock:
            events = self.scheduler.events[: self.seen]  # nothing at the first look
            self.seen = min(self.seen + 1, len(self.scheduler.events))
        jobs, active = {}, {}
        for event in events:
            if event[0] == "job":
                jobs[event[1]] = [event[2], event[3], "RUNNING"]
                active[event[3]] = 0
            elif event[0] == "job-end":
                jobs[event[1]][2] = event[2]
            elif event[0] == "task-start":
                active[event[1]] += 1
            elif event[0] == "task-end":
                active[event[1]] -= 1
        return jobs, active

    def getJobIdsForGroup(self, group):  # noqa: N802 - PySpark's name
        jobs, _ = self._state()
        return [job for job, (g, _, _) in jobs.items() if g == group]

    def getJobInfo(self, job):  # noqa: N802
        jobs, _ = self._state()
        if job not in jobs:
            return None
        _, stage, status = jobs[job]
        return SparkJobInfo(job, [stage], status)

    def getStageInfo(self, stage):  # noqa: N802
        _, active = self._state()
        if stage not in active:
            return None
        return SparkStageInfo(stage, 0, "write", 2, active[stage], 0, 0)


class _Context:
    def __init__(self, scheduler: _Scheduler):
        self.scheduler = scheduler
        self.tracker = _LaggingTracker(scheduler)
        self.groups = threading.local()

    def statusTracker(self):  # noqa: N802
        return self.tracker

    def setJobGroup(self, group, description, interruptOnCancel=False):  # noqa: N802, N803
        self.groups.group = group

    def parallelize(self, values, slices):
        context = self

        class _Rdd:
            def count(self):
                context.scheduler.post_marker(context.groups.group)
                return len(values)

        return _Rdd()


@pytest.fixture
def plain_threads(monkeypatch):
    # The marker job's thread copies the local properties of a live SparkContext; there is none.
    monkeypatch.setattr(pyspark, "InheritableThread", threading.Thread)


@pytest.mark.parametrize("tasks", [1, 2])
def test_the_wait_outlasts_a_tracker_that_has_not_seen_the_cancelled_job_yet(plain_threads, tasks):
    scheduler = _Scheduler(tasks=tasks, ends_after_polls=12)
    _wait_for_tasks(_Context(scheduler), GROUP)
    assert scheduler.running == 0, "returned while the cancelled tasks could still write"


def test_the_wait_returns_once_the_tasks_ended(plain_threads):
    # Not a wait for its own sake: it ends once the tracker shows them ended.
    scheduler = _Scheduler(tasks=2, ends_after_polls=12)
    _wait_for_tasks(_Context(scheduler), GROUP)
    assert scheduler.polls < 60


def test_a_marker_job_that_cannot_run_leaves_the_tracker_as_it_is(monkeypatch, plain_threads):
    # A session being stopped: the wait still returns, on what the tracker says.
    scheduler = _Scheduler(tasks=1, ends_after_polls=1)
    context = _Context(scheduler)

    def refused(values, slices):
        raise RuntimeError("SparkContext was shut down")

    monkeypatch.setattr(context, "parallelize", refused)
    _wait_for_tasks(context, GROUP)
