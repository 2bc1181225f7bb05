"""The LightMem server: one process owns a memory, every other process is a client.

``api`` (the operation table both sides speak), ``keys`` (API keys and what they reach),
``guard`` (Host/Origin and body limits), ``worker`` (extraction off the request path),
``app`` (the Starlette app and ``serve``). Starlette and uvicorn are imported only when
a server is built (extra ``server``).
"""

from .keys import AuthError, Key, KeyStore, keys_path

__all__ = ["AuthError", "Key", "KeyStore", "create_app", "keys_path", "serve", "ServerSettings"]


def __getattr__(name: str):  # noqa: ANN202 - lazy: the web stack loads only for a server
    if name in ("create_app", "serve", "ServerSettings"):
        from . import app

        return getattr(app, name)
    raise AttributeError(name)
