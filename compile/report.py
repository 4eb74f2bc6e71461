"""A drive's timeline from the monitor's logs (``edgefer report``): a PNG (matplotlib) and one self-contained
offline HTML page (inline SVG with a little inline script for a cursor read-out, the PNG embedded; no CDN, no
network), lanes: eye openness, PERCLOS, yawns, head yaw and pitch, attention zone, expression, and every alert
with its levels.

Input: the event log (``type: jsonl``) and, optionally, the signal log (``type: signals``: one line per second).
A workstation tool: it lives here, not in ``edge/``, because it needs matplotlib.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LEVEL_COLOURS = {1: "#ff9f1c", 2: "#d62728", 3: "#7f0000"}
ZONE_COLOURS = {"road_ahead": "#2ca02c", "instrument_cluster": "#98df8a", "left_mirror": "#1f77b4",
                "right_mirror": "#9ecae1", "centre_console": "#ff7f0e", "lap": "#e377c2", "away": "#9467bd"}
EXPRESSION_COLOURS = {"neutral": "#c7c7c7", "happy": "#bcbd22", "surprise": "#17becf", "sad": "#1f77b4",
                      "fear": "#9467bd", "angry": "#d62728", "disgust": "#8c564b", "contempt": "#7f7f7f"}
SERIES_COLOURS = {"eyes_open": "#1f77b4", "perclos": "#d62728", "yawn": "#8c564b", "head_yaw": "#ff7f0e",
                  "head_pitch": "#2ca02c"}

# the SVG's layout in CSS pixels (the browser test looks for the lanes here)
WIDTH, LEFT, RIGHT, TOP = 1000, 150, 20, 44
PLOT_H, BAND_H, ROW_H, GAP = 64, 22, 18, 10


class ReportError(ValueError):
    """A log that cannot be read: names the file and line."""


@dataclass
class Timeline:
    t0: float = 0.0
    t1: float = 1.0
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    bands: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict)  # lane -> (start, end, label)
    alerts: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)  # rule -> (start, end, level)
    yawns: list[float] = field(default_factory=list)  # times a new yawn was counted
    events: list[dict] = field(default_factory=list)
    has_signals: bool = False


def read_jsonl(path: str | Path, what: str, required: tuple[str, ...]) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such {what} file")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReportError(f"{path}:{n}: not a JSON line ({exc.msg})") from None
        missing = [k for k in required if not isinstance(row, dict) or k not in row]
        if missing:
            raise ReportError(f"{path}:{n}: a {what} line needs {', '.join(missing)}")
        rows.append(row)
    return rows


def build(events: list[dict], signals: list[dict] | None = None) -> Timeline:
    """The lanes from the logs' rows (see :func:`read_jsonl`)."""
    tl = Timeline(events=events, has_signals=bool(signals))
    times = [float(e["ts"]) for e in events] + [float(s["t"]) + float(s.get("seconds", 1.0)) for s in signals or []]
    times += [float(s["t"]) for s in signals or []]
    tl.t0, tl.t1 = (min(times), max(times)) if times else (0.0, 1.0)
    if tl.t1 <= tl.t0:
        tl.t1 = tl.t0 + 1.0
    open_spell: dict[str, tuple[float, int]] = {}
    for e in sorted((e for e in events if e.get("kind") == "alert"), key=lambda e: float(e["ts"])):
        rule, ts, action = e["name"], float(e["ts"]), e.get("action")
        if rule in open_spell:
            start, level = open_spell.pop(rule)
            tl.alerts.setdefault(rule, []).append((start, ts, level))
        if action in ("raise", "escalate") and int(e.get("level", 1)) > 0:
            open_spell[rule] = (ts, int(e.get("level", 1)))
        tl.alerts.setdefault(rule, [])
    for rule, (start, level) in open_spell.items():
        tl.alerts[rule].append((start, tl.t1, level))
    if not signals:
        return tl
    rows = sorted(signals, key=lambda s: float(s["t"]))
    for key, get in (("eyes_open", lambda s: s.get("eyes_open")), ("perclos", lambda s: s["signals"].get("perclos")),
                     ("yawn", lambda s: s.get("yawn")), ("head_yaw", lambda s: s["signals"].get("head_yaw")),
                     ("head_pitch", lambda s: s["signals"].get("head_pitch"))):
        points = []
        for s in rows:
            value = get({**s, "signals": s.get("signals") or {}})
            if isinstance(value, (int, float)) and math.isfinite(value):
                points.append((float(s["t"]) + float(s.get("seconds", 1.0)) / 2, float(value)))
        tl.series[key] = points
    for lane in ("zone", "expression"):
        spans: list[tuple[float, float, str]] = []
        for s in rows:
            label, start, end = s.get(lane), float(s["t"]), float(s["t"]) + float(s.get("seconds", 1.0))
            if label is None:
                continue
            if spans and spans[-1][2] == label and abs(spans[-1][1] - start) < 1e-6:
                spans[-1] = (spans[-1][0], end, label)
            else:
                spans.append((start, end, label))
        tl.bands[lane] = spans
    previous = 0.0
    for s in rows:
        count = (s.get("signals") or {}).get("yawns_per_window")
        if isinstance(count, (int, float)) and round(count) > round(previous):
            tl.yawns.append(float(s["t"]))
        previous = count if isinstance(count, (int, float)) else previous
    return tl


