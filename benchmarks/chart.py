"""SVG charts from a results JSON, with no plotting library.

``python -m benchmarks.chart benchmarks/results/latest.json docs/`` writes:

* ``perf-targets.svg``: each ratio target, chatbus over raw, against its limit;
* ``perf-latency.svg``: the DM latency distribution of chatbus and the baselines;
* ``perf-presence.svg``: bytes a subscriber receives per presence event as
  users come online, against what an event carrying the whole list would weigh.
"""

import argparse
import json
import math
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from .presence_storm import user_name

WIDTH, HEIGHT = 720, 360
LEFT, RIGHT, TOP, BOTTOM = 70, 185, 40, 50
COLORS = {
    "chatbus": "#d1495b",
    "PUBLISH": "#00798c",
    "SPUBLISH": "#66a182",
    "raw ZADD+PUBLISH": "#00798c",
    "full list": "#888",
}
FAMILY = 'font-family="sans-serif"'
FONT = f'{FAMILY} font-size="12"'

Series = tuple[str, Sequence[tuple[float, float]]]


def _svg(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}">',
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
            f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" {FAMILY} font-size="15" '
            f'font-weight="bold">{escape(title)}</text>',
            *body,
            "</svg>",
            "",
        ]
    )


def _ticks(low: float, high: float, log: bool) -> list[float]:
    if log:
        first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
        return [10.0**e for e in range(first, last + 1)]
    raw_step = (high - low) / 5 or 1
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = min(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw_step)
    return [i * step for i in range(math.floor(low / step), math.ceil(high / step) + 1)]


def line_chart(
    title: str,
    series: list[Series],
    x_label: str,
    y_label: str,
    *,
    log_y: bool = False,
    x_ticks: Sequence[tuple[float, str]] | None = None,
) -> str:
    """Lines through each series' (x, y) points, with axes and a legend."""
    xs = [x for _, points in series for x, _ in points]
    ys = [y for _, points in series for _, y in points if y > 0 or not log_y]
    y_ticks = _ticks(min(0.0, *ys) if not log_y else min(ys), max(ys), log_y)
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = y_ticks[0], y_ticks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_low) / ((x_high - x_low) or 1) * plot_w

    def py(y: float) -> float:
        if log_y:
            fraction = (math.log10(y) - math.log10(y_low)) / (
                math.log10(y_high) - math.log10(y_low)
            )
        else:
            fraction = (y - y_low) / ((y_high - y_low) or 1)
        return TOP + plot_h - fraction * plot_h

    body = [
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="black"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="black"/>',
    ]
    for tick in y_ticks:
        y = py(tick)
        body.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        body.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{tick:,.0f}</text>'
        )
    for x, label in x_ticks or [(t, f"{t:,.0f}") for t in _ticks(x_low, x_high, False)]:
        if x_low <= x <= x_high:
            body.append(
                f'<text x="{px(x):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" {FONT}>'
                f"{escape(label)}</text>"
            )
    body.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle" {FONT}>'
        f"{escape(x_label)}</text>"
    )
    body.append(
        f'<text x="16" y="{TOP + plot_h / 2}" text-anchor="middle" {FONT} '
        f'transform="rotate(-90 16 {TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    for index, (name, points) in enumerate(series):
        color = COLORS.get(name, "#333")
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points if y > 0 or not log_y)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        legend_y = TOP + 10 + 20 * index
        body.append(
            f'<line x1="{WIDTH - RIGHT + 15}" y1="{legend_y}" x2="{WIDTH - RIGHT + 35}" '
            f'y2="{legend_y}" stroke="{color}" stroke-width="3"/>'
        )
        body.append(
            f'<text x="{WIDTH - RIGHT + 40}" y="{legend_y + 4}" {FONT}>{escape(name)}</text>'
        )
    return _svg(title, body)


