"""Local demo site for scraper_project: a deterministic ASGI app plus a CLI.

Run it with ``python -m scraper_project.demo serve --port 0``; build the app
in-process with :func:`build_app`.
"""

from scraper_project.demo.site import (
    ASGIApp,
    DemoApp,
    Message,
    Middleware,
    Receive,
    RequestRecord,
    Scope,
    Send,
    SiteState,
    build_app,
    page_size,
)

__all__ = [
    "ASGIApp",
    "DemoApp",
    "Message",
    "Middleware",
    "Receive",
    "RequestRecord",
    "Scope",
    "Send",
    "SiteState",
    "build_app",
    "page_size",
]
