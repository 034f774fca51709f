"""``recommender evaluate-policy --from-log``: value models on the program's own log."""

from __future__ import annotations

from recommender.cli._restore_first import serve_config_of_training

HELP = (
    "off-policy value (doubly robust, IPS, self-normalised IPS) of the champion and other "
    "versions on the service's log of recommendations and outcomes"
)

# The models folder: the audit log and registered versions.
MODELS_FOLDER = "reads"
# --serve-config, else the serve.yaml train.yaml names (log.serve_config), as run reads it
SERVE_CONFIG_OPTION = serve_config_of_training

# What the plain table prints for an estimate not given (null in JSON).
NOT_MEASURABLE = "not measurable"


def configure(parser) -> None:
    parser.add_argument(
        "--from-log",
        action="store_true",
        required=True,
        help="value the policies on the service's log (the only source today)",
    )
    parser.add_argument(
        "--version",
        action="append",
        default=[],
        metavar="VERSION",
        help="a registered version (number or alias) to value besides the champion (repeatable)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="training config (catalog, seed, folds; default configs/train.yaml)",
    )
    parser.add_argument(
        "--serve-config",
        default=None,
        metavar="FILE",
        help="service settings naming its store (default: configs/serve.yaml)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args) -> int:
    import json
    import math
    from pathlib import Path

    from pipelines.train import evaluate_policies_on_log, load_config
    from recommender.catalog import load_catalog
    from recommender.errors import InputError
    from recommender.paths import config_path

    overrides = {"log": {"serve_config": args.serve_config}} if args.serve_config else None
    config = load_config(args.config, overrides=overrides)
    catalog_file = config["catalog"]
    catalog = load_catalog(
        config_path(catalog_file) if not Path(catalog_file).is_absolute() else catalog_file
    )
    table = evaluate_policies_on_log(config, catalog, versions=args.version)
    if table is None:
        raise InputError(
            "the service log holds no served recommendation with a follow-up "
            "outcome yet; record outcomes first (POST /outcomes or `recommender "
            "outcomes import FILE`)"
        )
    if args.json:
        from recommender.card import json_safe

        # strict JSON: an estimate not given (NaN: IPS and SNIPS of a policy picking an arm no
        # logged row was served) is null
        print(json.dumps(json_safe(table), indent=2, allow_nan=False))
        return 0
    level = f"{100 * (1 - config['evaluation']['alpha']):.0f} %"
    print(
        f"Expected change in emotional exhaustion against usual care for all, per person "
        f"(EE points; lower is better), {level} intervals, on {table['rows']:,} logged rows:"
    )
    print(
        f"{'policy':<34}{'estimator':<11}{'estimate':>9}{'lower':>9}{'upper':>9}"
        f"{'effective rows':>16}{'unmeasured rows':>17}"
    )
    for row in table["values"]:
        # NaN: an estimate not given (the notes say why), never printed as "nan"
        figures = (
            f"{row['estimate']:>9.3f}{row['lower']:>9.3f}{row['upper']:>9.3f}"
            if math.isfinite(row["estimate"])
            else f"{NOT_MEASURABLE:>27}"
        )
        print(
            f"{row['policy']:<34}{row['estimator']:<11}{figures}"
            f"{row['effective_rows']:>16,.0f}{row['unmeasured_rows']:>17,}"
        )
    for note in table["notes"]:
        print(f"{note[0].upper()}{note[1:]}.")
    return 0