def targets_chart(rows: list[tuple[str, float, str, float]]) -> str:
    """Horizontal bars: (label, ratio, op, limit); the limit is a dashed mark."""
    bar_h, gap = 22, 26
    height = TOP + 30 + len(rows) * (bar_h + gap)
    label_w, plot_w = 240, WIDTH - 240 - 60
    top_value = max(2.0, *(max(ratio, limit) for _, ratio, _, limit in rows)) * 1.1

    def px(value: float) -> float:
        return label_w + value / top_value * plot_w

    body = [
        f'<line x1="{px(1):.1f}" y1="{TOP}" x2="{px(1):.1f}" y2="{height - 10}" '
        'stroke="#999" stroke-dasharray="2,3"/>',
        f'<text x="{px(1):.1f}" y="{TOP + 8}" text-anchor="middle" {FONT}>raw = 1x</text>',
    ]
    for index, (label, ratio, op, limit) in enumerate(rows):
        y = TOP + 20 + index * (bar_h + gap)
        met = ratio <= limit if op.startswith("<") else ratio >= limit
        color = "#66a182" if met else COLORS["chatbus"]
        body += [
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" {FONT}>{escape(label)}</text>',
            f'<rect x="{label_w}" y="{y}" width="{px(ratio) - label_w:.1f}" height="{bar_h}" '
            f'fill="{color}"/>',
            f'<text x="{px(ratio) + 5:.1f}" y="{y + 15}" {FONT}>{ratio:.2f}x</text>',
            f'<line x1="{px(limit):.1f}" y1="{y - 4}" x2="{px(limit):.1f}" y2="{y + bar_h + 4}" '
            'stroke="black" stroke-width="2" stroke-dasharray="4,2"/>',
            f'<text x="{px(limit):.1f}" y="{y + bar_h + 14}" text-anchor="middle" {FAMILY} '
            f'font-size="10">target {escape(op)} {limit:g}x</text>',
        ]
    svg = _svg("chatbus / raw redis-py (green: target met; dashed: target)", body)
    return svg.replace(f'height="{HEIGHT}"', f'height="{height}"').replace(
        f"0 0 {WIDTH} {HEIGHT}", f"0 0 {WIDTH} {height}"
    )


def _target_rows(document: dict[str, Any]) -> list[tuple[str, float, str, float]]:
    rows = []
    for scenario in document["scenarios"].values():
        for row in scenario["rows"]:
            target = row["target"] or ""
            if target.endswith("x raw") and row["ratio"] is not None:
                op, limit = target.split()[0], float(target.split()[1].removesuffix("x"))
                rows.append((row["metric"], row["ratio"], op, limit))
    return rows


def _latency_series(document: dict[str, Any]) -> list[Series]:
    runs = document["scenarios"]["latency"]["details"]["runs"]
    names = {"chatbus": "chatbus", "publish": "PUBLISH", "spublish": "SPUBLISH"}
    series: list[Series] = []
    for kind, name in names.items():
        points = [(float(p), us) for p, us in runs[kind]["latency_curve_us"].items()]
        series.append((name, [(p, us) for p, us in points if p <= 99]))
    return series


def _presence_series(document: dict[str, Any]) -> list[Series]:
    presence = document["scenarios"]["presence"]["details"]["runs"]
    series: list[Series] = [
        (
            "chatbus",
            [(float(n), float(b)) for n, b in presence["chatbus"]["event_bytes_by_online"]],
        ),
        (
            "raw ZADD+PUBLISH",
            [(float(n), float(b)) for n, b in presence["raw"]["event_bytes_by_online"]],
        ),
    ]
    # What an event with every online name would weigh (the names alone).
    full = [
        (n, float(len(json.dumps([user_name(i) for i in range(int(n))])))) for n, _ in series[0][1]
    ]
    series.append(("full list", [(n, size) for n, size in full if n > 0]))
    return series


def write_charts(document: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    charts = {
        "perf-targets.svg": targets_chart(_target_rows(document)),
        "perf-latency.svg": line_chart(
            "DM latency at 1,000 msg/s, sender and receiver in separate processes",
            _latency_series(document),
            "percentile",
            "latency (us)",
            x_ticks=[(p, f"p{p:g}") for p in (0, 25, 50, 75, 90, 99)],
        ),
        "perf-presence.svg": line_chart(
            "Bytes a subscriber receives per presence event",
            _presence_series(document),
            "users online",
            "bytes per event (log scale)",
            log_y=True,
        ),
    }
    for name, svg in charts.items():
        path = directory / name
        path.write_text(svg)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chart")
    parser.add_argument("results", type=Path)
    parser.add_argument("directory", type=Path)
    args = parser.parse_args()
    for path in write_charts(json.loads(args.results.read_text()), args.directory):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
