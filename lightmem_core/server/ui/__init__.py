"""The memory inspector: see, search and correct what an agent remembers, in a browser.

Served by ``lightmem serve`` at ``/ui`` (``ServerSettings(extra_routes=ui.routes())``);
``lightmem ui`` starts it for a local store. Server-made HTML from Jinja2 templates with
autoescape on, one stylesheet and one optional script, no build step. ``auth`` keeps
the sessions and CSRF tokens, ``pages`` the handlers, ``counts`` the indexed counts,
``svg`` the chart. Needs the ``server`` extra (Starlette, Jinja2).
"""

from __future__ import annotations

from typing import Any


def routes() -> list[Any]:
    """The inspector's routes, for ``ServerSettings.extra_routes``. Each call makes a new
    inspector with its own session secret: one per server."""
    from .pages import Inspector

    return Inspector().routes()


__all__ = ["routes"]
