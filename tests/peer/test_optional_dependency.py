"""Without aiortc (the `webrtc` extra), the SDK still imports and peer calls name the extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """
import sys
sys.modules["aiortc"] = None  # as if the webrtc extra were not installed
import aiconexus_gateway.client
from aiconexus_gateway.client.peer import webrtc
try:
    webrtc._aiortc()
except ImportError as exc:
    print(exc)
"""


def test_a_missing_aiortc_is_a_clear_import_error_naming_the_extra() -> None:
    result = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pip install 'aiconexus-gateway[webrtc]'" in result.stdout


def test_the_sdk_does_not_import_aiortc_until_a_channel_is_asked_for() -> None:
    program = ("import sys, aiconexus_gateway.client, aiconexus_gateway.client.peer\n"
               "print('aiortc' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
