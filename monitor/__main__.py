"""`python -m monitor`, the same as `aiconexus-monitor`."""

from __future__ import annotations

from .app import run

if __name__ == "__main__":
    run()
