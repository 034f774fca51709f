"""What ``recommender serve --print-example`` prints once the service answers.

The keys made for this run, one per role; a wellness program's ``/recommend`` request as curl
and its answer, shortened to what decides it; and the auditor's and the scientist's calls.
:mod:`recommender.cli.cmd_serve` starts the server and calls :func:`_print_example` with it.
"""

from __future__ import annotations


def _print_example(process, host, port, keys: dict) -> None:
    import contextlib
    import io
    import json
    import sys
    import time

    import httpx

    from recommender.service import example_profile

    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(1)
    else:
        return
    if process.poll() is not None:  # whatever answered on the port, it is not this server
        return
    body = example_profile()
    response = httpx.post(
        f"{url}/recommend",
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {keys['program']}"},
    )
    # One write: the server logs the example request on the same terminal, and a log line
    # landed among the keys, between lines written one by one.
    with contextlib.redirect_stdout(io.StringIO()) as block:
        print("\nKeys made for this run only (set RECOMMENDER_API_KEYS for lasting keys):\n")
        for role, key in keys.items():
            print(f"  {role:<10} {key}")
        print("\nA wellness program asks for a recommendation:\n")
        print(
            f"curl -s -X POST {url}/recommend -H 'Authorization: Bearer {keys['program']}' \\\n"
            f"     -H 'Content-Type: application/json' -d '{json.dumps(body)}'\n"
        )
        answer = response.json()
        short = _shortened(answer)
        if short is answer:
            print(f"Response ({response.status_code}):\n")
        else:
            print(
                f"Response ({response.status_code}), shortened to what decides it (the curl "
                f"above prints all {len(response.content):,} bytes: each arm's evidence and DP "
                "and PA effects, the reasons, the complements, the context):\n"
            )
        print(_example_json(short))
        print("\nAn auditor reads the model card and exports the audit log (hashed person ids):\n")
        print(
            f"curl -s {url}/model_card -H 'Authorization: Bearer {keys['auditor']}' "
            "--create-dirs -o models/work/card.html"
        )
        print(
            f"curl -s '{url}/audit/export?since=2026-01-01' "
            f"-H 'Authorization: Bearer {keys['auditor']}'"
        )
        print("\nA data scientist reads the card as JSON and serves a newly promoted champion:\n")
        print(f"curl -s {url}/model_card.json -H 'Authorization: Bearer {keys['scientist']}'")
        print(f"curl -s -X POST {url}/reload -H 'Authorization: Bearer {keys['scientist']}'")
    sys.stdout.write(block.getvalue())
    sys.stdout.flush()


# What the example's answer shows of each ranked arm; the rest is "...". The whole answer (some
# 40 kB, 700 lines) pushed the keys and the request out of the terminal.
_ARM_SHOWN = ("arm", "rank", "ee_effect", "ee_lower", "ee_upper")
# Kept whole: the safety block (resources are never cut), what the answer is and stands on.
_KEPT = (
    "request_id",
    "model_version",
    "recommended",
    "interval_level",
    "ranking_meaningful",
    "ranking_note",
    "outside_training_data",
    "safety",
    "assignment",
    "disclaimer",
)


def _shortened(answer):
    """``answer`` of ``/recommend`` as the README shows it, with ``"...": "..."`` where parts
    are left out; any other body (an error, a crisis answer without a ranking) unchanged."""
    if not isinstance(answer, dict) or not isinstance(answer.get("ranking"), list):
        return answer
    short = {}
    for key, value in answer.items():
        if key == "ranking":
            short[key] = [
                {**{k: arm[k] for k in _ARM_SHOWN if k in arm}, "...": "..."} for arm in value
            ]
        elif key == "explanation" and isinstance(value, dict):
            short[key] = {"sentence": value.get("sentence"), "...": "..."}
        elif key == "context" and isinstance(value, dict):
            statement = (value.get("training_data") or {}).get("statement")
            short[key] = {"training_data": {"statement": statement}, "...": "..."}
        elif key in _KEPT:
            short[key] = value
    short["..."] = "..."
    return short


def _example_json(value, indent: int = 0, width: int = 120) -> str:
    """``value`` as indented JSON, with every object or list that fits in ``width`` columns on
    one line (each ranked arm, as the README shows them)."""
    import json

    flat = json.dumps(value)
    if not isinstance(value, (dict, list)) or not value or indent + len(flat) <= width:
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, dict):
        items = [
            f"{pad}{json.dumps(key)}: {_example_json(item, indent + 2, width)}"
            for key, item in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{_example_json(item, indent + 2, width)}" for item in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
