"""The web page for people: GET / and its static files under /static/.

Public (no API key): the page holds no data; its calls to the API send the key the user
types in. Files are served from a fixed list built at import, so no path from the URL
ever reaches the file system. The error-analysis renderer is the core's own
(shared/ner/report_assets), the one `ner evaluate --errors` inlines.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from shared.errors import NotFound
from shared.ner.report import ASSETS as SHARED_ASSETS

WEB = Path(__file__).resolve().parents[1] / "web"

# Only the page's own resources: scripts, styles and the API. uPlot sets styles through
# the CSSOM (allowed); the page has no inline script or style.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # Revalidated on every load (ETag): a new release's page never mixes with old files.
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


def _files() -> dict[str, Path]:
    files = {
        p.relative_to(WEB).as_posix(): p
        for p in WEB.rglob("*")
        if p.is_file() and p.suffix in MEDIA_TYPES and p.name != "index.html"
    }
    for name in ("analysis.js", "analysis.css"):
        files[name] = SHARED_ASSETS / name
    return files


FILES = _files()

router = APIRouter(include_in_schema=False)


@router.get("/")
def index() -> FileResponse:
    return FileResponse(WEB / "index.html", media_type=MEDIA_TYPES[".html"], headers=HEADERS)


@router.get("/static/{path:path}")
def static(path: str) -> FileResponse:
    file = FILES.get(path)
    if file is None:
        raise NotFound(f"no static file {path!r}")
    return FileResponse(file, media_type=MEDIA_TYPES[file.suffix], headers=HEADERS)
