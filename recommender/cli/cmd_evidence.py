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
    from recommender._files import check_writable, write_atomically
    from recommender.catalog import evidence_markdown, load_catalog

    out = None if args.out is None else check_writable(args.out)
    text = evidence_markdown(load_catalog(args.catalog))
    if out is None:
        print(text, end="")
        return 0
    # Written whole or not at all: a reader never sees half a document.
    write_atomically(out, lambda temporary: temporary.write_text(text, encoding="utf-8"))
    print(f"wrote {out} ({text.count(chr(10))} lines)")
    return 0
