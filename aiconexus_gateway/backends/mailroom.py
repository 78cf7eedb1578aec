"""Cluster mode's mailroom: every mailbox in Redis, so a message waits for its recipient whichever
instance it comes back to, and survives the death of the instance that accepted it.

The same rules as mailbox.py (the same bounds in the same order, the same ack bookkeeping), kept
atomic by Lua scripts over these keys (P = REDIS_PREFIX):

    P:mb:<did>:order     zset  letter keys ("<sender> <id>") by a cluster-wide sequence number
    P:mb:<did>:text      hash  key -> the frame, byte for byte
    P:mb:<did>:meta      hash  key -> "<expires ms> <size>"
    P:mb:<did>:pair      hash  sender -> letters waiting
    P:mb:<did>:info      hash  bytes, disabled
    P:mb:<did>:blocked   set   DIDs refused
    P:mb:<did>:rorder    zset  receipt ids by sequence; P:mb:<did>:receipts hash id -> JSON
    P:mb:due             zset  "L <did> <key>" / "R <did> <receipt id>" by expiry (Redis ms)
    P:mb:seq, P:mb:bytes, P:mb:letters, P:mb:receipts   counters

One worker task carries out this instance's mailbox operations in order (so letters from one
sender are kept in the order sent). Which letters were written to which local connection is
this instance's own memory (a connection lives on one instance); a letter is written again
after a reconnection until it is acknowledged. When a letter or a receipt is stored for an agent
connected to another instance, that instance is nudged on its channel (P:mb:nudge:<instance>)
and writes what it has not written yet; a missed nudge is made up for after Redis comes back
(every local agent's mailbox is read again). Every instance sweeps P:mb:due; the script makes
each expiry happen once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..backoff import backoff
from ..clock import Clock
from ..errors import ErrorCode, ProtocolError
from ..mailbox import RECEIPT_SIZE, MailboxSettings, parse_ack, parse_policy
from ..mailroom import queued_frame, receipt_frame
from ..metrics import MailboxMetrics
from ..peer import Peer, PeerActions
from ..registry import Registry
from .settings import ClusterSettings

if TYPE_CHECKING:
    from ..session import Deposit, MailboxRequest

log = logging.getLogger("aiconexus.gateway.cluster")

SWEEP_INTERVAL = 0.25  # seconds between expiry sweeps (each instance)
SWEEP_LIMIT = 500  # deadlines handled per sweep

_HELPERS = """
local function remove_letter(p, to, key)
  local box = p .. ':mb:' .. to
  local meta = redis.call('HGET', box .. ':meta', key)
  if not meta then return false end
  local size = tonumber(string.match(meta, ' (%d+)$'))
  local from = string.match(key, '^(%S+) ')
  redis.call('ZREM', box .. ':order', key)
  redis.call('HDEL', box .. ':text', key)
  redis.call('HDEL', box .. ':meta', key)
  if redis.call('HINCRBY', box .. ':pair', from, -1) <= 0 then
    redis.call('HDEL', box .. ':pair', from)
  end
  if redis.call('HINCRBY', box .. ':info', 'bytes', -size) <= 0 then
    redis.call('HDEL', box .. ':info', 'bytes')  -- an empty box leaves only its rules behind
  end
  redis.call('DECRBY', p .. ':mb:bytes', size)
  redis.call('DECR', p .. ':mb:letters')
  redis.call('ZREM', p .. ':mb:due', 'L ' .. to .. ' ' .. key)
  return from
end
local function remove_receipt(p, did, rid)
  local box = p .. ':mb:' .. did
  if redis.call('HDEL', box .. ':receipts', rid) == 0 then return false end
  redis.call('ZREM', box .. ':rorder', rid)
  redis.call('DECR', p .. ':mb:receipts')
  redis.call('ZREM', p .. ':mb:due', 'R ' .. did .. ' ' .. rid)
  return true