#: Numeric lanes: (title, series keys, y range).
PLOTS = (("eye openness p(open)", ("eyes_open",), (0.0, 1.0)), ("PERCLOS", ("perclos",), (0.0, 0.5)),
         ("yawn p (| yawn counted)", ("yawn",), (0.0, 1.0)),
         ("head yaw / pitch (deg)", ("head_yaw", "head_pitch"), (-60.0, 60.0)))


def runs(points: list[tuple[float, float]], gap_s: float = 1.5) -> list[list[tuple[float, float]]]:
    """A series cut where readings are missing for longer than ``gap_s`` (no line drawn across a gap)."""
    out: list[list[tuple[float, float]]] = []
    for point in points:
        if not out or point[0] - out[-1][-1][0] > gap_s:
            out.append([])
        out[-1].append(point)
    return out


def layout(tl: Timeline) -> dict[str, tuple[float, float]]:
    """Each lane's (top, bottom) in the SVG, in CSS pixels."""
    lanes, y = {}, float(TOP)
    for title, _, _ in PLOTS:
        lanes[title] = (y, y + PLOT_H)
        y += PLOT_H + GAP
    for band in ("zone", "expression"):
        lanes[band] = (y, y + BAND_H)
        y += BAND_H + GAP
    for rule in tl.alerts:
        lanes[f"alert:{rule}"] = (y, y + ROW_H)
        y += ROW_H + 2
    lanes["end"] = (y + 24, y + 24)
    return lanes


def x_of(tl: Timeline, t: float) -> float:
    return LEFT + (t - tl.t0) / (tl.t1 - tl.t0) * (WIDTH - LEFT - RIGHT)


