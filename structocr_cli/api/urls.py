"""URLs of the local servers (the exporter, the mock), from the address a socket is bound
to: an IPv6 address in brackets, as a URL must have it."""

from __future__ import annotations

from typing import Any


def local_url(address: tuple[Any, ...], path: str, scheme: str = "http") -> str:
    """``scheme://host:port/path`` for a bound socket's ``address`` (``[::1]`` for IPv6)."""
    host, port = address[:2]
    host = host.decode() if isinstance(host, bytes) else str(host)
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}{path}"