end
local function add_receipt(p, sender, to, id, status, now, ttl, max, base)
  local box = p .. ':mb:' .. sender
  local seq = redis.call('INCR', p .. ':mb:seq')
  local rid = string.format('%s-%012x', base, seq)
  redis.call('ZADD', box .. ':rorder', seq, rid)
  redis.call('HSET', box .. ':receipts', rid, cjson.encode({id = id, to = to, status = status}))
  redis.call('INCR', p .. ':mb:receipts')
  redis.call('ZADD', p .. ':mb:due', now + ttl, 'R ' .. sender .. ' ' .. rid)
  while redis.call('ZCARD', box .. ':rorder') > max do
    remove_receipt(p, sender, redis.call('ZRANGE', box .. ':rorder', 0, 0)[1])
  end
  return redis.call('HGET', p .. ':route', sender) or ''
end
"""

# Keep a letter, or say which rule refused it. ARGV: prefix, to, from, id, text, expires_ms,
# size, max_per_sender, max_messages, max_bytes, max_total_bytes.
PUT = """
local p, to, from = ARGV[1], ARGV[2], ARGV[3]
local box = p .. ':mb:' .. to
local key = from .. ' ' .. ARGV[4]
local owner = redis.call('HGET', p .. ':route', to) or ''
local meta = redis.call('HGET', box .. ':meta', key)
if meta then return {'dup', owner, meta} end
if redis.call('HGET', box .. ':info', 'disabled') == '1' then return {'refused', 'disabled'} end
if redis.call('SISMEMBER', box .. ':blocked', from) == 1 then return {'refused', 'blocked'} end
local size = tonumber(ARGV[7])
if tonumber(redis.call('HGET', box .. ':pair', from) or '0') >= tonumber(ARGV[8]) then
  return {'full', 'pair_messages'}
end
if redis.call('ZCARD', box .. ':order') >= tonumber(ARGV[9]) then
  return {'full', 'recipient_messages'}
end
if tonumber(redis.call('HGET', box .. ':info', 'bytes') or '0') + size > tonumber(ARGV[10]) then
  return {'full', 'recipient_bytes'}
end
if tonumber(redis.call('GET', p .. ':mb:bytes') or '0') + size > tonumber(ARGV[11]) then
  return {'full', 'total_bytes'}