def svg(tl: Timeline, title: str = "") -> str:
    lanes = layout(tl)
    height = lanes["end"][1]
    out = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
           f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="sans-serif" font-size="11">',
           f'<rect width="{WIDTH}" height="{height:.0f}" fill="#ffffff"/>',
           f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    right = WIDTH - RIGHT
    for title, keys, (lo, hi) in PLOTS:
        top, bottom = lanes[title]
        out.append(f'<rect x="{LEFT}" y="{top}" width="{right - LEFT}" height="{PLOT_H}" fill="#f7f7f7" '
                   f'fill-opacity="0.6" stroke="#cccccc"/>')
        out.append(f'<text x="{LEFT - 6}" y="{top + PLOT_H / 2 + 4}" text-anchor="end">{html.escape(title)}</text>')
        for key in keys:
            for run in runs(tl.series.get(key, [])):
                coords = " ".join(f"{x_of(tl, t):.1f},{bottom - (min(max(v, lo), hi) - lo) / (hi - lo) * PLOT_H:.1f}"
                                  for t, v in run)
                out.append(f'<polyline points="{coords}" fill="none" stroke="{SERIES_COLOURS[key]}" '
                           f'stroke-width="1.6"><title>{key}</title></polyline>')
        if title.startswith("yawn"):
            for t in tl.yawns:
                out.append(f'<line x1="{x_of(tl, t):.1f}" x2="{x_of(tl, t):.1f}" y1="{top}" y2="{bottom}" '
                           f'stroke="#8c564b" stroke-dasharray="3,2"><title>yawn counted at {t:.0f} s</title></line>')
    for band, colours in (("zone", ZONE_COLOURS), ("expression", EXPRESSION_COLOURS)):
        top, _ = lanes[band]
        out.append(f'<text x="{LEFT - 6}" y="{top + BAND_H / 2 + 4}" text-anchor="end">{band}</text>')
        for start, end, label in tl.bands.get(band, []):
            width = max(x_of(tl, end) - x_of(tl, start), 1)
            out.append(f'<rect x="{x_of(tl, start):.1f}" y="{top}" width="{width:.1f}" height="{BAND_H}" '
                       f'fill="{colours.get(label, "#7f7f7f")}"><title>{html.escape(label)} '
                       f'{start:.0f}-{end:.0f} s</title></rect>')
    for rule, spells in tl.alerts.items():
        top, _ = lanes[f"alert:{rule}"]
        out.append(f'<text x="{LEFT - 6}" y="{top + ROW_H / 2 + 4}" text-anchor="end">{html.escape(rule)}</text>')
        out.append(f'<rect x="{LEFT}" y="{top}" width="{right - LEFT}" height="{ROW_H}" fill="#fbfbfb" '
                   f'fill-opacity="0.6" stroke="#eeeeee"/>')
        for start, end, level in spells:
            colour = LEVEL_COLOURS.get(level, LEVEL_COLOURS[3])
            out.append(f'<rect class="alert" x="{x_of(tl, start):.1f}" y="{top}" '
                       f'width="{max(x_of(tl, end) - x_of(tl, start), 2):.1f}" height="{ROW_H}" fill="{colour}">'
                       f'<title>{html.escape(rule)} level {level}: {start:.2f}-{end:.2f} s</title></rect>')
    axis_y = lanes["end"][0] - 14
    step = _tick_step(tl.t1 - tl.t0)
    t = math.ceil(tl.t0 / step) * step
    while t <= tl.t1 + 1e-9:  # grid lines over the lanes' backgrounds, under their data
        out.insert(3, f'<line x1="{x_of(tl, t):.1f}" x2="{x_of(tl, t):.1f}" y1="{TOP}" y2="{axis_y}" '
                      f'stroke="#dddddd" stroke-width="0.6"/>')
        out.append(f'<text x="{x_of(tl, t):.1f}" y="{axis_y + 12}" text-anchor="middle">{t:g}</text>')
        t += step
    out.append(f'<text x="{LEFT - 6}" y="{axis_y + 12}" text-anchor="end">stream time (s)</text>')
    out.append(f'<line id="cursor" x1="-10" x2="-10" y1="{TOP}" y2="{axis_y}" stroke="#000000" stroke-width="0.8"/>')
    out.append(f'<text id="readout" x="{LEFT}" y="{TOP - 10}" font-size="12"></text>')
    out.append("</svg>")
    return "\n".join(out)


def _tick_step(span: float) -> float:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if span / step <= 12:
            return float(step)
    return 7200.0


_SCRIPT = """
(function () {
  var data = %s, svg = document.getElementById('timeline');
  var cursor = document.getElementById('cursor'), readout = document.getElementById('readout');
  svg.addEventListener('mousemove', function (ev) {
    var box = svg.getBoundingClientRect(), x = ev.clientX - box.left;
    if (x < data.left || x > data.right) { return; }
    var t = data.t0 + (x - data.left) / (data.right - data.left) * (data.t1 - data.t0), parts = [t.toFixed(1) + ' s'];
    Object.keys(data.series).forEach(function (k) {
      var best = null;
      data.series[k].forEach(function (p) {
        if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
      });
      if (best !== null && Math.abs(best[0] - t) <= 1) { parts.push(k + ' ' + best[1].toFixed(2)); }
    });
    Object.keys(data.bands).forEach(function (k) {
      data.bands[k].forEach(function (b) { if (b[0] <= t && t < b[1]) parts.push(k + ' ' + b[2]); });
    });
    cursor.setAttribute('x1', x); cursor.setAttribute('x2', x);
    readout.textContent = parts.join('  |  ');
  });
})();
"""


