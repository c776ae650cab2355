"""Loopback servers for tests: the package's own helper (cedx.runtime.serve)."""

from cedx.runtime.serve import serve_in_thread as serve

__all__ = ["serve"]
