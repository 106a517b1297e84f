"""Statistik: records per month and per region, drilled down provinsi -> kab/kota ->
kecamatan -> kelurahan, per event type.

The figures are `GET /api/v1/stats`'s answer (the `record_counts` read model), asked with
the page's own `wilayah` and `type`: the caller's region when absent, a region outside it
refused as by the API (403, audited). An operator's region is their kelurahan, so that is
all they see.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from hub.api import stats as api_stats
from hub.api.access import hub_of
from hub.api.support import authorize
from hub.portal.charts import Bar, bar_chart
from hub.portal.i18n import text
from hub.portal.render import call_json, page, render
from hub.portal.session import language_of

_REGION: Final = re.compile(r"[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?")
_TYPE: Final = re.compile(r"[a-z][a-z_]{0,19}")


def _trail(request: Request, own: str, region: str) -> list[dict[str, str]]:
    """The regions from the caller's own down to the one shown (the drill-down's path)."""
    names = hub_of(request).regions
    parts = region.split(".") if region else []
    trail = []
    for depth in range(len(own.split(".")) if own else 0, len(parts) + 1):
        code = ".".join(parts[:depth])
        name = names.name_of(code) if code else None
        trail.append({"kode": code, "nama": name or code or text("nasional", language_of(request))})
    return trail


@page
async def stats_page(request: Request) -> Response:
    caller = await authorize(request, "stats:read")
    language = language_of(request)
    region = request.query_params.get("wilayah") or None
    region = region if region is None or _REGION.fullmatch(region) else None
    record_type = request.query_params.get("jenis") or None
    record_type = record_type if record_type is None or _TYPE.fullmatch(record_type) else None
    answer = await call_json(
        request, api_stats.stats, query={"wilayah": region, "type": record_type}
    )
    shown = answer["wilayah"] or ""
    level = answer["level"]
    by_area: dict[str, int] = defaultdict(int)
    names: dict[str, str] = {}
    by_month: dict[str, int] = defaultdict(int)
    by_type: dict[tuple[str, str], int] = defaultdict(int)
    for group in answer["groups"]:
        by_area[group["wilayah"]] += group["count"]
        names[group["wilayah"]] = group["nama"] or group["wilayah"]
        by_month[group["month"] or ""] += group["count"]
        by_type[(group["wilayah"], group["type"])] += group["count"]
    deeper = level > (shown.count(".") + 1 if shown else 0)

    def area_link(code: str) -> str | None:
        if not deeper:
            return None
        return "/statistik?" + "&".join(
            f"{k}={v}" for k, v in (("wilayah", code), ("jenis", record_type)) if v
        )

    areas = [Bar(f"{names[c]} ({c})", n, area_link(c)) for c, n in sorted(by_area.items())]
    months = [Bar(m or text("stats.no_month", language), n) for m, n in sorted(by_month.items())]
    types = hub_of(request).schemas.types()
    table = [
        {
            "kode": c,
            "nama": names[c],
            "counts": [by_type.get((c, t), 0) for t in types],
            "total": by_area[c],
            "href": area_link(c),
        }  # fmt: skip
        for c in sorted(by_area)
    ]
    context: dict[str, Any] = {
        "answer": answer,
        "trail": _trail(request, caller.wilayah, shown),
        "level_name": text(f"level.{level}", language),
        "month_chart": bar_chart(months, title=text("stats.by_month", language), chart_id="bulan"),
        "area_chart": bar_chart(
            areas,
            title=f"{text('stats.by_region', language)}: {text(f'level.{level}', language)}",
            chart_id="wilayah",
        ),
        "table": table,
        "types": types,
        "chosen": record_type,
        "region": shown,
    }
    return render(request, "stats.html", context, principal=caller)
