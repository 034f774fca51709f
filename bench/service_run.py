"""One run of ``bench.service``: the in-process answers, the service and its two anchors over
HTTP (wrk, httpx and ``http.client``), under load and in batches, in alternating rounds so that
drift in the machine's load hits every contender alike; and the audit rows counted after.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench._wrk import post_load
from bench.service_clients import _free_port, _latencies, _LeanClient, _server, _throughput
from bench.service_contenders import (
    BATCH_ROWS,
    CONNECTIONS,
    KEY,
    SALT,
    WRK_BODIES,
    _engine,
    _profile,
    as_served,
)


def run(home: Path, work: Path, *, requests: int, seconds: float, repeats: int) -> dict:
    """Measure the champion of ``home``; every store and log of the run goes to ``work``."""
    import httpx

    # The answers serialised by the encoder the service's responses go through (pydantic's,
    # in BentoML's model_dump_json), not the standard library's, which is 2-3x slower.
    from pydantic_core import to_json

    from bench._bento_anchor import MODELS_ENV, write_anchor_models
    from recommender.registry import load_champion
    from recommender.service import AuditLog

    audit_url = f"sqlite:///{work / 'audit.db'}"
    env = {
        **os.environ,
        "RECOMMENDER_HOME": str(home),
        "BENTOML_HOME": str(work / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "RECOMMENDER_API_KEYS": f"program={KEY}",
        "RECOMMENDER_AUDIT_SALT": SALT,
        "RECOMMENDER_AUDIT_URL": audit_url,
        "BENCH_AUDIT_DIR": str(work),
        MODELS_ENV: str(work / "anchor-models"),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    os.environ.update(
        {k: env[k] for k in ("RECOMMENDER_HOME", "RECOMMENDER_AUDIT_SALT", "BENCH_AUDIT_DIR")}
    )
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    champion = load_champion()
    write_anchor_models(champion[0], work / "anchor-models")
    # the shipped setting: the record committed to SQLite's log, no fsync per commit
    engine = _engine(work / "in-process-audit.db", champion=champion)
    # every commit fsynced (power_loss): the floor of an answer that survives a power cut
    synced_engine = _engine(work / "synced-audit.db", "power_loss", champion=champion)
    # the same work with the audit store in memory: what the answer costs without any store
    memory_engine = _engine(None, champion=champion)
    as_served()

    def answer_with(chosen):
        def answer(i):
            row = chosen.check_row(_profile(i))
            to_json(chosen.recommend([row], caller_role="program")[0])

        return answer

    in_process, in_synced, in_memory = map(answer_with, (engine, synced_engine, memory_engine))
    batch_body = {"profiles": [_profile(i) for i in range(BATCH_ROWS)]}

    def in_process_batch(_):
        rows, _, _ = engine.check_rows(batch_body["profiles"])
        to_json(engine.recommend(rows, caller_role="program", compact=True))

    service_audit = AuditLog(audit_url, salt=SALT)
    audit_before = service_audit.count()
    answers = 0

    bento_port, anchor_port, lgbm_port = _free_port(), _free_port(), _free_port()
    bento_cmd = [
        sys.executable,
        *("-m", "recommender", "serve", "--host", "127.0.0.1", "--port", str(bento_port)),
    ]
    anchor_cmd = [
        sys.executable,
        *("-m", "uvicorn", "--factory", "bench.service:create_anchor_app"),
        *("--host", "127.0.0.1", "--port", str(anchor_port), "--log-level", "warning"),
    ]
    lgbm_cmd = [
        sys.executable,
        *("-m", "bentoml", "serve", "bench._bento_anchor:Anchor"),
        *("--host", "127.0.0.1", "--port", str(lgbm_port)),
    ]
    load_start = os.getloadavg()[0]
    results = {
        key: []
        for key in (
            "in_process",
            "in_process_cpu",
            "in_process_batch_cpu",
            "in_synced",
            "in_memory",
            "in_process_batch",
            "http",
            "lgbm_http",
            "bento_rps",
            "bento_load",
            "anchor_rps",
            "anchor_load",
            "lgbm_rps",
            "lgbm_load",
            "batch",
            "single",
            "http_lean",
            "lgbm_http_lean",
            "bento_lean_rps",
            "bento_lean_load",
            "anchor_lean_rps",
            "anchor_lean_load",
            "lgbm_lean_rps",
            "lgbm_lean_load",
            "http_wrk",
            "lgbm_http_wrk",
            "bento_wrk_rps",
            "bento_wrk_load",
            "anchor_wrk_rps",
            "anchor_wrk_load",
            "lgbm_wrk_rps",
            "lgbm_wrk_load",
        )
    }
    results["errors"] = results["anchor_errors"] = 0
    with (
        _server(bento_cmd, env, bento_port, work / "bench-bentoml.log", "/readyz") as bento,
        _server(anchor_cmd, env, anchor_port, work / "bench-fastapi.log", "/docs") as anchor,
        _server(lgbm_cmd, env, lgbm_port, work / "bench-lightgbm.log", "/readyz") as lgbm,
    ):
        client = httpx.Client(
            base_url=bento, headers={"Authorization": f"Bearer {KEY}"}, timeout=300
        )
        lgbm_client = httpx.Client(base_url=lgbm, timeout=300)

        def single(i):
            nonlocal answers
            client.post("/recommend", json=_profile(i)).raise_for_status()
            answers += 1

        def lgbm_single(i):
            lgbm_client.post("/recommend", json=_profile(i)).raise_for_status()

        # The same requests through a lighter client (an extra row, ours and the anchor alike).
        lean_client = _LeanClient(bento, {"Authorization": f"Bearer {KEY}"})
        lean_lgbm_client = _LeanClient(lgbm)

        def lean_single(i):
            nonlocal answers
            if lean_client.post("/recommend", _profile(i)) != 200:
                raise RuntimeError("the service refused a benchmark request")
            answers += 1

        def lean_lgbm_single(i):
            if lean_lgbm_client.post("/recommend", _profile(i)) != 200:
                raise RuntimeError("the anchor refused a benchmark request")

        def batch(_):
            nonlocal answers
            client.post("/recommend_batch", json=batch_body).raise_for_status()
            answers += BATCH_ROWS

        # wrk, the C load generator: one connection for the single requests (the same bodies as
        # the other clients' single requests), 16 for the load (connection k sends the bodies
        # the other clients' connection k sends).
        single_bodies = [_profile(i) for i in range(requests)]
        load_bodies = [
            _profile(k * 100_000 + i) for i in range(WRK_BODIES) for k in range(CONNECTIONS)
        ]
        bearer = f"Bearer {KEY}"

        def wrk_single(url):
            return post_load(
                url,
                "/recommend",
                single_bodies,
                connections=1,
                seconds=600,
                limit=requests,
                authorization=bearer,
            )

        def wrk_load(url):
            return post_load(
                url,
                "/recommend",
                load_bodies,
                connections=CONNECTIONS,
                seconds=seconds,
                authorization=bearer,
            )

        for warm in range(20):
            in_process(warm)
            in_synced(warm)
            in_memory(warm)
            single(warm)
            lgbm_single(warm)
            lean_single(warm)
            lean_lgbm_single(warm)
        in_process_batch(0)
        batch(0)
        for _ in range(repeats):
            # Alternate the contenders so drift in the machine's load hits them alike.
            cpu = time.process_time()
            results["in_process"].extend(_latencies(in_process, requests))
            # CPU time of this process per answer (the audit writer's thread included): the
            # work itself, whatever the wait for a core on a loaded machine
            results["in_process_cpu"].append((time.process_time() - cpu) / requests)
            results["in_synced"].extend(_latencies(in_synced, requests))
            results["in_memory"].extend(_latencies(in_memory, requests))
            served = wrk_single(bento)
            results["http_wrk"].extend(served.latencies)
            results["errors"] += served.errors
            answers += served.succeeded
            anchored = wrk_single(lgbm)
            results["lgbm_http_wrk"].extend(anchored.latencies)
            results["anchor_errors"] += anchored.errors
            results["http"].extend(_latencies(single, requests))
            results["lgbm_http"].extend(_latencies(lgbm_single, requests))
            results["http_lean"].extend(_latencies(lean_single, requests))
            results["lgbm_http_lean"].extend(_latencies(lean_lgbm_single, requests))
            cpu = time.process_time()
            results["in_process_batch"].extend(_latencies(in_process_batch, 3))
            results["in_process_batch_cpu"].append((time.process_time() - cpu) / 3)
            # The load from wrk (the rows that judge the targets), then from httpx and http.client.
            served = wrk_load(bento)
            results["bento_wrk_rps"].append(served.rate)
            results["bento_wrk_load"].extend(served.latencies)
            results["errors"] += served.errors
            answers += served.succeeded
            for name, url in (("anchor", anchor), ("lgbm", lgbm)):
                anchored = wrk_load(url)
                results[f"{name}_wrk_rps"].append(anchored.rate)
                results[f"{name}_wrk_load"].extend(anchored.latencies)
                results["anchor_errors"] += anchored.errors
            rps, errors, times, answered = _throughput(bento, seconds)
            results["bento_rps"].append(rps)
            results["bento_load"].extend(times)
            results["errors"] += errors
            answers += answered
            for name, url in (("anchor", anchor), ("lgbm", lgbm)):
                rps, errors, times, _ = _throughput(url, seconds)
                results[f"{name}_rps"].append(rps)
                results[f"{name}_load"].extend(times)
                results["anchor_errors"] += errors
            # The same load from the lighter client, ours and the anchors alike.
            rps, errors, times, answered = _throughput(bento, seconds, lean=True)
            results["bento_lean_rps"].append(rps)
            results["bento_lean_load"].extend(times)
            results["errors"] += errors
            answers += answered
            for name, url in (("anchor", anchor), ("lgbm", lgbm)):
                rps, errors, times, _ = _throughput(url, seconds, lean=True)
                results[f"{name}_lean_rps"].append(rps)
                results[f"{name}_lean_load"].extend(times)
                results["anchor_errors"] += errors
            # Batch and single requests interleaved, so both see the same machine.
            for _ in range(3):
                results["single"].extend(_latencies(single, 5))
                results["batch"].extend(_latencies(batch, 1))
        client.close()
        lgbm_client.close()
        lean_client.close()
        lean_lgbm_client.close()
    results["load"] = (load_start, os.getloadavg()[0])
    results["answers"] = answers
    results["audit_rows"] = service_audit.count() - audit_before
    service_audit.close()
    return results
