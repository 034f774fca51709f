"""Rendering the model card as JSON, Markdown and one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from recommender.card._blocks import card_blocks, card_warnings, fmt

__all__ = [
    "render_markdown",
    "render_html",
    "write_card",
    "read_card",
    "copy_card",
    "card_files",
    "CARD_FILES",
]

CARD_FILES = ("card.json", "card.md", "card.html")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;color:#1b1f24;line-height:1.5;background:#fff;
overflow-wrap:break-word}
h1{font-size:1.8rem;border-bottom:3px solid #2f6f8f;padding-bottom:.3rem}
h2{font-size:1.35rem;margin-top:2.2rem;color:#2f6f8f;border-bottom:1px solid #d0d7de}
h3{font-size:1.05rem;margin-bottom:.3rem}
table{border-collapse:collapse;font-size:.88rem}
.table-scroll{overflow-x:auto;margin:.6rem 0 1.2rem}
caption{text-align:left;font-weight:600;padding:.2rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .55rem;text-align:left;vertical-align:top}
th{background:#eef3f6}
tr:nth-child(even) td{background:#f8fafb}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:.8rem;overflow-x:auto;font-size:.85rem}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;box-sizing:border-box;
border:1px solid #d0d7de}
figcaption{font-size:.85rem;color:#57606a}
nav ol{columns:2 14rem;font-size:.95rem}
.statement{background:#fff8e1;border-left:4px solid #e0a800;padding:.6rem .9rem}
.warning{background:#fdecea;border-left:4px solid #b3261e;padding:.6rem .9rem}
.meta{color:#57606a;font-size:.9rem}
a:focus-visible,[tabindex]:focus-visible{outline:3px solid #2f6f8f;outline-offset:2px}
.skip{position:absolute;left:.5rem;top:-5rem;background:#fff;color:#0b4f6c;padding:.4rem .7rem;
border:2px solid #2f6f8f}
.skip:focus{top:.5rem}
@media print{.skip,nav{display:none}pre{white-space:pre-wrap}body{max-width:none;margin:0}.table-scroll{overflow:visible}
table{font-size:.75rem}th,td{overflow-wrap:anywhere}figure,tr{break-inside:avoid}
h2,h3{break-after:avoid}}
"""


def _title(facts) -> str:
    m = facts.get("model") or {}
    version = m.get("version")
    name = m.get("name") or "burnout-recommender"
    return f"Model card: {name}" + (f" version {version}" if version else "")


