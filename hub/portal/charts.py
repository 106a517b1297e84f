"""Bar charts as inline SVG, drawn on the server: no script, no chart library, no CDN.

Each bar is its own small SVG whose rectangle is a percentage of the row, so the chart
follows the page's width (down to a 360 px phone) while the labels stay HTML text of a
readable size. Colours come from the stylesheet (`.bar`), since the page's Content
Security Policy forbids inline styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    href: str | None = None


def bar_chart(bars: Sequence[Bar], *, title: str, chart_id: str) -> Markup:
    """A list of labelled horizontal bars scaled to the largest value."""
    largest = max((bar.value for bar in bars), default=0) or 1
    rows = []
    for bar in bars:
        share = round(100 * bar.value / largest, 1)
        label = escape(bar.label)
        name = Markup(f'<a href="{escape(bar.href)}">{label}</a>') if bar.href else label
        rows.append(
            Markup(
                '<li class="bar-row"><span class="bar-label">{name}</span>'
                '<svg class="bar-svg" width="100%" height="18" role="img" aria-label="{aria}">'
                '<rect class="bar" x="0" y="1" height="16" width="{share}%" rx="2"></rect></svg>'
                '<span class="bar-value">{value}</span></li>'
            ).format(
                name=name,
                aria=f"{bar.label}: {bar.value}",
                share=share if bar.value else 0,
                value=f"{bar.value:,}".replace(",", "."),
            )
        )
    return Markup(
        '<figure class="chart" id="{id}"><figcaption>{title}</figcaption>'
        '<ol class="bars">{rows}</ol></figure>'
    ).format(  # fmt: skip
        id=chart_id, title=title, rows=Markup("").join(rows)
    )
