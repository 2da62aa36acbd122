"""An ERDDAP-compatible tabledap over the observation table, close enough for erddapy.

`router(ctx)` gives the `/erddap` routes; `tabledap_answer` runs one request without HTTP.
"""

from __future__ import annotations

from lake.erddap.routes import router, tabledap_answer

__all__ = ["router", "tabledap_answer"]
