"""``recommender evidence --out docs/evidence.md``: the catalog's evidence as a document."""

from __future__ import annotations

HELP = "write the intervention catalog's evidence, certainty and eligibility reasons as Markdown"


def configure(parser) -> None:
    parser.add_argument(
        "--catalog",
        default=None,
        help="intervention catalog YAML (default: configs/interventions.yaml)",
    )
    parser.add_argument(
        "--out", default=None, help="file to write (default: print to standard output)"
    )


def run(args) -> int:
    import os
    import tempfile
    from pathlib import Path

    from recommender.catalog import evidence_markdown, load_catalog

    text = evidence_markdown(load_catalog(args.catalog))
    if args.out is None:
        print(text, end="")
        return 0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written whole or not at all: a reader never sees half a document.
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    print(f"wrote {out} ({text.count(chr(10))} lines)")
    return 0