def render_markdown(facts: dict) -> str:
    """The card as Markdown; images are referenced by their file under ``plots/``."""
    lines = [f"# {_title(facts)}", ""]
    for warning in card_warnings(facts):
        lines += [f"> **{warning}**", ""]
    plots = facts.get("plots") or {}
    for _sid, title, blocks in card_blocks(facts):
        lines += [f"## {title}", ""]
        for block in blocks:
            kind = block[0]
            if kind in ("p", "strong"):
                text = block[1]
                lines += [f"**{text}**" if kind == "strong" else text, ""]
            elif kind == "h3":
                lines += [f"### {block[1]}", ""]
            elif kind == "list":
                lines += [f"- {item}" for item in block[1]] + [""]
            elif kind == "pre":
                lines += ["```text", block[1].rstrip("\n"), "```", ""]
            elif kind == "table":
                lines += _markdown_table(block[1], block[2])
            elif kind == "img":
                entry = plots.get(block[1]) or {}
                lines += [f"![{block[2]}]({entry.get('file', f'plots/{block[1]}.png')})", ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_cell(value) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def _markdown_table(tbl, caption) -> list[str]:
    out = [f"*{caption}*", ""] if caption else []
    columns = tbl.get("columns") or []
    out.append("| " + " | ".join(columns) + " |")
    out.append("|" + "|".join("---" for _ in columns) + "|")
    for row in tbl.get("rows") or []:
        out.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    return out + [""]


def render_html(facts: dict, plots: Mapping[str, bytes] | None = None) -> str:
    """The card as one HTML page with every plot embedded as a base64 PNG.

    Parameters
    ----------
    facts : dict
        The card's facts (as in ``card.json``).
    plots : mapping of str to bytes, optional
        PNG bytes by plot name; a plot the facts name but that is missing here is noted.
    """
    plots = dict(plots or {})
    esc = html.escape
    title = _title(facts)
    created = (facts.get("model") or {}).get("created")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        # the first thing a keyboard reaches: past the contents list to the sections
        '<a class="skip" href="#sections">Skip to the card\'s sections</a>',
        f'<header><h1 id="top">{esc(title)}</h1>',
    ]
    for warning in card_warnings(facts):
        parts.append(f'<p class="warning" role="alert"><strong>{esc(warning)}</strong></p>')
    if created:
        parts.append(f'<p class="meta">Generated for the run created {esc(str(created))} UTC.</p>')
    sections = card_blocks(facts)
    tables = 0
    parts.append('<nav aria-label="Contents"><ol>')
    parts += [f'<li><a href="#{sid}">{esc(t)}</a></li>' for sid, t, _ in sections]
    parts.append('</ol></nav></header><main id="sections" tabindex="-1">')
    for sid, section_title, blocks in sections:
        parts.append(f'<section id="{sid}"><h2>{esc(section_title)}</h2>')
        for block in blocks:
            kind = block[0]
            if kind == "p":
                parts.append(f"<p>{esc(block[1])}</p>")
            elif kind == "strong":
                parts.append(f'<p class="statement"><strong>{esc(block[1])}</strong></p>')
            elif kind == "h3":
                parts.append(f"<h3>{esc(block[1])}</h3>")
            elif kind == "list":
                parts.append(
                    "<ul>" + "".join(f"<li>{esc(str(i))}</li>" for i in block[1]) + "</ul>"
                )
            elif kind == "pre":
                # scrolls sideways on a narrow screen: a named region a keyboard can reach
                parts.append(
                    f'<pre role="region" tabindex="0" aria-label="{esc(section_title)}">'
                    f"{esc(block[1])}</pre>"
                )
            elif kind == "table":
                tables += 1
                parts.append(_html_table(block[1], block[2] or section_title, f"table-{tables}"))
            elif kind == "img":
                name, caption, alt = block[1], block[2], block[-1]
                data = plots.get(name)
                if data is None:
                    parts.append(f"<p>(plot {esc(name)} not available)</p>")
                else:
                    encoded = base64.b64encode(data).decode("ascii")
                    parts.append(
                        f'<figure><img alt="{esc(alt)}" '
                        f'src="data:image/png;base64,{encoded}">'
                        f"<figcaption>{esc(caption)}</figcaption></figure>"
                    )
        parts.append("</section>")
    parts += ["</main>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _html_table(tbl, caption: str, name: str) -> str:
    """A table in a box of its own that scrolls sideways when the table is wider than the page:
    the box is a named region a keyboard can reach (to scroll it), named by the caption."""
    esc = html.escape
    head = "".join(f'<th scope="col">{esc(str(c))}</th>' for c in tbl.get("columns") or [])
    # the first cell names its row (a field, a policy, an arm, a group): a row header
    body = "".join(
        "<tr>"
        + "".join(
            f'<th scope="row">{esc(fmt(v))}</th>' if i == 0 else f"<td>{esc(fmt(v))}</td>"
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in tbl.get("rows") or []
    )
    return (
        f'<div class="table-scroll" role="region" tabindex="0" aria-labelledby="{name}">'
        f'<table><caption id="{name}">{esc(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def write_card(facts: dict, folder, *, plots: Mapping[str, object] | None = None) -> dict:
    """Write ``card.json``, ``card.md``, ``card.html`` and ``plots/<name>.png`` into ``folder``.

    Parameters
    ----------
    facts : dict
        JSON-safe facts. ``facts["plots"]`` is filled with the plot files written here.
    folder : path
        Created if missing.
    plots : mapping of str to bytes or path, optional
        PNG images by name.

    Returns
    -------
    dict
        ``{"json": Path, "markdown": Path, "html": Path, "plots": [Path, ...]}``.
    """
    folder = Path(folder)
    (folder / "plots").mkdir(parents=True, exist_ok=True)
    images: dict[str, bytes] = {}
    for name, image in (plots or {}).items():
        images[name] = image if isinstance(image, bytes) else Path(image).read_bytes()
    facts = dict(facts)
    captions = dict(facts.get("plots") or {})
    facts["plots"] = {
        name: {
            "file": f"plots/{name}.png",
            "caption": (captions.get(name) or {}).get("caption", name),
        }
        for name in images
    }
    written = []
    for name, data in images.items():
        path = folder / "plots" / f"{name}.png"
        path.write_bytes(data)
        written.append(path)
    paths = {
        "json": folder / "card.json",
        "markdown": folder / "card.md",
        "html": folder / "card.html",
        "plots": written,
    }
    paths["json"].write_text(
        json.dumps(facts, indent=2, sort_keys=False, allow_nan=False), encoding="utf-8"
    )
    paths["markdown"].write_text(render_markdown(facts), encoding="utf-8")
    paths["html"].write_text(render_html(facts, images), encoding="utf-8")
    return paths


def read_card(folder) -> tuple[dict, dict[str, bytes]]:
    """The facts and plot images of a card written by :func:`write_card`."""
    folder = Path(folder)
    facts = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    images = {}
    for name, entry in (facts.get("plots") or {}).items():
        path = folder / entry.get("file", f"plots/{name}.png")
        if path.exists():
            images[name] = path.read_bytes()
    return facts, images


def card_files(folder) -> list[Path]:
    """The files of the card written in ``folder``: ``card.*`` and the plots its JSON names.

    Only ``plots/<name>.png`` files are named, whatever a ``card.json`` there says: the list is
    for replacing a card, and nothing else in the folder is the card's.
    """
    folder = Path(folder)
    found = [folder / name for name in CARD_FILES if (folder / name).is_file()]
    try:
        plots = json.loads((folder / "card.json").read_text(encoding="utf-8"))["plots"]
        names = [Path(str(entry["file"])).name for entry in plots.values()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        names = []  # no card here, or not one of ours
    for name in names:
        path = folder / "plots" / name
        if name.endswith(".png") and path.is_file() and not path.is_symlink():
            found.append(path)
    return found


def copy_card(source, target) -> Path:
    """Copy a written card folder (used to publish a staged card)."""
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    return target
