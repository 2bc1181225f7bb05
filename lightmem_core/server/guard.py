"""What every HTTP request passes before it reaches a route: Host and Origin, and body size.

DNS rebinding: a web page the user merely visits can make the browser send requests to
127.0.0.1 under the page's own host name. The browser still says which host it thinks
it talks to (``Host``) and, for scripts, which page sent it (``Origin``), so a server on
loopback refuses any request whose ``Host`` or ``Origin`` is not on its allow-list, keys
or no keys (the MCP specification asks this of every HTTP server).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, MutableMapping, Optional
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

# The ASGI types as Starlette spells them (mappings, not dicts), so a Starlette app fits.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _hostname(value: str) -> str:
    """``example.com:8080`` / ``[::1]:8765`` / ``127.0.0.1`` -> the name without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@dataclass
class GuardSettings:
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES
    allowed_origins: tuple[str, ...] = ()  # full origins ("https://app.example"); loopback origins always pass
    max_body_bytes: int = 8 * 1024 * 1024
    exempt_paths: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def for_bind(
        cls,
        host: str,
        extra_hosts: Iterable[str] = (),
        extra_origins: Iterable[str] = (),
        max_body_bytes: int = 8 * 1024 * 1024,
    ) -> "GuardSettings":
        hosts = {*LOOPBACK_NAMES, *(_hostname(h) for h in extra_hosts)}
        if host not in ("0.0.0.0", "::", ""):
            hosts.add(_hostname(host))
        return cls(
            allowed_hosts=tuple(sorted(hosts)),
            allowed_origins=tuple(o.rstrip("/").lower() for o in extra_origins),
            max_body_bytes=max_body_bytes,
        )


async def _refuse(send: Send, status: int, kind: str, message: str, field_name: Optional[str] = None) -> None:
    body = json.dumps({"error": {"type": kind, "field": field_name, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """ASGI middleware: Host/Origin allow-list, then the body-size limit (413, read or declared)."""

    def __init__(self, app: ASGIApp, settings: GuardSettings) -> None:
        self.app = app
        self.settings = settings

    def _origin_ok(self, origin: str) -> bool:
        if origin == "null":
            return False
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        return (
            parts.hostname in LOOPBACK_NAMES
            or parts.hostname in self.settings.allowed_hosts
            or origin.rstrip("/").lower() in self.settings.allowed_origins
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = _hostname(headers.get("host", ""))
        if host not in self.settings.allowed_hosts:
            await _refuse(send, 403, "Forbidden", f"host {headers.get('host', '')!r} is not allowed", "Host")
            return
        origin = headers.get("origin")
        if origin is not None and not self._origin_ok(origin):
            await _refuse(send, 403, "Forbidden", f"origin {origin!r} is not allowed", "Origin")
            return
        limit = self.settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, 413, "PayloadTooLarge", f"body over {limit} bytes", "body")
            return
        seen = 0
        refused = False

        async def limited() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            if refused:
                await _refuse(send, 413, "PayloadTooLarge", f"body over {limit} bytes", "body")


class _TooLarge(Exception):
    pass
