"""Settings files: the one reader of the small TOML or JSON files a user hands flowgraph (prices,
endpoints), turning every way of failing to read one into a ``ConfigError`` that names it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from flowgraph.errors import ConfigError

__all__ = ["read_settings_file"]


def read_settings_file(path: Path, what: str, *, default_format: str, fix: str) -> Any:
    """The data in ``path``: JSON if it ends in ``.json``, TOML if it ends in ``.toml``, else
    ``default_format`` (``"json"`` or ``"toml"``).

    Args:
        path: the file.
        what: what it is, for the message (``"price file"``).
        default_format: how to read a file with another ending.
        fix: what the user should do, ending the message (``"fix or remove it"``).

    Raises:
        ConfigError: the file is missing, unreadable or not well-formed.
    """
    form = {".json": "json", ".toml": "toml"}.get(path.suffix, default_format)
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if form == "json" else tomllib.loads(text)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {what} {path}: {err}; {fix}") from None
