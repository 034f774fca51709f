"""``recommender card``: write a registered model's card (JSON, Markdown, HTML) to a folder."""

from __future__ import annotations

HELP = "write the model card of a registered model (card.json, card.md, card.html) to a folder"

# The models folder: a registered version's card.
MODELS_FOLDER = "reads"


def configure(parser) -> None:
    parser.add_argument(
        "--model",
        default="models:/burnout-recommender@champion",
        help="model URI, alias or version (default: the champion)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write into")


def run(args) -> int:
    from recommender._files import check_writable
    from recommender.registry import fetch_card

    folder = fetch_card(args.model, check_writable(args.out, folder=True))
    print(f"model card written to {folder}/card.html (also card.md, card.json)")
    return 0
