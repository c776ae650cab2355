"""Optional accelerators (the `fast` and `server` extras), imported on first use so that
importing cedx stays cheap; one place for the client and the trust layer."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any


@cache
def orjson() -> Any:
    """The orjson module, or None when it is not installed."""
    try:
        return importlib.import_module("orjson")
    except ImportError:
        return None
