"""Draw a run's topology as a small inline SVG: hosts, edges, faults, success per tier.

The journal's ``topology`` section (``chaosagenkit.topology.system.journal_section``)
says which hosts and edges a system had, each edge's calls as its caller
saw them, and the success of each tier; the fault timeline says which host
or edge each fault was placed on. Tiers are columns, from the clients on
the left to the leaves on the right; an edge is green when every call on it
succeeded, amber when some failed, red when most did, grey when it carried
none; a faulted host or edge is outlined in red and named with its faults.
So a reader sees where a failure started and how far it travelled.

Pure text: no plotting library, every journal text escaped.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["FAULT_EVENTS", "topology_html", "topology_svg"]

#: Timeline events that place a fault on a host or an edge.
FAULT_EVENTS = ("inject", "crash", "signal", "disable", "stop")
_COL_W, _ROW_H, _BOX_W, _BOX_H, _TOP = 240, 78, 150, 44, 46
_MARGIN_RIGHT = 150  # room for the fault labels of the last tier
_GREEN, _AMBER, _RED, _GREY = "#1a7f37", "#9a6700", "#cf222e", "#8c959f"


def topology_html(section: dict[str, Any] | None, timeline: list[dict[str, Any]]) -> str:
    """The report's topology block for one run: a heading and one SVG per system ('' when none)."""
    systems = [s for s in (section or {}).get("systems") or [] if isinstance(s, dict)]
    if not systems:
        return ""
    parts = ["<h3>Topology</h3>"]
    faults = _faults(timeline)
    for system in systems:
        parts.append(topology_svg(system, timeline))
        parts.append(_legend(system, faults))
        tiers = ", ".join(
            f"tier {t.get('tier')}: {_ratio(t.get('success_ratio'))} of {t.get('sent')}"
            for t in system.get("tiers") or []
        )
        if tiers:
            parts.append(f'<p class="facts">Success per tier (calls made by that tier): {_e(tiers)}</p>')
    return "\n".join(parts)


def topology_svg(system: dict[str, Any], timeline: list[dict[str, Any]]) -> str:
    """One system as an SVG element (hosts by tier, edges with their success, faults in red)."""
    hosts = [h for h in system.get("hosts") or [] if isinstance(h, dict) and h.get("name")]
    edges = [e for e in system.get("edges") or [] if isinstance(e, dict) and e.get("name")]
    faults = _faults(timeline)
    columns: dict[int, list[str]] = {0: ["clients"]} if any(e.get("from") == "clients" for e in edges) else {}
    for host in hosts:
        columns.setdefault(int(host.get("tier") or 1), []).append(str(host["name"]))
    place: dict[str, tuple[float, float]] = {}
    for column, names in sorted(columns.items()):
        for row, name in enumerate(names):
            place[name] = (16 + column * _COL_W, _TOP + row * _ROW_H)
    width = 16 + (max(columns, default=0) + 1) * _COL_W + _MARGIN_RIGHT - (_COL_W - _BOX_W)
    height = _TOP + max((len(n) for n in columns.values()), default=1) * _ROW_H + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="topology {_e(system.get("name", ""))}" '
        'style="font:12px system-ui,sans-serif;border:1px solid #eaeef2;max-width:100%">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>',
    ]
    for column, _names in sorted(columns.items()):
        tier = next((t for t in system.get("tiers") or [] if t.get("tier") == column), None)
        label = f"tier {column}" + (f" · {_ratio(tier.get('success_ratio'))} ok" if tier else "")
        out.append(f'<text x="{16 + column * _COL_W}" y="20" font-weight="600">{_e(label)}</text>')
    pairs: dict[tuple[str, str], int] = {}
    for number, edge in enumerate(edges, 1):
        pair = (str(edge.get("from")), str(edge.get("to")))
        pairs[pair] = pairs.get(pair, 0) + 1
        out.append(_edge(edge, place, faults.get(str(edge["name"])), number, pairs[pair] - 1))
    if "clients" in place:
        x, y = place["clients"]
        out.append(_box(x, y, "clients", "top-level callers", None, "#f6f8fa"))
    for host in hosts:
        x, y = place[str(host["name"])]
        detail = str(host.get("kind") or "agent")
        if host.get("requests") is not None:
            detail += f" · {host['requests']} req"
        if host.get("reachable") is False:
            detail += " · down"
        out.append(_box(x, y, str(host["name"]), detail, faults.get(str(host["name"])), "#ffffff"))
    out.append("</svg>")
    return "".join(out)


