"""An ERDDAP-compatible tabledap over the observation table, close enough for erddapy.

`install(app, deps)` adds the `/erddap` routes; `tabledap_answer` runs one request without HTTP.
"""

from __future__ import annotations

from coastlake.server.erddap.routes import install, router, tabledap_answer

__all__ = ["install", "router", "tabledap_answer"]
