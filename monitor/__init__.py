"""aiconexus-monitor: a live Textual terminal monitor of an AIConexus gateway.

It reads only the gateway's HTTP JSON (`/health`, `/agents`) and never imports
`aiconexus_gateway`, so it runs anywhere that can reach the gateway over HTTP.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
