"""The operator web portal, in Bahasa Indonesia (English second), served by `hub serve` at `/`.

```
GET  /masuk, POST /masuk, POST /keluar      login (argon2id, lock-out), logout
GET  /unggah, POST /unggah                   Unggah laporan (XHR upload with progress)
GET  /hasil/{id}[/status|/laporan.xlsx|/unggah-ulang]   Hasil unggahan, Unggah ulang
GET  /persetujuan, POST /persetujuan         Persetujuan (+ /persetujuan/aliran: SSE)
GET  /pengiriman, POST /pengiriman/{id}/ulang  Pengiriman and dead-letter replay
GET  /statistik                              Statistik (drill-down by region)
GET  /audit                                  Jejak audit
GET  /aset/...                               CSS, JS, icons: every asset served by the hub
```
Every page asks `hub.api.access` through the API's own handlers (`hub.portal.render`), with
the session cookie as the bearer token (`hub.portal.session`). See docs/portal.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from hub.portal import approvals, auth_pages, operations, statistics, uploads
from hub.portal.session import PortalSession

STATIC: Final = Path(__file__).parent / "static"

routes: list[BaseRoute] = [
    Route("/", auth_pages.home, methods=["GET"]),
    Route("/masuk", auth_pages.login_form, methods=["GET"]),
    Route("/masuk", auth_pages.login_submit, methods=["POST"]),
    Route("/keluar", auth_pages.logout, methods=["POST"]),
    Route("/unggah", uploads.upload_page, methods=["GET"]),
    Route("/unggah", uploads.upload, methods=["POST"]),
    Route("/hasil/{batch_id:int}", uploads.result_page, methods=["GET"]),
    Route("/hasil/{batch_id:int}/status", uploads.status, methods=["GET"]),
    Route("/hasil/{batch_id:int}/laporan.xlsx", uploads.report, methods=["GET"]),
    Route("/hasil/{batch_id:int}/unggah-ulang", uploads.reupload_page, methods=["GET"]),
    Route("/persetujuan", approvals.queue_page, methods=["GET"]),
    Route("/persetujuan", approvals.decide, methods=["POST"]),
    Route("/persetujuan/baris", approvals.rows_fragment, methods=["GET"]),
    Route("/persetujuan/aliran", approvals.stream, methods=["GET"]),
    Route("/pengiriman", operations.deliveries_page, methods=["GET"]),
    Route("/pengiriman/{id}/ulang", operations.replay, methods=["POST"]),
    Route("/statistik", statistics.stats_page, methods=["GET"]),
    Route("/audit", operations.audit_page, methods=["GET"]),
    Mount("/aset", app=StaticFiles(directory=STATIC), name="aset"),
    Route("/{path:path}", auth_pages.not_found),
]


def mount() -> Mount:
    """The portal as the app's last route: everything the API's routes did not take."""
    return Mount("", app=PortalSession(Router(routes)))