end
local seq = redis.call('INCR', p .. ':mb:seq')
meta = ARGV[6] .. ' ' .. size
redis.call('ZADD', box .. ':order', seq, key)
redis.call('HSET', box .. ':text', key, ARGV[5])
redis.call('HSET', box .. ':meta', key, meta)
redis.call('HINCRBY', box .. ':pair', from, 1)
redis.call('HINCRBY', box .. ':info', 'bytes', size)
redis.call('INCRBY', p .. ':mb:bytes', size)
redis.call('INCR', p .. ':mb:letters')
redis.call('ZADD', p .. ':mb:due', ARGV[6], 'L ' .. to .. ' ' .. key)
return {'ok', owner, meta}
"""

# Everything waiting for each DID (ARGV: prefix, did...), one list per DID: {letter count, key,
# text, ..., receipt id, receipt JSON, ...}. One call for a whole registration burst.
FETCH = """
local all = {}
for i = 2, #ARGV do
  local box = ARGV[1] .. ':mb:' .. ARGV[i]
  local keys = redis.call('ZRANGE', box .. ':order', 0, -1)
  local out = {#keys}
  for _, k in ipairs(keys) do
    out[#out + 1] = k
    out[#out + 1] = redis.call('HGET', box .. ':text', k)
  end
  for _, r in ipairs(redis.call('ZRANGE', box .. ':rorder', 0, -1)) do
    out[#out + 1] = r
    out[#out + 1] = redis.call('HGET', box .. ':receipts', r)
  end
  all[#all + 1] = out
end
return all
"""
FETCH_BATCH = 256  # DIDs per FETCH call

# An ACK. ARGV: prefix, did, from, id, gateway did, now_ms, receipt ttl ms, max receipts, base.
ACK = _HELPERS + """
local p, did, from, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if from == ARGV[5] then
  remove_receipt(p, did, id)
  return {'receipt'}
end
local sender = remove_letter(p, did, from .. ' ' .. id)
if not sender then return {'none'} end
local owner = add_receipt(p, sender, did, id, 'DELIVERED', tonumber(ARGV[6]), tonumber(ARGV[7]),
                          tonumber(ARGV[8]), ARGV[9])
return {'delivered', sender, owner}
"""

# Expire what is due. ARGV: prefix, now_ms, limit, receipt ttl ms, max receipts, base.
# Answers {sender, sender's owner, ...} for each letter expired.
EXPIRE = _HELPERS + """
local p, now = ARGV[1], tonumber(ARGV[2])
local out = {}
for _, item in ipairs(redis.call('ZRANGEBYSCORE', p .. ':mb:due', '-inf', now, 'LIMIT', 0,
                                 tonumber(ARGV[3]))) do
  redis.call('ZREM', p .. ':mb:due', item)
  local kind, did, rest = string.match(item, '^(%a) (%S+) (.+)$')
  if kind == 'L' then
    local sender = remove_letter(p, did, rest)
    if sender then
      local id = string.match(rest, '^%S+ (.+)$')
      out[#out + 1] = sender
      out[#out + 1] = add_receipt(p, sender, did, id, 'EXPIRED', now, tonumber(ARGV[4]),
                                  tonumber(ARGV[5]), ARGV[6])
    end
  elseif kind == 'R' then
    remove_receipt(p, did, rest)
  end
end
return out
"""

# The recipient's rules. ARGV: prefix, did, enabled ('', '0', '1'), replace blocked ('0', '1'),
# blocked DIDs... Answers {disabled, messages, bytes, receipts, {blocked...}}.
POLICY = """
local box = ARGV[1] .. ':mb:' .. ARGV[2]
if ARGV[3] == '0' then
  redis.call('HSET', box .. ':info', 'disabled', '1')
elseif ARGV[3] == '1' then
  redis.call('HDEL', box .. ':info', 'disabled')
end
if ARGV[4] == '1' then
  redis.call('DEL', box .. ':blocked')
  for i = 5, #ARGV do redis.call('SADD', box .. ':blocked', ARGV[i]) end
end
return {redis.call('HGET', box .. ':info', 'disabled') or '0', redis.call('ZCARD', box .. ':order'),
        redis.call('HGET', box .. ':info', 'bytes') or '0', redis.call('ZCARD', box .. ':rorder'),
        redis.call('SMEMBERS', box .. ':blocked')}
"""

TOTALS = "return {redis.call('GET', ARGV[1] .. ':mb:letters') or '0', " \
         "redis.call('GET', ARGV[1] .. ':mb:bytes') or '0', " \
         "redis.call('GET', ARGV[1] .. ':mb:receipts') or '0'}"


@dataclass(slots=True)
class _Put:
    peer: Peer
    action: Deposit


@dataclass(slots=True)
class _Fetch:
    did: str


@dataclass(slots=True)
class _Request:
    peer: Peer
    request: MailboxRequest


_Op = _Put | _Fetch | _Request


class ClusterMailroom:
    """The Mailroom (mailroom.py) of one instance of a cluster, over Redis."""

    def __init__(self, settings: MailboxSettings, cluster: ClusterSettings, registry: Registry,
                 actions: PeerActions, metrics: MailboxMetrics, clock: Clock,
                 bus_time_ms: Callable[[], float],
                 bus_up: Callable[[], bool] = lambda: True) -> None:
        self.settings = settings
        self.prefix = cluster.prefix
        self.instance_id = cluster.instance_id
        self.registry = registry
        self.actions = actions
        self.metrics = metrics
        self.clock = clock
        self.bus_time_ms = bus_time_ms
        self.bus_up = bus_up  # the cluster's Redis answers (node.py): else refuse at once
        self.held = (0, 0, 0)  # letters, bytes, receipts in the whole cluster (last sweep)
        metrics.held = lambda: self.held
        common: dict[str, Any] = {"protocol": 2, "retry": Retry(NoBackoff(), 0),
                                  "socket_connect_timeout": 1.0, "health_check_interval": 0}
        self._redis = Redis.from_url(cluster.redis_url, socket_timeout=2.0,
                                     client_name=f"aiconexus-mb-{self.instance_id}"[:64], **common)
        self._channel = f"{self.prefix}:mb:nudge:{self.instance_id}"
        self._base = secrets.token_hex(10)
        self._base = f"{self._base[:8]}-{self._base[8:12]}-4{self._base[12:15]}-8{self._base[15:18]}"
        self._ops = _Ops()
        # did -> its connection, and what was written to it and not acknowledged: key -> size
        self._written: dict[str, tuple[Peer, dict[str, int]]] = {}
        self._held: set[str] = set()  # DIDs with more waiting than the window let through
        self._stale = False  # an operation failed: read every local agent's mailbox again
        self._tasks: list[asyncio.Task[None]] = []
        self._put, self._fetch, self._ack, self._expire, self._policy, self._totals = (
            self._redis.register_script(script) for script in (PUT, FETCH, ACK, EXPIRE, POLICY,
                                                               TOTALS))

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name="mailbox-worker"),
                       asyncio.create_task(self._sweep(), name="mailbox-sweeper"),
                       asyncio.create_task(self._listen(), name="mailbox-nudges")]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    # -- the router's calls (Mailroom) -----------------------------------------------------------

    def deposit(self, peer: Peer, action: Deposit) -> None:
        forward = action.forward
        if action.ttl > self.settings.max_ttl:
            self.actions.send_error(peer, ProtocolError(
                ErrorCode.MALFORMED_MESSAGE, f"'ttl' is over this gateway's MAILBOX_MAX_TTL of "
                f"{self.settings.max_ttl} s", details={"max_ttl": self.settings.max_ttl},
                correlation_id=forward.id))
            return
        if not self.bus_up():
            self._unavailable(peer, action)
            return
        self._ops.put_nowait(_Put(peer, action))

    def request(self, peer: Peer, request: MailboxRequest) -> None:
        self._ops.put_nowait(_Request(peer, request))

    def registered(self, peer: Peer, did: str) -> None:
        self._ops.put_nowait(_Fetch(did))  # a new connection: everything waiting is written

    def depth(self, did: str) -> dict[str, Any] | None:
        return None  # in Redis: not known at once (report() asks)

    async def report(self, did: str) -> dict[str, Any] | None:
        try:
            answer = await self._policy(args=[self.prefix, did, "", "0"])  # changes nothing
        except (RedisError, OSError, asyncio.TimeoutError):
            return None
        view = _view(answer)
        idle = view["enabled"] and not view["blocked"] and not view["messages"] \
            and not view["receipts"]
        return None if idle else view

    # -- the worker ------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            op = await self._ops.get()
            try:
                if isinstance(op, _Put):
                    await self._store(op.peer, op.action)
                elif isinstance(op, _Fetch):  # with the fetches queued right behind it
                    await self._deliver(op.did, *self._ops.fetches(FETCH_BATCH - 1))
                else:
                    await self._answer(op.peer, op.request)
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                self._stale = True
                log.warning("cluster mailbox: Redis failed (%s); %s", exc, type(op).__name__,
                            extra={"instance": self.instance_id})
                if isinstance(op, _Put):
                    self._unavailable(op.peer, op.action)
            except Exception:
                log.exception("cluster mailbox: cannot carry out %r", op)

    async def _store(self, peer: Peer, action: Deposit) -> None:
        forward, settings = action.forward, self.settings
        text = forward.text.encode("utf-8")
        expires_ms = int(self.bus_time_ms() + 1000 * action.ttl)
        answer = await self._put(args=[
            self.prefix, forward.to, forward.sender, forward.id, text, expires_ms, len(text),
            settings.max_per_sender, settings.max_messages, settings.max_bytes,
            settings.max_total_bytes])
        status, detail = answer[0].decode(), answer[1].decode()
        if status in ("full", "refused"):
            self.metrics.refused(detail)
            code = ErrorCode.MAILBOX_FULL if status == "full" else ErrorCode.MAILBOX_REFUSED
            self._error(peer, ProtocolError(
                code, f"not stored: {_WHY[detail]}", details={"reason": detail, "to": forward.to},
                correlation_id=forward.id))
            return
        if status == "ok":
            self.metrics.stored()
        owner = detail
        if owner == self.instance_id or self.registry.get(forward.to) is not None:
            await self._deliver(forward.to)
        elif owner:
            await self._redis.publish(f"{self.prefix}:mb:nudge:{owner}", forward.to)
        else:
            self.metrics.queued()
            expires_at = int(answer[2].split(b" ")[0]) / 1000 - self._offset()
            if peer.session.did is not None and self.registry.get(peer.session.did) is peer:
                peer.connection.send(queued_frame(self.actions.factory, forward.sender, forward.id,
                                                  forward.to, expires_at))

    async def _deliver(self, *dids: str) -> None:
        """Write to each DID's local connection what waits for it and was not written to it
        yet (one Redis call for all of them)."""
        peers = {}
        for did in dict.fromkeys(dids):
            peer = self.registry.get(did)
            if peer is None:
                self._written.pop(did, None)
            else:
                peers[did] = peer
        if not peers:
            return
        answers = await self._fetch(args=[self.prefix, *peers])
        for (did, peer), answer in zip(peers.items(), answers, strict=True):
            if self.registry.get(did) is peer:  # else it left while we read
                self._write(did, peer, answer)

    def _write(self, did: str, peer: Peer, answer: list[Any]) -> None:
        written = self._written.get(did)
        if written is None or written[0] is not peer:
            if len(answer) == 1:  # nothing waits: nothing to remember either
                self._written.pop(did, None)
                self._held.discard(did)
                return
            written = self._written[did] = (peer, {})
        keys = written[1]
        count = int(answer[0])
        entries = [(answer[i].decode(), answer[i + 1], i <= 2 * count)
                   for i in range(1, len(answer), 2)]
        present = {key if letter else f"R {key}" for key, _, letter in entries}
        for gone in [mark for mark in keys if mark not in present]:  # acknowledged meanwhile
            del keys[gone]
        in_flight, window = sum(keys.values()), self.settings.window
        connection, factory = peer.connection, self.actions.factory
        self._held.discard(did)
        for key, value, letter in entries:
            mark = key if letter else f"R {key}"
            if mark in keys or value is None:
                continue
            size = len(value) if letter else RECEIPT_SIZE
            if in_flight and in_flight + size > window:
                self._held.add(did)  # the rest as ACKs come back (mailbox.py's window)
                break
            keys[mark] = size
            in_flight += size
            if letter:
                if connection.send(value.decode("utf-8")):
                    self.metrics.written()
            else:
                connection.send(receipt_frame(factory, (key, did, json.loads(value)),
                                              self.clock.wall()))
        if not keys:  # nothing in flight to it: forget it (the sweeper walks what is kept)
            del self._written[did]

    async def _answer(self, peer: Peer, request: MailboxRequest) -> None:
        did = peer.session.did
        assert did is not None
        try:
            if request.type == "ACK":
                sender, acked = parse_ack(request.payload, request.id)
                answer = await self._ack(args=[
                    self.prefix, did, sender, acked, self.actions.factory.did,
                    int(self.bus_time_ms()), 1000 * max(self.settings.max_ttl, 1),
                    self.settings.max_messages, self._base])
                if answer[0] == b"delivered":
                    self.metrics.delivered()
                    await self._nudge(answer[1].decode(), answer[2].decode())
                self._acknowledged(peer, did, f"R {acked}" if sender == self.actions.factory.did
                                   else f"{sender} {acked}")
                return
            enabled, blocked = parse_policy(request.payload, request.id)
        except ProtocolError as error:
            self._error(peer, error)
            return
        answer = await self._policy(args=[
            self.prefix, did, "" if enabled is None else ("1" if enabled else "0"),
            "0" if blocked is None else "1", *(blocked or [])])
        view = _view(answer)
        peer.connection.send(self.actions.factory.make("MAILBOX", did, view, request.id))

    def _acknowledged(self, peer: Peer, did: str, mark: str) -> None:
        """An ACK from `did`'s connection: its window has room; once half of it is free, what
        was held back is read and written."""
        written = self._written.get(did)
        if written is None or written[0] is not peer:
            return
        written[1].pop(mark, None)
        if did in self._held and sum(written[1].values()) <= self.settings.window // 2:
            self._held.discard(did)
            self._ops.put_nowait(_Fetch(did))

    async def _nudge(self, did: str, owner: str) -> None:
        """Something new waits for `did`: write it here, or tell its instance."""
        if owner == self.instance_id or self.registry.get(did) is not None:
            self._ops.put_nowait(_Fetch(did))
        elif owner:
            await self._redis.publish(f"{self.prefix}:mb:nudge:{owner}", did)

    def _unavailable(self, peer: Peer, action: Deposit) -> None:
        self.metrics.refused("unavailable")
        self._error(peer, ProtocolError(
            ErrorCode.MAILBOX_REFUSED, "not stored: the cluster's mailbox (Redis) cannot be "
            "reached; retry later", details={"reason": "unavailable", "to": action.forward.to},
            correlation_id=action.forward.id))

    def _error(self, peer: Peer, error: ProtocolError) -> None:
        if peer.session.did is not None and self.registry.get(peer.session.did) is peer:
            self.actions.send_error(peer, error)

    def _offset(self) -> float:
        """Redis clock minus ours, in seconds."""
        return self.bus_time_ms() / 1000 - self.clock.wall()

    # -- expiry, and what other instances tell us ------------------------------------------------

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                answer = await self._expire(args=[
                    self.prefix, int(self.bus_time_ms()), SWEEP_LIMIT,
                    1000 * max(self.settings.max_ttl, 1), self.settings.max_messages, self._base])
                for index in range(0, len(answer), 2):
                    self.metrics.expired()
                    await self._nudge(answer[index].decode(), answer[index + 1].decode())
                totals = await self._totals(args=[self.prefix])
                self.held = (int(totals[0]), int(totals[1]), int(totals[2]))
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                self._stale = True
                log.debug("cluster mailbox: sweep failed: %s", exc)
                continue
            if self._stale:  # Redis is back: make up for what may have been missed
                self._stale = False
                for did in [peer.session.did for peer in self.registry]:
                    if did is not None:
                        self._ops.put_nowait(_Fetch(did))
            for did in [d for d, (peer, _) in self._written.items()
                        if self.registry.get(d) is not peer]:
                del self._written[did]

    async def _listen(self) -> None:
        attempt = 0
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._stale = True  # (re)subscribed: the sweeper reads every local mailbox
                attempt = 0
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        self._ops.put_nowait(_Fetch(message["data"].decode()))
            except (RedisError, OSError, asyncio.TimeoutError) as exc:
                log.debug("cluster mailbox: nudges interrupted: %s", exc)
                await asyncio.sleep(backoff(attempt, base=0.1, cap=2.0, jitter=random.random))
                attempt += 1
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


class _Ops:
    """The worker's queue, in order; consecutive fetches are taken together (one call)."""

    def __init__(self) -> None:
        self._queue: deque[_Op] = deque()
        self._ready = asyncio.Event()

    def put_nowait(self, op: _Op) -> None:
        self._queue.append(op)
        self._ready.set()

    async def get(self) -> _Op:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def fetches(self, limit: int) -> list[str]:
        """The DIDs of the fetches at the front of the queue (up to `limit`), taken off it."""
        dids: list[str] = []
        queue = self._queue
        while queue and len(dids) < limit and isinstance(queue[0], _Fetch):
            dids.append(queue.popleft().did)  # type: ignore[union-attr]
        return dids


def _view(answer: list[Any]) -> dict[str, Any]:
    """The POLICY script's answer as MAILBOX reports it."""
    return {"enabled": answer[0] != b"1", "blocked": sorted(d.decode() for d in answer[4]),
            "messages": int(answer[1]), "bytes": int(answer[2]), "receipts": int(answer[3])}


_WHY = {
    "disabled": "the recipient does not accept stored messages",
    "blocked": "the recipient does not accept stored messages from you",
    "pair_messages": "too many of your messages already wait for this recipient "
                     "(MAILBOX_MAX_PER_SENDER)",
    "recipient_messages": "the recipient's mailbox is full (MAILBOX_MAX_MESSAGES)",
    "recipient_bytes": "the recipient's mailbox is full (MAILBOX_MAX_BYTES)",
    "total_bytes": "the gateway's mailboxes are full (MAILBOX_MAX_TOTAL_BYTES)",
}
