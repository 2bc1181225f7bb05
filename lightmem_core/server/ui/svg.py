"""The timeline's chart, drawn on the server as SVG: memories per day, current over superseded.

Made here rather than in the browser so the page needs no script and no chart library
(the Content-Security-Policy allows no inline script). Every text that reaches the SVG
is escaped here; sizes and colours are attributes and classes, never inline ``style``
(which the policy refuses too).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup


@dataclass(frozen=True)
class Bin:
    label: str  # "2025-03-04", or "2025-03-04 – 2025-03-10" for a bin of several days
    current: int
    superseded: int
    href: str  # the timeline narrowed to this bin


def chart(bins: list[Bin], *, width: int = 720, height: int = 180, title: str = "Memories per day") -> Markup:
    """Stacked bars, one per bin: current at the bottom, superseded above; each bar links to its bin."""
    pad_left, pad_bottom, pad_top = 36, 22, 8
    plot_w, plot_h = width - pad_left - 4, height - pad_bottom - pad_top
    top = max([b.current + b.superseded for b in bins] + [1])
    step = plot_w / max(len(bins), 1)
    bar_w = max(1.0, step * 0.8)
    total_cur = sum(b.current for b in bins)
    total_sup = sum(b.superseded for b in bins)
    summary = f"{title}: {len(bins)} bars, {total_cur} current and {total_sup} superseded memories"
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(summary)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(summary)}</title>",
        f'<line class="axis" x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - 4}" y2="{pad_top + plot_h}"/>',
        f'<text class="tick" x="{pad_left - 6}" y="{pad_top + 8}" text-anchor="end">{top}</text>',
        f'<text class="tick" x="{pad_left - 6}" y="{pad_top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, b in enumerate(bins):
        x = pad_left + i * step + (step - bar_w) / 2
        h_cur = plot_h * b.current / top
        h_sup = plot_h * b.superseded / top
        y_cur = pad_top + plot_h - h_cur
        tip = f"{b.label}: {b.current} current, {b.superseded} superseded"
        out.append(f'<a href="{escape(b.href)}" aria-label="{escape(tip)}"><title>{escape(tip)}</title>')
        # an invisible full-height target, so a day with one memory is as easy to hit as a busy one
        out.append(f'<rect class="hit" x="{x:.1f}" y="{pad_top}" width="{bar_w:.1f}" height="{plot_h}"/>')
        if b.current:
            out.append(f'<rect class="cur" x="{x:.1f}" y="{y_cur:.1f}" width="{bar_w:.1f}" height="{h_cur:.1f}"/>')
        if b.superseded:
            out.append(
                f'<rect class="sup" x="{x:.1f}" y="{y_cur - h_sup:.1f}" width="{bar_w:.1f}" height="{h_sup:.1f}"/>'
            )
        out.append("</a>")
    if bins:
        first, last = bins[0].label.split(" ")[0], bins[-1].label.split(" ")[-1]
        base = pad_top + plot_h + 15
        out.append(f'<text class="tick" x="{pad_left}" y="{base}">{escape(first)}</text>')
        out.append(f'<text class="tick" x="{width - 4}" y="{base}" text-anchor="end">{escape(last)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
