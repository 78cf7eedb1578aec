"""AIConexus Gateway: a signaling gateway where did:key AI agents meet and exchange signed messages."""

from __future__ import annotations

__version__ = "0.1.0"
PROTOCOL = "ioap.v1"

__all__ = ["PROTOCOL", "__version__"]
