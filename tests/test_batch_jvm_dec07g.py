"""The JVM of a local Spark session runs with the quick compiler only.

A local ``batch-score`` is short-lived: the JIT's optimising tier cost a third of a small job's
CPU and never paid it back (pipelines/_batch_session.py). The suite's shared session is the
product's own (tests/spark_fixtures.py starts it with ``spark_session("local[2]")``), so its JVM,
a child of this process, shows what a user's gets.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from spark_fixtures import spark  # noqa: F401 - the process's one local Spark session

from pipelines._batch_session import LOCAL_JAVA_OPTIONS


def _child_jvm_arguments() -> list[list[str]]:
    """The command lines of this process's children that run Spark's JVM (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile, or not ours to read
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        words = [a.decode(errors="replace") for a in arguments if a]
        if parent == os.getpid() and any("org.apache.spark" in w for w in words):
            found.append(words)
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the JVM's command line")
def test_a_local_sessions_jvm_runs_the_quick_compiler_only(spark):  # noqa: F811
    assert LOCAL_JAVA_OPTIONS == "-XX:TieredStopAtLevel=1"
    assert spark.sparkContext.getConf().get("spark.driver.defaultJavaOptions") == (
        LOCAL_JAVA_OPTIONS
    )
    jvms = _child_jvm_arguments()
    assert len(jvms) == 1, jvms
    assert LOCAL_JAVA_OPTIONS in jvms[0], jvms[0]
