"""The Redis bus: presence hashes, heartbeats with a TTL, one Stream inbox per instance.

Every write goes through one writer connection, one pipeline per batch, so a burst of frames
costs one round trip; decisions that must be atomic (route + append, register + takeover,
compare-and-delete, reaping a dead instance) are Lua scripts. The inbox is read with XREAD from the
last id processed, so a reconnect continues where it stopped instead of losing what was published
meanwhile (the pub/sub failure of socket.io-redis and channels_redis). A random `epoch` key tells
an instance that Redis came back empty, so the senders of the frames it lost get an ERROR.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import NoScriptError, RedisError
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without redis
    raise ImportError(
        "cluster mode (REDIS_URL) needs the Redis client: "
        "pip install 'aiconexus-gateway[redis]'") from exc

from .bus import (
    AnnounceOp,
    BusError,
    DuplicateInstanceError,
    HeartbeatResult,
    Op,
    PostOp,
    PresenceOp,
    Published,
    Result,
    Route,
    RouteKind,
    SendOp,
)
from .presence import Activity, Presence
from .settings import ClusterSettings, generate_instance_id, redact_url
from .wire import ClusterMessage, ClusterMessageError, decode, encode

if TYPE_CHECKING:
    from ..clock import Clock
    from ..config import Config

log = logging.getLogger("aiconexus.gateway.cluster")

RESTORE_CHUNK = 500
SCAN_PAGE = 1000  # presences per HSCAN call when reading the whole cluster (never one HGETALL)
CLOCK_SAMPLE_MAX_RTT = 0.05  # seconds; a TIME round trip slower than this is not a clock sample

# Route frames: for each, find the owner, check its heartbeat, append to its inbox (atomically, so
# an owner reaped in between cannot receive a frame nobody will read). The answer per frame is the
# owner id, "!" + owner when its heartbeat expired, or "" when no instance holds the recipient.
# ARGV: prefix, maxlen, then per frame: to, origin, token, type, expires_ms, text.
ROUTE = """
local p, maxlen = ARGV[1], ARGV[2]
local route, out, alive = p .. ':route', {}, {}
for i = 3, #ARGV - 5, 6 do
  local to = ARGV[i]
  local owner = redis.call('HGET', route, to)
  if not owner then
    out[#out + 1] = ''
  else
    local live = alive[owner]
    if live == nil then
      live = redis.call('EXISTS', p .. ':heartbeat:' .. owner) == 1
      alive[owner] = live
    end
    if live then
      redis.call('XADD', p .. ':inbox:' .. owner, 'MAXLEN', '~', maxlen, '*',
        'k', 'D', 'o', ARGV[i + 1], 't', ARGV[i + 2], 'd', to, 'y', ARGV[i + 3],
        'x', ARGV[i + 4], 'm', ARGV[i + 5])
      out[#out + 1] = owner
    else
      out[#out + 1] = '!' .. owner
    end
  end
end
return out
"""

# Lua shared by the presence scripts below (prepended to each that uses it): `announce` appends a
# Presence to every other instance's inbox (body '' says offline); `forget` removes a DID's
# presence entries (its members set is the caller's business).
PRESENCE_LUA = """
local function announce(p, me, did, sid, body, maxlen, instances)
  local n = 0
  for _, inst in ipairs(instances or redis.call('SMEMBERS', p .. ':instances')) do
    if inst ~= me then
      redis.call('XADD', p .. ':inbox:' .. inst, 'MAXLEN', '~', maxlen, '*',
        'k', 'P', 'o', me, 'd', did, 's', sid, 'j', body)
      n = n + 1
    end
  end
  return n
end
local function forget(p, did)
  redis.call('HDEL', p .. ':route', did)
  redis.call('HDEL', p .. ':session', did)
  redis.call('HDEL', p .. ':agents', did)
  redis.call('HDEL', p .. ':activity', did)
  redis.call('ZREM', p .. ':order', did)
end
"""

# Register a DID here and tell every other instance (the directory's replica): one call per
# registration. A newer generation wins cluster-wide; the previous owner (if alive) gets a
# Takeover in its inbox. In 'restore' mode (re-publishing after an outage) an entry held by a live
# instance for a session that connected later wins instead: answer -1 (and nothing is announced).
# ARGV: prefix, me, did, session_id, presence_json, connected_at, mode, maxlen.
REGISTER = PRESENCE_LUA + """
local p, me, did, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local route = p .. ':route'
local old = redis.call('HGET', route, did)
local old_alive = old and old ~= me and redis.call('EXISTS', p .. ':heartbeat:' .. old) == 1
if ARGV[7] == 'restore' and old_alive then
  local theirs = redis.call('ZSCORE', p .. ':order', did)
  if theirs and tonumber(theirs) > tonumber(ARGV[6]) then return -1 end
end
local gen = redis.call('INCR', p .. ':generation')
if ARGV[7] ~= 'restore' or redis.call('HGET', p .. ':session', did) ~= sid then
  redis.call('HDEL', p .. ':activity', did)  -- a new session starts with fresh counters
end
redis.call('HSET', route, did, me)
redis.call('HSET', p .. ':session', did, sid)
redis.call('HSET', p .. ':agents', did, ARGV[5])
redis.call('ZADD', p .. ':order', ARGV[6], did)
redis.call('SADD', p .. ':members:' .. me, did)
if old and old ~= me then
  redis.call('SREM', p .. ':members:' .. old, did)
  if old_alive then
    redis.call('XADD', p .. ':inbox:' .. old, 'MAXLEN', '~', ARGV[8], '*',
      'k', 'T', 'o', me, 'd', did, 'g', gen)
  end
end
announce(p, me, did, sid, ARGV[5], ARGV[8])
return gen
"""

# Remove a DID's presence if it is still ours (and still this session, unless session is ''),
# and tell the others it went offline when no session holds it now (a replaced session's end is
# covered by its successor's announcement). ARGV: prefix, me, did, session_id, maxlen, announce.
UNREGISTER = PRESENCE_LUA + """
local p, me, did, sid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local removed = 0
if redis.call('HGET', p .. ':route', did) ~= me then
  redis.call('SREM', p .. ':members:' .. me, did)
elseif sid == '' or redis.call('HGET', p .. ':session', did) == sid then
  forget(p, did)
  redis.call('SREM', p .. ':members:' .. me, did)
  removed = 1
end
if ARGV[6] == '1' and not redis.call('HGET', p .. ':session', did) then
  announce(p, me, did, sid, '', ARGV[5])
end
return removed
"""

# Remove every presence entry an instance still owns: a dead one (only if its heartbeat is really
# gone) or ourselves on a drain (mode 'withdraw'). Its inbox is kept a while for diagnostics.
# ARGV: prefix, instance, mode ('reap' | 'withdraw'), dead_inbox_ttl.
REAP = PRESENCE_LUA + """
local p, inst = ARGV[1], ARGV[2]
if ARGV[3] == 'reap' and redis.call('EXISTS', p .. ':heartbeat:' .. inst) == 1 then return -1 end
local n = 0
for _, did in ipairs(redis.call('SMEMBERS', p .. ':members:' .. inst)) do
  if redis.call('HGET', p .. ':route', did) == inst then
    forget(p, did)
    n = n + 1
  end
end
redis.call('DEL', p .. ':members:' .. inst)
if ARGV[3] == 'reap' then
  redis.call('SREM', p .. ':instances', inst)
  redis.call('EXPIRE', p .. ':inbox:' .. inst, ARGV[4])
end
return n
"""

# Tell every other instance that a DID's session came online again (body: its Presence JSON; only
# if that session still holds the DID): an unlisted agent's audience changed. Registrations and
# unregistrations announce themselves (REGISTER, UNREGISTER). Discovery and presence (directory.py)
# keep a replica of the cluster's agents from these.
# ARGV: prefix, me, did, session_id, body, maxlen.
ANNOUNCE = PRESENCE_LUA + """
local p, me, did, sid, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = redis.call('HGET', p .. ':session', did)
if body == '' then
  if now then return 0 end
elseif now ~= sid then
  return 0
end
return announce(p, me, did, sid, body, ARGV[6])
"""

# Before this instance withdraws its presence (a drain, leaving): tell the others that each of
# its agents goes offline. ARGV: prefix, me, maxlen.
ANNOUNCE_WITHDRAW = PRESENCE_LUA + """
local p, me = ARGV[1], ARGV[2]
local instances = redis.call('SMEMBERS', p .. ':instances')
for _, did in ipairs(redis.call('SMEMBERS', p .. ':members:' .. me)) do
  if redis.call('HGET', p .. ':route', did) == me then
    announce(p, me, did, redis.call('HGET', p .. ':session', did) or '', '', ARGV[3], instances)
  end
end
return 0
"""

# Publish counters of agents still owned by the given sessions. ARGV: prefix, then did, session, json.
ACTIVITY = """
local p = ARGV[1]
for i = 2, #ARGV - 2, 3 do
  if redis.call('HGET', p .. ':session', ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', p .. ':activity', ARGV[i], ARGV[i + 2])
  end
end
return 0
"""


SCRIPTS = {"route": ROUTE, "register": REGISTER, "unregister": UNREGISTER, "reap": REAP,
           "announce": ANNOUNCE, "announce_withdraw": ANNOUNCE_WITHDRAW, "activity": ACTIVITY}
# Called by digest (EVALSHA): Redis neither receives nor hashes a script's text per call. They are
# loaded at every connect; a Redis that lost them (SCRIPT FLUSH) answers NOSCRIPT, which makes
# the node reconnect, and so load them again.
SHAS = {name: hashlib.sha1(script.encode()).hexdigest() for name, script in SCRIPTS.items()}


def settings_from_config(config: Config) -> ClusterSettings:
    """ClusterSettings from the gateway Config; ValueError names a bad combination."""
    assert config.redis_url is not None
    instance_id = config.instance_id or generate_instance_id(socket.gethostname(),
                                                             secrets.token_hex(3))
    return ClusterSettings(
        redis_url=config.redis_url,
        prefix=config.redis_prefix,
        instance_id=instance_id,
        heartbeat_interval=config.cluster_heartbeat_interval,
        heartbeat_ttl=config.cluster_heartbeat_ttl,
        delivery_timeout=config.cluster_delivery_timeout,
    )


def _is_redis_failure(exc: BaseException) -> bool:
    return isinstance(exc, (RedisError, OSError, asyncio.TimeoutError))


def route_from_script(answer: bytes | None) -> Route:
    """The routing script's answer for one frame: b"" unknown, b"!id" gone, b"id" remote."""
    if not answer:
        return Route(RouteKind.UNKNOWN)
    if answer.startswith(b"!"):
        return Route(RouteKind.GONE, answer[1:].decode())
    return Route(RouteKind.REMOTE, answer.decode())


class HeartbeatKeeper:
    """This instance's heartbeat keeper process (keeper.py says why a process): started once
    our presence is published, stopped before we leave."""

    def __init__(self, url: str, key: str, value: bytes, interval: float, ttl_ms: int,
                 name: str) -> None:
        self.interval = interval
        self._settings = json.dumps({"url": url, "key": key, "value": value.decode(),
                                     "interval": interval, "ttl_ms": ttl_ms, "name": name,
                                     "parent": os.getpid()}).encode() + b"\n"
        self._proc: subprocess.Popen[bytes] | None = None

    def activate(self) -> None:
        """Refresh the key from now on (starts the keeper the first time)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
            try:
                proc = self._proc = subprocess.Popen(
                    [sys.executable, "-m", "aiconexus_gateway.backends.keeper"],
                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    env={**os.environ, "PYTHONPATH": path}, close_fds=True)
                self._write(self._settings)
            except OSError as exc:  # the writer's own refresh goes on
                log.warning("cluster: cannot start the heartbeat keeper: %s", exc)
                return
        self._write(b"1\n")

    def _write(self, data: bytes) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.write(data)
                proc.stdin.flush()

    def stop(self) -> None:
        """Stop refreshing for good (end of file: the keeper exits); waits for it, bounded."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.close()
        try:
            proc.wait(self.interval + 2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RedisBus:
    """The cluster bus (bus.Bus) on one Redis: standalone, or a Sentinel-managed primary's URL."""

    description = "redis"

    def __init__(self, settings: ClusterSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.instance_id = settings.instance_id
        self.keys = settings.keys
        self.url = redact_url(settings.redis_url)
        self.cursor = b"0-0"  # id of the last inbox entry processed
        self.epoch: Any = None  # bytes once connected
        self.clock_offset_ms = 0.0  # Redis clock minus our wall clock
        self._heartbeat_value = f"{os.getpid()}:{secrets.token_hex(8)}".encode()
        common: dict[str, Any] = {
            "protocol": 2,
            "retry": Retry(NoBackoff(), 0),  # fail fast: the node has its own reconnect loop
            "socket_connect_timeout": 1.0,
            "health_check_interval": 0,
            "client_name": f"aiconexus-{self.instance_id}"[:64],
        }
        # A slow answer is not a failure: on a saturated host Redis may answer late, and giving up
        # after 2 s turned lateness into outages (reconnects, restores). A Redis that is gone
        # fails the connection at once; only a silent one waits this long.
        self._redis = Redis.from_url(settings.redis_url,
                                     socket_timeout=max(2.0, settings.heartbeat_ttl), **common)
        # The inbox reader blocks in XREAD on a connection of its own.
        block = settings.read_block_ms / 1000
        self._reader = Redis.from_url(settings.redis_url, socket_timeout=block + 2.0,
                                      max_connections=1, **common)
        self._inbox = self.keys.inbox(self.instance_id)
        self._missing: set[str] = set()  # instances whose heartbeat was missing at our last one
        self._keeper = HeartbeatKeeper(settings.redis_url, self.keys.heartbeat(self.instance_id),
                                       self._heartbeat_value, settings.heartbeat_interval,
                                       self._ttl_ms(), f"aiconexus-hb-{self.instance_id}"[:64])

    async def _run(self, coroutine: Any) -> Any:
        try:
            return await coroutine
        except BaseException as exc:
            if _is_redis_failure(exc):
                raise BusError(_describe(exc)) from exc
            raise

    # -- connection ----------------------------------------------------------------------------------

    async def connect(self, *, first: bool) -> bool:
        await self._redis.connection_pool.disconnect()  # sockets to a Redis that went away
        await self._reader.connection_pool.disconnect()
        return bool(await self._run(self._connect(first)))

    async def _connect(self, first: bool) -> bool:
        keys = self.keys
        epoch = await self._redis.get(keys.epoch)
        if epoch is None:
            await self._redis.set(keys.epoch, secrets.token_hex(8), nx=True)
            epoch = await self._redis.get(keys.epoch)
        lost = self.epoch is not None and epoch != self.epoch
        if first:
            await self._claim_instance_id()
        self.epoch = epoch
        if lost:
            self.cursor = b"0-0"  # the inbox is a new stream
        pipe = self._redis.pipeline(transaction=False)
        for script in SCRIPTS.values():
            pipe.script_load(script)
        await pipe.execute()
        await self._measure_clock()
        log.info("cluster: connected to %s as instance %s (prefix %s)", self.url, self.instance_id,
                 keys.prefix, extra={"instance": self.instance_id})
        return lost

    async def _claim_instance_id(self) -> None:
        """Refuse an INSTANCE_ID whose heartbeat another live instance keeps refreshing.

        A heartbeat left by a previous run that died expires within CLUSTER_HEARTBEAT_TTL without
        being refreshed: we watch it until it expires (then take the id over) or is refreshed
        (its time to live goes up: a live duplicate, DuplicateInstanceError).
        """
        key = self.keys.heartbeat(self.instance_id)
        owner = await self._redis.get(key)
        if owner is None or owner == self._heartbeat_value:
            return
        settings = self.settings
        step = max(0.01, settings.heartbeat_interval / 5)
        deadline = self.clock.monotonic() + settings.heartbeat_ttl + settings.heartbeat_interval
        previous = await self._redis.pttl(key)
        if previous >= 0:
            log.info("cluster: INSTANCE_ID %s has a heartbeat in Redis; watching it for up to %g s "
                     "to tell a live instance from a stopped one", self.instance_id,
                     settings.heartbeat_ttl + settings.heartbeat_interval,
                     extra={"instance": self.instance_id})
        while previous >= 0 and self.clock.monotonic() < deadline:
            await asyncio.sleep(step)
            ttl = await self._redis.pttl(key)
            if ttl > previous or (ttl >= 0 and await self._redis.get(key) != owner):
                raise DuplicateInstanceError(
                    f"INSTANCE_ID {self.instance_id} is in use by another live instance of this "
                    f"cluster (Redis {self.url}, prefix {self.keys.prefix}); give each instance "
                    "its own INSTANCE_ID")
            previous = ttl
        log.warning("cluster: INSTANCE_ID %s was used by an instance that stopped; taking it over",
                    self.instance_id, extra={"instance": self.instance_id})

    async def _measure_clock(self) -> None:
        before = self.clock.wall()
        seconds, micros = await self._redis.time()
        self._clock_sample(before, seconds, micros, self.clock.wall())

    def _clock_sample(self, before: float, seconds: int, micros: int, after: float) -> None:
        """Redis clock minus ours, from a TIME answer seen between `before` and `after`. A slow
        round trip (a paused process, a stalled Redis) says little about the offset: ignored."""
        if after - before <= CLOCK_SAMPLE_MAX_RTT:
            self.clock_offset_ms = (seconds * 1000 + micros / 1000) - (before + after) * 500

    async def rejoin(self) -> bool:
        """After a reconnect: refresh our heartbeat; True when our presence survived the outage
        (the heartbeat was still ours and nobody reaped us), so only what changed meanwhile
        needs publishing and the inbox holds every announcement we missed."""
        keys, me = self.keys, self.instance_id
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(keys.heartbeat(me), self._heartbeat_value, px=self._ttl_ms(), get=True)
        pipe.sismember(keys.instances, me)
        previous, member = await self._run(pipe.execute())
        return previous == self._heartbeat_value and bool(member)

    def _keep_alive(self) -> None:
        """Our presence is published: the keeper process (keeper.py) keeps it alive from now on."""
        self._keeper.activate()

    async def restore(self, presences: list[Presence], gone: list[Presence] | None = None
                      ) -> list[int]:
        return list(await self._run(self._restore(presences, gone)))

    async def _restore(self, presences: list[Presence], gone: list[Presence] | None
                       ) -> list[int]:
        keys, me = self.keys, self.instance_id
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(keys.heartbeat(me), self._heartbeat_value, px=self._ttl_ms())
        pipe.sadd(keys.instances, me)
        pipe.persist(self._inbox)
        if gone is None:  # everything: what Redis holds for us and is not local any more goes
            pipe.smembers(keys.members(me))
        *_, members = await pipe.execute()
        self._keep_alive()
        if gone is None:
            local = {presence.did for presence in presences}
            stale = [(did.decode(), "") for did in members if did.decode() not in local]
        else:
            stale = [(presence.did, presence.session_id) for presence in gone]
        for start in range(0, len(stale), RESTORE_CHUNK):
            pipe = self._redis.pipeline(transaction=False)
            for did, session_id in stale[start:start + RESTORE_CHUNK]:
                self._unregister(pipe, did, session_id)
            await pipe.execute()
        generations: list[int] = []
        for start in range(0, len(presences), RESTORE_CHUNK):
            pipe = self._redis.pipeline(transaction=False)
            for presence in presences[start:start + RESTORE_CHUNK]:
                self._register(pipe, presence, "restore")
            generations.extend(int(generation) for generation in await pipe.execute())
        return generations

    def _announce(self, pipe: Any, presence: Presence) -> None:
        pipe.evalsha(SHAS["announce"], 0, self.keys.prefix, self.instance_id, presence.did,
                     presence.session_id, presence.encode(), self.settings.inbox_maxlen)

    async def everyone(self) -> list[Presence]:
        """Every agent of the cluster, read in pages (HSCAN): Redis serves the others between
        pages instead of blocking on one whole-hash read."""
        presences: list[Presence] = []
        cursor = 0
        while True:
            cursor, page = await self._run(self._redis.hscan(self.keys.agents, cursor,
                                                             count=SCAN_PAGE))
            for did, raw in page.items():
                try:
                    presences.append(Presence.decode(did.decode(), raw))
                except (ValueError, KeyError, TypeError) as exc:
                    log.error("cluster: skipping unreadable presence of %r: %s", did, exc,
                              extra={"instance": self.instance_id})
            if not cursor:
                # HSCAN may return an entry twice (the hash grew meanwhile): keep the last
                return list({presence.did: presence for presence in presences}.values())

    def _register(self, pipe: Any, presence: Presence, mode: str) -> None:
        pipe.evalsha(SHAS["register"], 0, self.keys.prefix, self.instance_id, presence.did,
                     presence.session_id, presence.encode(), repr(presence.connected_at), mode,
                     self.settings.inbox_maxlen)

    def _unregister(self, pipe: Any, did: str, session_id: str, *, announce: bool = True) -> None:
        pipe.evalsha(SHAS["unregister"], 0, self.keys.prefix, self.instance_id, did, session_id,
                     self.settings.inbox_maxlen, "1" if announce else "0")

    def _ttl_ms(self) -> int:
        return int(self.settings.heartbeat_ttl * 1000)

    async def disconnect(self) -> None:
        await asyncio.to_thread(self._keeper.stop)
        for client in (self._reader, self._redis):
            try:
                await client.aclose()
            except Exception as exc:  # closing after an outage must not fail the shutdown
                log.debug("cluster: closing Redis client: %s", exc)

    async def leave(self) -> None:
        keys, me = self.keys, self.instance_id
        await asyncio.to_thread(self._keeper.stop)  # before our heartbeat is deleted, for good
        pipe = self._redis.pipeline(transaction=False)
        pipe.evalsha(SHAS["announce_withdraw"], 0, keys.prefix, me, self.settings.inbox_maxlen)
        pipe.evalsha(SHAS["reap"], 0, keys.prefix, me, "withdraw", self.settings.dead_inbox_ttl)
        pipe.delete(keys.heartbeat(me))
        pipe.srem(keys.instances, me)
        pipe.expire(self._inbox, self.settings.dead_inbox_ttl)
        await self._run(pipe.execute())

    # -- writing ---------------------------------------------------------------------------------------

    async def publish(self, batch: list[Op]) -> list[Result]:
        keys, me = self.keys, self.instance_id
        pipe = self._redis.pipeline(transaction=False)
        plan: list[list[int]] = []  # per pipeline command: the indexes in `batch` it carries out
        results: list[Result] = [None] * len(batch)
        frames: list[int] = []
        args: list[Any] = []

        def flush_frames() -> None:
            if frames:
                pipe.evalsha(SHAS["route"], 0, keys.prefix, self.settings.inbox_maxlen, *args)
                plan.append(list(frames))
                frames.clear()
                args.clear()

        for index, op in enumerate(batch):
            if isinstance(op, SendOp):
                entry = op.entry
                frames.append(index)
                args.extend((entry.to, me, entry.token, op.type, op.expires_ms,
                             op.text.encode("utf-8")))
                continue
            flush_frames()
            if isinstance(op, PostOp):
                pipe.xadd(keys.inbox(op.instance), encode(op.message),  # type: ignore[arg-type]
                          maxlen=self.settings.inbox_maxlen, approximate=True)
            elif isinstance(op, PresenceOp):  # one script each, announcement included
                if op.up:
                    self._register(pipe, op.presence, "new")
                else:
                    self._unregister(pipe, op.presence.did, op.presence.session_id)
            elif isinstance(op, AnnounceOp):
                self._announce(pipe, op.presence)
            else:
                pipe.evalsha(SHAS["announce_withdraw"], 0, keys.prefix, me,
                             self.settings.inbox_maxlen)
                plan.append([])
                pipe.evalsha(SHAS["reap"], 0, keys.prefix, me, "withdraw",
                             self.settings.dead_inbox_ttl)
            plan.append([index])
        flush_frames()
        if not plan:
            return results
        answers = await self._run(pipe.execute(raise_on_error=False))
        if any(isinstance(answer, NoScriptError) for answer in answers):
            # Redis lost our scripts (SCRIPT FLUSH): nothing of theirs ran. Reconnecting loads
            # them again; the batch counts as failed (dropped), as on a broken connection.
            raise BusError("NOSCRIPT: Redis lost the cluster scripts; reconnecting")
        for indexes, answer in zip(plan, answers, strict=True):
            if not indexes:  # an announcement: best effort, healed by the next snapshot
                if isinstance(answer, BaseException):
                    log.error("cluster: Redis refused an announcement: %s", _describe(answer),
                              extra={"instance": self.instance_id})
                continue
            if isinstance(answer, BaseException):  # a command refused (OOM, READONLY, a script)
                for index in indexes:
                    results[index] = BusError(_describe(answer))
            elif isinstance(batch[indexes[0]], SendOp):
                for index, route in zip(indexes, answer, strict=True):
                    results[index] = route_from_script(route)
            else:
                op = batch[indexes[0]]
                if isinstance(op, PresenceOp):
                    results[indexes[0]] = int(answer) if op.up else None
                elif not isinstance(op, (PostOp, AnnounceOp)):
                    results[indexes[0]] = True
        return results

    # -- reading ---------------------------------------------------------------------------------------

    async def listen(self) -> list[ClusterMessage]:
        reply = await self._run(self._reader.xread({self._inbox: self.cursor},
                                                   count=self.settings.read_batch,
                                                   block=self.settings.read_block_ms))
        messages: list[ClusterMessage] = []
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                self.cursor = entry_id
                try:
                    messages.append(decode(fields))
                except ClusterMessageError as exc:
                    log.error("cluster: skipping inbox entry %s: %s", entry_id.decode(), exc,
                              extra={"instance": self.instance_id})
        return messages

    # -- heartbeat -------------------------------------------------------------------------------------

    async def heartbeat(self, activity: list[Published]) -> HeartbeatResult:
        result: HeartbeatResult = await self._run(self._heartbeat_once(activity))
        return result

    async def _heartbeat_once(self, activity: list[Published]) -> HeartbeatResult:
        keys, me = self.keys, self.instance_id
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(keys.heartbeat(me), self._heartbeat_value, px=self._ttl_ms())
        pipe.sismember(keys.instances, me)  # after the SET: nobody can reap us from here on
        pipe.get(keys.epoch)
        pipe.smembers(keys.instances)
        pipe.time()
        if self.cursor != b"0-0":  # what the reader has consumed: the writer trims it
            pipe.xtrim(self._inbox, minid=self.cursor, approximate=False)
        if activity:
            args: list[Any] = []
            for did, session_id, counters in activity:
                args.extend((did, session_id, counters.encode()))
            pipe.evalsha(SHAS["activity"], 0, keys.prefix, *args)
        before = self.clock.wall()
        _, member, epoch, instances, (seconds, micros), *_ = await pipe.execute()
        self._clock_sample(before, seconds, micros, self.clock.wall())
        lost = epoch != self.epoch
        if lost:
            if epoch is None:
                await self._redis.set(keys.epoch, secrets.token_hex(8), nx=True)
                epoch = await self._redis.get(keys.epoch)
            self.epoch = epoch
            self.cursor = b"0-0"
        others = sorted({i.decode() for i in instances} - {me})
        missing: list[str] = []
        if others:
            pipe = self._redis.pipeline(transaction=False)
            for instance in others:
                pipe.exists(keys.heartbeat(instance))
            alive = await pipe.execute()
            missing = [instance for instance, live in zip(others, alive, strict=True) if not live]
        # An instance is reaped when its heartbeat is missing at two of our heartbeats in a row:
        # one that is slow (a saturated host) but alive gets one more interval to refresh it.
        dead = [instance for instance in missing if instance in self._missing]
        self._missing = set(missing)
        live = frozenset({me, *(i for i in others if i not in missing)})
        reaped: list[str] = []
        for instance in dead:
            count = await self._redis.evalsha(SHAS["reap"], 0, keys.prefix, instance, "reap",
                                              self.settings.dead_inbox_ttl)
            if int(count) >= 0:
                reaped.append(instance)
                self._missing.discard(instance)
                log.warning("cluster: reaped instance %s (%d agents)", instance, int(count),
                            extra={"instance": me})
        # Our heartbeat may have expired (a slow host) without anyone reaping us: then our
        # presence is intact and nothing needs publishing again. Only a reap (or a Redis that
        # lost its data) takes us out of the instances.
        return HeartbeatResult(lost=lost, restore=not member, dead=tuple(reaped), live=live)

    # -- the cluster-wide views ------------------------------------------------------------------------

    async def totals(self) -> tuple[int, int]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hlen(self.keys.route)
        pipe.scard(self.keys.instances)
        agents, instances = await self._run(pipe.execute())
        return int(agents), int(instances)

    async def page(self, limit: int, offset: int) -> tuple[int, list[tuple[Presence, Activity]]]:
        keys = self.keys
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(keys.order)
        pipe.zrange(keys.order, offset, offset + limit - 1)
        count, dids = await self._run(pipe.execute())
        return int(count), await self.lookup([did.decode() for did in dids])

    async def lookup(self, dids: list[str]) -> list[tuple[Presence, Activity]]:
        if not dids:
            return []
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(self.keys.agents, dids)
        pipe.hmget(self.keys.activity, dids)
        infos, activities = await self._run(pipe.execute())
        return [(Presence.decode(did, info), Activity.decode(activity))
                for did, info, activity in zip(dids, infos, activities, strict=True)
                if info is not None]  # None: left between the two reads


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text
