"""Gateway configuration: environment variables and command-line flags (a flag wins).

Each option is declared once in OPTIONS, which drives the flag parser, the environment lookup,
the validation and `--help`. Invalid values stop startup with one line that names the option.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import __version__
from .access import parse_origins
from .turn import parse_ice_urls

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
VERIFY_MODES = ("all", "handshake")


SECRET_FIELDS = frozenset({"turn_secret", "admin_token", "redis_url"})  # never echoed in errors or logs


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
    # limits (ratelimit.py, admission.py; SECURITY.md and docs/operations.md explain each)
    rate_limit: float = 100.0  # frames per second per connection; 0: no limit
    rate_burst: int = 200
    max_connections: int = 10000  # open WebSocket connections, registered or not; 0: no limit
    max_connections_per_ip: int = 0
    connection_rate: float = 500.0  # new connections per second, whole gateway; 0: no limit
    connection_burst: int = 1000
    max_outbound_buffer: int = 1024 * 1024  # unsent bytes per connection before "slow consumer"
    address_work_limit: float = 0.25  # share of a core per client address before it proves a DID
    # access control and transport
    admin_token: str | None = dataclasses.field(default=None, repr=False)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    allowed_origins: tuple[str, ...] = ()
    trust_proxy: bool = False
    # cluster mode (backends/; docs/design.md): on when redis_url is set
    redis_url: str | None = dataclasses.field(default=None, repr=False)  # may hold a password
    redis_prefix: str = "aiconexus"
    instance_id: str | None = None  # None: generated from the host name
    workers: int = 1  # gateway processes on one port (server/workers.py); >1 needs redis_url
    cluster_heartbeat_interval: float = 2.0
    cluster_heartbeat_ttl: float = 6.0
    cluster_delivery_timeout: float = 5.0
    # the mailbox (mailbox.py; docs/protocol.md "Mailbox"): messages with a ttl wait for offline agents
    mailbox_max_ttl: int = 3600  # seconds; 0: no mailbox
    mailbox_max_messages: int = 1000  # per recipient
    mailbox_max_bytes: int = 4 * 1024 * 1024  # per recipient
    mailbox_max_per_sender: int = 100  # per sender-recipient pair
    mailbox_max_total_bytes: int = 256 * 1024 * 1024  # every mailbox together
    mailbox_file: str | None = None  # durable single gateway: the mailbox survives restarts
    # discovery and presence (directory.py; docs/protocol.md section 21)
    watch_limit: int = 100  # DIDs one agent may WATCH
    presence_coalesce: float = 1.0  # seconds: at most one PRESENCE per watched DID per window
    discovery_rate: float = 5.0  # DISCOVER requests per second per agent; 0: no limit
    discovery_burst: int = 20

    # peer channels (turn.py; docs/protocol.md section 19): the ICE servers REGISTERED announces
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = dataclasses.field(default=None, repr=False)  # never sent to agents
    turn_ttl: float = 3600.0  # seconds a TURN credential issued to an agent stays valid

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


def _rate(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a number >= 0 (0: no limit)")
    return value


def _workers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 256:
        raise ValueError("must be a whole number from 1 to 256")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be a whole number >= 0 (0: no limit)")
    return value


def _max_ttl(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**31:
        raise ValueError("must be a whole number of seconds >= 0 (0: no mailbox)")
    return value


def _burst(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be a whole number >= 1")
    return value


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _token(text: str) -> str:
    if len(text.strip()) < 16 or text != text.strip():
        raise ValueError("must be at least 16 characters, without surrounding spaces")
    return text


def _origins(text: str) -> tuple[str, ...]:
    return parse_origins(text)


def _redis_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis://, rediss:// or unix:// URL")
    return text


def _name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", text):
        raise ValueError("must be 1-64 letters, digits, '.', '_', ':' or '-'")
    return text


def _stun_urls(text: str) -> tuple[str, ...]:
    try:
        return parse_ice_urls(text, ("stun", "stuns"))
    except ValueError as exc:
        raise ValueError(f"must be comma-separated stun:HOST[:PORT] URLs ({exc})") from None


def _turn_urls(text: str) -> tuple[str, ...]:
    try:
        return parse_ice_urls(text, ("turn", "turns"))
    except ValueError as exc:
        raise ValueError("must be comma-separated turn:HOST[:PORT][?transport=udp|tcp] or "
                         f"turns: URLs ({exc})") from None


def _secret(text: str) -> str:
    if not text.strip() or text != text.strip():
        raise ValueError("must not be empty, nor have surrounding spaces")
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
    Option("rate_limit", "RATE_LIMIT", "--rate-limit", _rate,
           "messages per second per connection; over it: ERROR RATE_LIMITED (0: no limit)"),
    Option("rate_burst", "RATE_BURST", "--rate-burst", _burst,
           "messages a connection may send at once above RATE_LIMIT"),
    Option("max_connections", "MAX_CONNECTIONS", "--max-connections", _count,
           "open WebSocket connections in total; more are refused with 503 (0: no limit)"),
    Option("max_connections_per_ip", "MAX_CONNECTIONS_PER_IP", "--max-connections-per-ip", _count,
           "open connections per client address; more are refused with 429 (0: no limit)"),
    Option("connection_rate", "CONNECTION_RATE", "--connection-rate", _rate,
           "new connections per second (reconnect storms); more get 503 + Retry-After (0: no limit)"),
    Option("connection_burst", "CONNECTION_BURST", "--connection-burst", _burst,
           "new connections accepted at once above CONNECTION_RATE"),
    Option("max_outbound_buffer", "MAX_OUTBOUND_BUFFER", "--max-outbound-buffer", _size,
           "bytes queued to one connection before it is closed as a slow consumer (4008)"),
    Option("address_work_limit", "ADDRESS_WORK_LIMIT", "--address-work-limit", _rate,
           "seconds per second of the gateway's time one client address may cost before its agents "
           "prove a DID (handshakes, control frames); over it: 429 / close 4429 (0: no limit)"),
    Option("admin_token", "ADMIN_TOKEN", "--admin-token", _token,
           "require Authorization: Bearer <token> on /agents and /metrics (prefer the env var)"),
    Option("tls_cert", "TLS_CERT", "--tls-cert", _text,
           "PEM certificate chain: serve wss:// and https:// (with TLS_KEY)"),
    Option("tls_key", "TLS_KEY", "--tls-key", _text, "PEM private key of TLS_CERT"),
    Option("tls_client_ca", "TLS_CLIENT_CA", "--tls-client-ca", _text,
           "PEM CA bundle: require client certificates signed by it (mutual TLS)"),
    Option("allowed_origins", "ALLOWED_ORIGINS", "--allowed-origins", _origins,
           "browser origins allowed to connect, comma-separated, or *; no Origin header is "
           "always allowed"),
    Option("trust_proxy", "TRUST_PROXY", "--trust-proxy", _flag,
           "true: take the client address from X-Forwarded-For / X-Real-Ip (behind a proxy only)"),
    Option("redis_url", "REDIS_URL", "--redis-url", _redis_url,
           "cluster mode: share agents with the other instances through this Redis "
           "(redis://[:password@]host:port/db, rediss:// for TLS)"),
    Option("redis_prefix", "REDIS_PREFIX", "--redis-prefix", _name,
           "namespace of every Redis key, so several gateways can share one Redis"),
    Option("workers", "GATEWAY_WORKERS", "--workers", _workers,
           "gateway processes sharing the port (SO_REUSEPORT); more than 1 needs REDIS_URL"),
    Option("instance_id", "INSTANCE_ID", "--instance-id", _name,
           "this instance's name in the cluster, logs and /agents (default: host name + random)"),
    Option("cluster_heartbeat_interval", "CLUSTER_HEARTBEAT_INTERVAL",
           "--cluster-heartbeat-interval", _positive_float,
           "seconds between an instance's heartbeats in Redis"),
    Option("cluster_heartbeat_ttl", "CLUSTER_HEARTBEAT_TTL", "--cluster-heartbeat-ttl",
           _positive_float, "seconds without a heartbeat after which an instance and its agents "
           "are gone from the cluster"),
    Option("cluster_delivery_timeout", "CLUSTER_DELIVERY_TIMEOUT", "--cluster-delivery-timeout",
           _positive_float, "seconds a frame for another instance may wait for its delivery "
           "answer before its sender gets ERROR DELIVERY_FAILED"),
    Option("stun_urls", "STUN_URLS", "--stun-urls", _stun_urls,
           "STUN servers announced to agents for peer channels, comma-separated stun: URLs"),
    Option("turn_urls", "TURN_URLS", "--turn-urls", _turn_urls,
           "TURN servers announced to agents with per-agent credentials (needs TURN_SECRET)"),
    Option("turn_secret", "TURN_SECRET", "--turn-secret", _secret,
           "the TURN server's static-auth-secret (coturn use-auth-secret); never sent to agents"),
    Option("turn_ttl", "TURN_TTL", "--turn-ttl", _positive_float,
           "seconds a TURN credential issued to an agent stays valid"),
    Option("mailbox_max_ttl", "MAILBOX_MAX_TTL", "--mailbox-max-ttl", _max_ttl,
           "longest 'ttl' in seconds a message may wait in an offline agent's mailbox "
           "(0: no mailbox; messages with a ttl are refused)"),
    Option("mailbox_max_messages", "MAILBOX_MAX_MESSAGES", "--mailbox-max-messages", _burst,
           "messages waiting for one recipient; more get ERROR MAILBOX_FULL"),
    Option("mailbox_max_bytes", "MAILBOX_MAX_BYTES", "--mailbox-max-bytes", _size,
           "bytes of messages waiting for one recipient"),
    Option("mailbox_max_per_sender", "MAILBOX_MAX_PER_SENDER", "--mailbox-max-per-sender", _burst,
           "messages from one sender waiting for one recipient (one agent cannot fill another's "
           "mailbox)"),
    Option("mailbox_max_total_bytes", "MAILBOX_MAX_TOTAL_BYTES", "--mailbox-max-total-bytes",
           _size, "bytes of messages waiting in every mailbox together (memory bound)"),
    Option("mailbox_file", "MAILBOX_FILE", "--mailbox-file", _text,
           "keep the mailbox in this file too (on the data volume), so waiting messages survive "
           "a restart of a single gateway (unset: in memory only; cluster mode keeps it in Redis)"),
    Option("watch_limit", "WATCH_LIMIT", "--watch-limit", _burst,
           "DIDs one agent may WATCH for presence events"),
    Option("presence_coalesce", "PRESENCE_COALESCE", "--presence-coalesce", _positive_float,
           "seconds within which a watched agent's further changes are held and announced as "
           "one PRESENCE event (a flapping agent cannot flood its watchers)"),
    Option("discovery_rate", "DISCOVERY_RATE", "--discovery-rate", _rate,
           "DISCOVER requests per second per agent (0: no limit); more get ERROR RATE_LIMITED"),
    Option("discovery_burst", "DISCOVERY_BURST", "--discovery-burst", _burst,
           "DISCOVER requests an agent may send at once"),
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
            shown = "(hidden)" if option.field in SECRET_FIELDS else repr(raw)
            raise ConfigError(f"invalid {source}={shown}: {reason}") from None
    return check(Config(**values))


def check(config: Config) -> Config:
    """Rules between options; ConfigError names them."""
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("TLS_CERT (--tls-cert) and TLS_KEY (--tls-key) go together: set both")
    if config.tls_client_ca and not config.tls_cert:
        raise ConfigError("TLS_CLIENT_CA (--tls-client-ca) needs TLS_CERT and TLS_KEY")
    if config.workers > 1 and not config.redis_url:
        raise ConfigError(f"GATEWAY_WORKERS={config.workers} (--workers) needs REDIS_URL: the "
                          "workers share their agents through Redis (or run one worker)")
    if config.mailbox_file and config.redis_url:
        raise ConfigError("MAILBOX_FILE (--mailbox-file) is for a single gateway; in cluster mode "
                          "(REDIS_URL) the mailbox is kept in Redis")
    if config.cluster_heartbeat_ttl <= config.cluster_heartbeat_interval:
        raise ConfigError("CLUSTER_HEARTBEAT_TTL must be longer than CLUSTER_HEARTBEAT_INTERVAL "
                          "(three intervals is a good value)")
    if config.turn_urls and not config.turn_secret:
        raise ConfigError("TURN_URLS (--turn-urls) needs TURN_SECRET (--turn-secret): the gateway "
                          "issues each agent TURN credentials made from it")
    return config
