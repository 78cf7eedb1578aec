"""`python -m aiconexus_gateway` and the `aiconexus-gateway` console script."""

from __future__ import annotations

import sys

from .server.app import main as _main


def main() -> None:
    sys.exit(_main())


if __name__ == "__main__":
    main()
