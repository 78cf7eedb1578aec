"""The JavaScript client's strict JSON and RFC 8785 against the gateway's (aiconexus_gateway.strictjson
and .canonical), on random values: both must accept the same texts and give the same bytes, and
refuse the same texts. The seed is new each run and shown on failure; JCS_SEED=<n> repeats a run."""

from __future__ import annotations

import base64
import json
import math
import os
import random
import struct
import subprocess
import time
from typing import Any

from aiconexus_gateway.canonical import CanonicalizationError, canonicalize
from aiconexus_gateway.strictjson import StrictJSONError, loads
from tests.js.node_tools import HERE, REPO, node

CASES = 1500

# characters that stress escaping and UTF-16 key order: controls, quote, backslash, slash, DEL,
# U+2028/9, BMP private use and non-characters (above the surrogates), astral characters (below
# them in UTF-16 order), combining marks
ALPHABET = ["a", "Z", "0", " ", "\"", "\\", "/", "\x00", "\x01", "\x1f", "\x7f", "\n", "\t", "\b", "\f",
            "\r", "é", "€", "\u2028", "\u2029", "\ue000", "\uffff", "\ufb01", "\U0001f600",
            "\U00010000", "\U0010ffff", "\u0301", "ß", "\u05d0"]


def random_string(rng: random.Random, limit: int = 8) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, limit)))


def random_number(rng: random.Random) -> int | float:
    kind = rng.randrange(7)
    if kind == 0:
        return rng.randint(-1000, 1000)
    if kind == 1:
        return rng.randint(-(2**70), 2**70)  # beyond 2**53: signed as the nearest double
    if kind == 2:
        while True:  # any finite double, from its bits
            value: float = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            if math.isfinite(value):
                return value
    if kind == 3:  # around the switches between plain and exponent notation
        exponent = rng.choice([-8, -7, -6, -5, 19, 20, 21, 22])
        return rng.choice([1, -1]) * rng.randint(1, 999) * 10.0 ** exponent
    if kind == 4:
        return rng.choice([0.0, -0.0, 0.1, 0.2 + 0.1, 1e21, 1e-7, 5e-324, 1.7976931348623157e308,
                           2**53, 2**53 + 1])
    if kind == 5:
        return round(rng.uniform(-1e6, 1e6), rng.randint(0, 9))
    return rng.random()


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 5 else 5)
    if kind == 0:
        return random_string(rng)
    if kind == 1:
        return random_number(rng)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4):
        return random_number(rng) if kind == 3 else random_string(rng, 3)
    if kind in (5, 6):
        return {random_string(rng, 4): random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}
    return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def spell(rng: random.Random, value: Any) -> str:
    """One of many JSON spellings of `value`."""
    return json.dumps(value, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, None, 1, "\t"]),
                      separators=rng.choice([(",", ":"), (", ", ": ")]))


def mutate(rng: random.Random, text: str) -> str:
    """A text that strict JSON refuses, or sometimes one that is still fine."""
    kind = rng.randrange(9)
    if kind == 0:
        return '{"k": 1, "k": ' + text + "}"
    if kind == 1:
        return '["\\ud800' + random_string(rng, 2).replace("\\", "").replace('"', "") + '", ' + text + "]"
    if kind == 2:
        return "[" + text + ", 1e" + str(rng.randint(300, 400)) + "]"
    if kind == 3:
        return "[" * 33 + text + "]" * 33
    if kind == 4:
        return "[" * 31 + text + "]" * 31  # within the limit, unless `text` nests too
    if kind == 5:
        return text + rng.choice([" x", "}", ",", " 1", "\x00"])
    if kind == 6:
        bad = rng.choice(["NaN", "Infinity", "-Infinity", "01", "1.", ".5", "+1", "'a'", "tru"])
        return "[" + text + ", " + bad + "]"
    if kind == 7:
        return '{"a": {"b": 1, "\\u0062": 2}, "c": ' + text + "}"
    return '"\\udc00\\ud83d"'


def python_result(text: str) -> dict[str, Any]:
    try:
        value, needs_full = loads(text)
        canonical = canonicalize(value, needs_full=needs_full)
        return {"ok": True, "canonical": base64.b64encode(canonical).decode()}
    except (StrictJSONError, CanonicalizationError) as exc:
        return {"ok": False, "message": str(exc)}


def test_javascript_and_python_agree_on_random_json() -> None:
    seed = int(os.environ.get("JCS_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    texts = [spell(rng, random_value(rng)) for _ in range(CASES)]
    texts += [mutate(rng, spell(rng, random_value(rng))) for _ in range(CASES // 3)]
    process = subprocess.run([node(), str(HERE / "canonical_worker.mjs")], cwd=REPO, timeout=120,
                             input="".join(json.dumps(text) + "\n" for text in texts),
                             capture_output=True, text=True)
    assert process.returncode == 0, process.stderr
    answers = [json.loads(line) for line in process.stdout.splitlines()]
    assert len(answers) == len(texts)
    accepted = refused = 0
    for text, javascript in zip(texts, answers, strict=True):
        python = python_result(text)
        context = f"seed {seed} (JCS_SEED={seed} repeats it): text {text[:300]!r}"
        assert javascript["ok"] == python["ok"], (
            f"{context}: Python {'accepts' if python['ok'] else 'refuses (' + python['message'] + ')'}, "
            f"JavaScript {'accepts' if javascript['ok'] else 'refuses (' + javascript['message'] + ')'}")
        if python["ok"]:
            assert javascript["canonical"] == python["canonical"], (
                f"{context}:\nPython     {base64.b64decode(python['canonical'])!r}\n"
                f"JavaScript {base64.b64decode(javascript['canonical'])!r}")
            accepted += 1
        else:
            refused += 1
    assert accepted >= CASES * 0.9 and refused >= CASES // 6, (accepted, refused)
