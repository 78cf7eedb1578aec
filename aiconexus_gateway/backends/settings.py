"""Cluster mode's settings (REDIS_URL and the CLUSTER_* options) and the names they hold. No I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    redis_url: str
    prefix: str = "aiconexus"
    instance_id: str = "gateway"
    heartbeat_interval: float = 2.0
    heartbeat_ttl: float = 6.0
    delivery_timeout: float = 5.0
    inbox_maxlen: int = 1_000_000  # a bound for a dead instance's inbox, far above normal backlog
    dead_inbox_ttl: int = 600  # seconds a dead instance's inbox is kept (diagnostics), then dropped
    read_batch: int = 512
    read_block_ms: int = 1000
    keys: Keys = field(init=False)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.prefix):
            raise ValueError(f"REDIS_PREFIX {self.prefix!r}: use 1-64 letters, digits, . _ : -")
        if not NAME_PATTERN.match(self.instance_id):
            raise ValueError(f"INSTANCE_ID {self.instance_id!r}: use 1-64 letters, digits, . _ : -")
        if not self.heartbeat_ttl > self.heartbeat_interval:
            raise ValueError("CLUSTER_HEARTBEAT_TTL must be longer than CLUSTER_HEARTBEAT_INTERVAL")
        object.__setattr__(self, "keys", Keys(self.prefix))

    @property
    def expiry_guard(self) -> float:
        """How much earlier than the sender's deadline a receiver stops delivering (clock error)."""
        return min(0.25, self.delivery_timeout / 4)


class Keys:
    """Every Redis key of one cluster, under its prefix."""

    __slots__ = (
        "activity",
        "agents",
        "epoch",
        "generation",
        "instances",
        "order",
        "prefix",
        "route",
        "session",
    )

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.route = f"{prefix}:route"  # hash DID -> instance id (what routing reads)
        self.session = f"{prefix}:session"  # hash DID -> session id (compare-and-delete)
        self.agents = f"{prefix}:agents"  # hash DID -> Presence JSON
        self.activity = f"{prefix}:activity"  # hash DID -> Activity JSON
        self.order = f"{prefix}:order"  # zset DID by connected_at (paging /agents)
        self.instances = f"{prefix}:instances"  # set of instance ids that published presence
        self.generation = f"{prefix}:generation"  # counter ordering registrations cluster-wide
        self.epoch = f"{prefix}:epoch"  # random value; missing or changed = Redis lost its data

    def members(self, instance: str) -> str:
        return f"{self.prefix}:members:{instance}"  # set of DIDs an instance published

    def heartbeat(self, instance: str) -> str:
        return f"{self.prefix}:heartbeat:{instance}"

    def inbox(self, instance: str) -> str:
        return f"{self.prefix}:inbox:{instance}"


def generate_instance_id(hostname: str, suffix: str) -> str:
    """A readable default INSTANCE_ID: the host name (the pod name under Kubernetes) + a suffix."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", hostname).strip(".-_")[:40] or "gateway"
    return f"{host}-{suffix}"


def redact_url(url: str) -> str:
    """`url` without its password, for logs and /health."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