def _edge(
    edge: dict[str, Any],
    place: dict[str, tuple[float, float]],
    fault: list[str] | None,
    number: int,
    twin: int,
) -> str:
    """A line from caller to callee, coloured by success, with its number (the legend's row)."""
    source, target = str(edge.get("from")), str(edge.get("to"))
    if source not in place or target not in place:
        return ""
    shift = twin * 10  # a second edge between the same two hosts runs below the first
    (x1, y1), (x2, y2) = place[source], place[target]
    x1, y1, x2, y2 = x1 + _BOX_W, y1 + _BOX_H / 2 - 6 + shift, x2, y2 + _BOX_H / 2 - 6 + shift
    color = _color(edge.get("success_ratio"), edge.get("sent"))
    middle_x, middle_y = (
        x1 + (x2 - x1) * (0.35 + 0.3 * (twin % 2)),
        y1 + (y2 - y1) * (0.35 + 0.3 * (twin % 2)),
    )
    title = _e(
        f"{number}. {edge['name']}: {source} -> {target}, {_ratio(edge.get('success_ratio'))} of {edge.get('sent')}"
    )
    return (
        f'<line x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke="{color}" '
        f'stroke-width="{3 if fault else 2}" marker-end="url(#arrow)"'
        + (' stroke-dasharray="6 3"' if fault else "")
        + f"><title>{title}</title></line>"
        f'<circle cx="{middle_x:.0f}" cy="{middle_y:.0f}" r="8" fill="#fff" stroke="{_RED if fault else color}"/>'
        f'<text x="{middle_x:.0f}" y="{middle_y + 4:.0f}" text-anchor="middle" font-size="10" '
        f'fill="{_RED if fault else color}">{number}</text>'
    )


def _legend(system: dict[str, Any], faults: dict[str, list[str]]) -> str:
    """The edges by number: caller, callee, calls, success, errors, faults placed on them."""
    rows = []
    for number, edge in enumerate([e for e in system.get("edges") or [] if isinstance(e, dict)], 1):
        errors = ", ".join(f"{k} {v}" for k, v in (edge.get("errors") or {}).items()) or "–"
        rows.append(
            f"<tr><td class=num>{number}</td><td>{_e(edge.get('name'))}</td>"
            f"<td>{_e(edge.get('from'))} → {_e(edge.get('to'))}</td><td class=num>{_e(edge.get('tier'))}</td>"
            f"<td class=num>{_e(edge.get('sent', '–'))}</td><td class=num>{_ratio(edge.get('success_ratio'))}</td>"
            f"<td>{_e(errors)}</td><td>{_e(', '.join(faults.get(str(edge.get('name')), [])) or '–')}</td></tr>"
        )
    return (
        "<table><tr><th>#</th><th>edge</th><th>caller → callee</th><th>tier</th><th>calls</th>"
        "<th>success</th><th>errors</th><th>faults on it</th></tr>" + "".join(rows) + "</table>"
    )


def _box(x: float, y: float, name: str, detail: str, fault: list[str] | None, fill: str) -> str:
    stroke = _RED if fault else "#57606a"
    parts = [
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{_BOX_W}" height="{_BOX_H}" rx="6" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{2.5 if fault else 1}"/>',
        f'<text x="{x + 8:.0f}" y="{y + 17:.0f}" font-weight="600">{_e(name)}</text>',
        f'<text x="{x + 8:.0f}" y="{y + 33:.0f}" fill="#57606a">{_e(detail)}</text>',
    ]
    if fault:
        parts.append(
            f'<text x="{x + 8:.0f}" y="{y + _BOX_H + 13:.0f}" fill="{_RED}">⚡ {_e(", ".join(fault))}</text>'
        )
    return "".join(parts)


def _faults(timeline: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Target name -> the faults placed on it (kind, or the event), in timeline order, once each."""
    placed: dict[str, list[str]] = {}
    for event in timeline:
        if not isinstance(event, dict) or event.get("event") not in FAULT_EVENTS:
            continue
        detail = event.get("detail")
        if not isinstance(detail, dict):
            detail = {}
        what = str(event.get("kind") or detail.get("signal") or event.get("event"))
        names = placed.setdefault(str(event.get("target")), [])
        if what not in names:
            names.append(what)
    return placed


def _color(ratio: Any, sent: Any) -> str:
    if not isinstance(ratio, int | float) or not sent:
        return _GREY
    if ratio >= 1.0:
        return _GREEN
    return _AMBER if ratio >= 0.5 else _RED


def _ratio(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)
