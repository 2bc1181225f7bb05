"""A config from a file or the environment, for the processes users start themselves.

The CLI and the MCP server are started by people and by MCP clients (Claude Desktop,
Cursor) that can pass a file path or environment variables but not a Python dict.
Both read the same keys as ``LightMemory.from_config`` (upstream or native), so a
config written for the library works unchanged.

Sources, later ones win (nested sections are merged key by key):

1. the file named by ``--config`` or ``LIGHTMEM_CONFIG`` (``.json``, ``.toml``, or
   ``.yaml``/``.yml`` when PyYAML is installed);
2. ``LIGHTMEM_CONFIG_JSON``: the config itself, inline, as a JSON object;
3. ``--path`` or ``LIGHTMEM_PATH``: the store directory (``store.path``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from .errors import ConfigError

ENV_CONFIG_FILE = "LIGHTMEM_CONFIG"
ENV_CONFIG_JSON = "LIGHTMEM_CONFIG_JSON"
ENV_STORE_PATH = "LIGHTMEM_PATH"


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a config file; the suffix picks the format (JSON when unknown)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("config_file", f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError(
                    "config_file", "YAML configs need PyYAML (pip install pyyaml); or use JSON/TOML"
                ) from None
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - each parser has its own error type
        raise ConfigError("config_file", f"{str(p)!r} is not valid {suffix.lstrip('.') or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("config_file", f"{str(p)!r} must hold an object of config keys, got {type(data).__name__}")
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``, nested dicts merged rather than replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    config_file: Optional[str | os.PathLike[str]] = None,
    *,
    store_path: Optional[str | os.PathLike[str]] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> dict[str, Any]:
    """The config dict for ``LightMemory.from_config`` from arguments and environment."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    file = config_file or env.get(ENV_CONFIG_FILE)
    if file:
        data = read_config_file(file)
    inline = env.get(ENV_CONFIG_JSON)
    if inline:
        try:
            extra = json.loads(inline)
        except json.JSONDecodeError as exc:
            raise ConfigError(ENV_CONFIG_JSON, f"not valid JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise ConfigError(ENV_CONFIG_JSON, f"expected a JSON object, got {type(extra).__name__}")
        data = merge(data, extra)
    path = store_path or env.get(ENV_STORE_PATH)
    if path:
        data = merge(data, {"store": {"path": str(Path(path).expanduser())}})
    return data
