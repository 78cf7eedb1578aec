"""The SDK is a client library: importing it pulls in no server policy and no Prometheus."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def modules_after(statement: str) -> set[str]:
    """The modules a clean interpreter has loaded after running `statement`."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    return set(json.loads(result.stdout))


def test_importing_the_sdk_does_not_import_prometheus_or_server_code() -> None:
    loaded = modules_after("import aiconexus_gateway.client")
    assert "aiconexus_gateway.client.gateway_client" in loaded  # the import did happen
    unwanted = {"prometheus_client", "aiconexus_gateway.limits", "aiconexus_gateway.hub",
                "aiconexus_gateway.metrics", "aiconexus_gateway.server", "redis"}
    assert not unwanted & loaded, sorted(unwanted & loaded)


def test_the_sans_io_modules_import_no_io_library() -> None:
    """session.py, url.py, reconnect.py, errors.py and backoff.py are the pure core: only the
    Tornado pump (gateway_client.py) may import Tornado."""
    pure = ["client/session.py", "client/url.py", "client/reconnect.py", "client/errors.py",
            "backoff.py"]
    for name in pure:
        tree = ast.parse((ROOT / "aiconexus_gateway" / name).read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        io = {module for module in imported
              if module.split(".")[0] in {"tornado", "asyncio", "socket", "ssl", "redis",
                                          "prometheus_client"}}
        assert not io, f"{name} imports {sorted(io)}"