def page(tl: Timeline, png: bytes | None, title: str) -> str:
    data = {"t0": tl.t0, "t1": tl.t1, "left": LEFT, "right": WIDTH - RIGHT,
            "series": {k: [[round(t, 2), round(v, 3)] for t, v in p] for k, p in tl.series.items()},
            "bands": {k: [[s, e, lb] for s, e, lb in v] for k, v in tl.bands.items()}}
    rows = "\n".join(
        f"<tr><td>{float(e['ts']):.2f}</td><td>{html.escape(str(e.get('kind')))}</td>"
        f"<td>{html.escape(str(e.get('name')))}</td><td>{html.escape(str(e.get('action')))}</td>"
        f"<td>{e.get('level', '')}</td><td>{html.escape(str(e.get('message') or ''))[:160]}</td></tr>"
        for e in tl.events)
    note = "" if tl.has_signals else "<p>No signal log was given (<code>--signals</code>): alerts only.</p>"
    image = "" if png is None else (f'<details><summary>the same timeline as a PNG</summary><img alt="timeline" '
                                    f'src="data:image/png;base64,{base64.b64encode(png).decode()}"></details>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{margin:0;font-family:sans-serif;font-size:13px}} .below{{margin:12px 16px}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ddd;padding:2px 6px;text-align:left}}</style></head>
<body>
{svg(tl, title)}
<div class="below">{note}
<p>Alert colours: level 1 orange, level 2 red, level 3 dark red. Hover over the timeline for values.</p>
{image}
<table><tr><th>t (s)</th><th>kind</th><th>name</th><th>action</th><th>level</th><th>message</th></tr>
{rows}</table></div>
<script>{_SCRIPT % json.dumps(data)}</script>
</body></html>
"""


def plot_png(tl: Timeline, path: Path, title: str) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("the PNG needs matplotlib: pip install 'edgefer[demo]'") from None
    n_alerts = max(len(tl.alerts), 1)
    ratios = [1.0] * len(PLOTS) + [0.35, 0.35, 0.3 * n_alerts]
    fig, axes = plt.subplots(len(ratios), 1, sharex=True, figsize=(10, 7 + 0.25 * n_alerts),
                             gridspec_kw={"height_ratios": ratios})
    for ax, (name, keys, (lo, hi)) in zip(axes, PLOTS, strict=False):
        for key in keys:
            for i, run in enumerate(runs(tl.series.get(key, []))):
                ax.plot([t for t, _ in run], [v for _, v in run], color=SERIES_COLOURS[key], lw=1.2,
                        label=key if i == 0 else None)
        if name.startswith("yawn"):
            for t in tl.yawns:
                ax.axvline(t, color="#8c564b", ls="--", lw=0.8)
        ax.set_ylim(lo, hi)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        if len(keys) > 1 and any(tl.series.get(k) for k in keys):
            ax.legend(fontsize=7, loc="upper right")
    for ax, (band, colours) in zip(axes[len(PLOTS):], (("zone", ZONE_COLOURS), ("expression", EXPRESSION_COLOURS)),
                                   strict=False):
        seen = {}
        for start, end, label in tl.bands.get(band, []):
            seen[label] = ax.axvspan(start, end, color=colours.get(label, "#7f7f7f"), lw=0)
        ax.set_yticks([])
        ax.set_ylabel(band, rotation=0, ha="right", va="center", fontsize=8)
        if seen:
            ax.legend(seen.values(), seen.keys(), fontsize=6, ncol=min(len(seen), 7), loc="upper center",
                      bbox_to_anchor=(0.5, -0.05), frameon=False)
    ax = axes[-1]
    rules = list(tl.alerts)
    for i, rule in enumerate(rules):
        for start, end, level in tl.alerts[rule]:
            ax.barh(i, max(end - start, (tl.t1 - tl.t0) / 500), left=start, height=0.7,
                    color=LEVEL_COLOURS.get(level, LEVEL_COLOURS[3]))
    ax.set_yticks(range(len(rules)), rules, fontsize=7)
    ax.set_ylim(-0.5, max(len(rules), 1) - 0.5)
    ax.invert_yaxis()
    ax.set_xlim(tl.t0, tl.t1)
    ax.set_xlabel("stream time (s); alerts: level 1 orange, level 2 red")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_report(events_path: str | Path, out: str | Path, signals_path: str | Path | None = None,
                 title: str | None = None) -> dict[str, Any]:
    """Read the logs, write ``timeline.png`` and ``report.html`` into ``out``; returns their paths and counts."""
    events = read_jsonl(events_path, "event log", ("kind", "name", "action", "ts"))
    signals = read_jsonl(signals_path, "signal log", ("t", "signals")) if signals_path else None
    tl = build(events, signals)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    title = title or f"edgefer drive report: {Path(events_path).name}"
    png = plot_png(tl, out / "timeline.png", title)
    html_path = out / "report.html"
    html_path.write_text(page(tl, png.read_bytes(), title), encoding="utf-8")
    return {"png": str(png), "html": str(html_path), "seconds": round(tl.t1 - tl.t0, 2),
            "alerts": sum(len(v) for v in tl.alerts.values()), "signal_lines": len(signals or [])}
