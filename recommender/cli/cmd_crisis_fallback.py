"""``recommender crisis-fallback --out DIR``: the bodies a proxy answers when the service does not.

See :func:`recommender.service.proxy_fallbacks` and ``configs/nginx.conf.example``.
"""

from __future__ import annotations

HELP = (
    "write the JSON answers (with the crisis resources) a proxy gives when the service is "
    "down, too slow, or the proxy refuses a request"
)


def configure(parser) -> None:
    parser.add_argument(
        "--config",
        default=None,
        help="serve.yaml whose crisis resources to use (default: $RECOMMENDER_SERVE_CONFIG, "
        "else configs/serve.yaml)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write into")


def run(args) -> int:
    import json

    from recommender._files import check_writable, write_together
    from recommender.service import load_serve_config, proxy_fallbacks

    folder = check_writable(args.out, folder=True)
    rules = load_serve_config(args.config).safety
    bodies = proxy_fallbacks(rules)

    def writer(body):
        text = json.dumps(body, indent=1, ensure_ascii=False) + "\n"
        return lambda temporary: temporary.write_text(text, encoding="utf-8")

    # Written together: a proxy never serves one file of this run beside another of an older.
    write_together({folder / name: writer(body) for name, body in bodies.items()})
    print(f"wrote {', '.join(sorted(bodies))} to {folder}")
    return 0
