"""Gateway configuration: environment variables and command-line flags (a flag wins).

Each option is declared once in OPTIONS, which drives the flag parser, the environment lookup,
the validation and `--help`. Invalid values stop startup with one line that names the option.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import __version__

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
VERIFY_MODES = ("all", "handshake")


class ConfigError(ValueError):
    """A configuration value is invalid; the message is the one line shown at startup."""


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    agent_timeout: float = 300.0
    ping_interval: float = 20.0
    challenge_timeout: float = 30.0
    max_message_size: int = 65536
    key_file: str | None = None
    log_format: str = "text"
    log_file: str | None = None
    verify_signatures: str = "all"
    drain_timeout: float = 10.0

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def _size(text: str) -> int:
    value = int(text)
    if value < 1024:
        raise ValueError("must be at least 1024 bytes")
    return value


def _choice(choices: Sequence[str], upper: bool = False) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.upper() if upper else text.lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value
    return parse


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


@dataclass(frozen=True)
class Option:
    field: str
    env: str
    flag: str
    parse: Callable[[str], Any]
    help: str


OPTIONS: tuple[Option, ...] = (
    Option("host", "GATEWAY_HOST", "--host", _text, "bind address (0.0.0.0: every interface)"),
    Option("port", "GATEWAY_PORT", "--port", _port, "port for ws:// and http:// (0: any free port)"),
    Option("log_level", "LOG_LEVEL", "--log-level", _choice(LOG_LEVELS, upper=True),
           "DEBUG, INFO, WARNING or ERROR"),
    Option("agent_timeout", "AGENT_TIMEOUT", "--agent-timeout", _positive_float,
           "seconds without any message from an agent before it is disconnected"),
    Option("ping_interval", "PING_INTERVAL", "--ping-interval", _positive_float,
           "WebSocket ping period in seconds; a peer that does not answer is closed"),
    Option("challenge_timeout", "CHALLENGE_TIMEOUT", "--challenge-timeout", _positive_float,
           "seconds a new connection has to register"),
    Option("max_message_size", "MAX_MESSAGE_SIZE", "--max-message-size", _size,
           "largest frame in bytes; larger frames close the connection with 1009"),
    Option("key_file", "GATEWAY_KEY_FILE", "--key-file", _text,
           "the gateway's Ed25519 key file (created, mode 0600, when missing)"),
    Option("log_format", "LOG_FORMAT", "--log-format", _choice(LOG_FORMATS),
           "text (for people) or json (one object per line)"),
    Option("log_file", "LOG_FILE", "--log-file", _text, "also write logs to this file, rotated"),
    Option("verify_signatures", "VERIFY_SIGNATURES", "--verify-signatures",
           _choice(VERIFY_MODES), "all: verify every message; handshake: REGISTER only"),
    Option("drain_timeout", "DRAIN_TIMEOUT", "--drain-timeout", _positive_float,
           "seconds a SIGTERM drain may take before the process exits"),
)


def parser() -> argparse.ArgumentParser:
    defaults = Config()
    result = argparse.ArgumentParser(
        prog="aiconexus-gateway",
        description="AIConexus Gateway: WebSocket signaling for did:key AI agents.",
        epilog="Every flag can also be set by its environment variable; a flag wins.",
    )
    for option in OPTIONS:
        default = getattr(defaults, option.field)
        result.add_argument(option.flag, dest=option.field, metavar=option.env,
                            help=f"{option.help} [env {option.env}; default {default}]")
    result.add_argument("--version", action="version", version=f"aiconexus-gateway {__version__}")
    return result


def load(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Config:
    """The configuration from `argv` and `environ`; ConfigError names the first bad value."""
    args = parser().parse_args(argv)
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = getattr(args, option.field)
        source = option.flag
        if raw is None and environ.get(option.env, "") != "":
            raw, source = environ[option.env], option.env
        if raw is None:
            continue
        try:
            values[option.field] = option.parse(raw)
        except ValueError as exc:
            reason = str(exc) if "must" in str(exc) else "must be a number"
            raise ConfigError(f"invalid {source}={raw!r}: {reason}") from None
    return Config(**values)
