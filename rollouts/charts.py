"""Small server-rendered SVG charts: line charts over time and bar charts. Every series
has a dash pattern and a text label as well as a colour, so no meaning rests on colour."""

from __future__ import annotations

from datetime import datetime
from html import escape

from django.utils.safestring import SafeString, mark_safe

PALETTE = [
    ("#0b5cab", ""),
    ("#c2410c", "6 3"),
    ("#15803d", "2 3"),
    ("#7c3aed", "8 3 2 3"),
    ("#be123c", "4 2"),
    ("#0f766e", "1 2"),
]
W, H, LEFT, BOTTOM, TOP, RIGHT = 560, 220, 52, 28, 12, 12


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def line_chart(
    title: str, series: dict[str, list[tuple[datetime, float | None]]], unit: str = ""
) -> SafeString:
    points = [(t, v) for line in series.values() for t, v in line if v is not None]
    parts = [
        f'<svg viewBox="0 0 {W} {H + 24 * ((len(series) + 2) // 3)}" role="img" '
        f'class="chart" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    if not points:
        parts.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">No data yet</text></svg>')
        return mark_safe("".join(parts))  # noqa: S308  (built from escaped text and numbers)
    t0 = min(t for t, _ in points).timestamp()
    t1 = max(max(t for t, _ in points).timestamp(), t0 + 1)
    top = max(v for _, v in points) or 1.0
    top *= 1.1

    def x(t: datetime) -> float:
        return LEFT + (t.timestamp() - t0) / (t1 - t0) * (W - LEFT - RIGHT)

    def y(v: float) -> float:
        return TOP + (1 - v / top) * (H - TOP - BOTTOM)

    parts.append(
        f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#555"/>'
    )
    for fraction in (0, 0.5, 1):
        value = top / 1.1 * fraction
        parts.append(
            f'<text x="{LEFT - 4}" y="{y(value) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{_fmt(value)}{escape(unit)}</text>'
            f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{W - RIGHT}" y2="{y(value):.1f}" '
            'stroke="#ddd"/>'
        )
    first, last = min(t for t, _ in points), max(t for t, _ in points)
    parts.append(
        f'<text x="{LEFT}" y="{H - 8}" font-size="11">{first:%H:%M:%S}</text>'
        f'<text x="{W - RIGHT}" y="{H - 8}" font-size="11" text-anchor="end">'
        f"{last:%H:%M:%S}</text>"
    )
    for n, (name, line) in enumerate(series.items()):
        colour, dash = PALETTE[n % len(PALETTE)]
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in line if v is not None)
        if coords:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'stroke-dasharray="{dash}" points="{coords}"/>'
            )
        lx, ly = LEFT + (n % 3) * 170, H + 14 + 24 * (n // 3)
        parts.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dash}"/>'
            f'<text x="{lx + 30}" y="{ly}" font-size="12">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308


def bar_chart(
    title: str, bars: list[tuple[str, float | None, str]], unit: str = "", signed: bool = False
) -> SafeString:
    """Horizontal bars: (label, value, level); the level is printed beside each bar."""
    height = 30 * len(bars) + 20
    parts = [
        f'<svg viewBox="0 0 {W} {height}" role="img" class="chart" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    values = [abs(v) for _, v, _ in bars if v is not None] or [1.0]
    scale = (W - 260) / (max(values) or 1.0)
    zero = 160 + ((W - 260) / 2 if signed else 0)
    if signed:
        scale /= 2
    for n, (label, value, level) in enumerate(bars):
        row = 10 + 30 * n
        colour = {"ok": "#15803d", "warning": "#b45309", "critical": "#b91c1c"}.get(
            level, "#6b7280"
        )
        parts.append(
            f'<text x="150" y="{row + 15}" text-anchor="end" font-size="12">{escape(label)}</text>'
        )
        if value is not None:
            width = abs(value) * scale
            left = zero - width if value < 0 else zero
            parts.append(
                f'<rect x="{left:.1f}" y="{row + 3}" width="{max(width, 1):.1f}" '
                f'height="16" fill="{colour}"/>'
            )
        shown = "no data" if value is None else f"{_fmt(value)}{unit}"
        parts.append(
            f'<text x="{W - 90}" y="{row + 15}" font-size="12">{escape(shown)} '
            f"({escape(level)})</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308
