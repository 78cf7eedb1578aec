// ClientSession without sockets: the handshake against a transcript recorded from the real
// gateway (tests/js/record_transcript.py), then routing, invalid frames, pacing, keepalive and
// reconnection decisions.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  AgentKey, backoff, backoffDelay, buildMessage, ClientSession, GatewayConnectionError, GatewayError,
  reconnectPolicy, SendQueueFull, ConnectionClosed, State,
} from '../src/index.js';
import { fromHex, readJson } from './helpers.js';

const T = readJson('clients/js/test/fixtures/handshake-transcript.json');
const gatewayFrames = T.frames.filter((frame) => frame.from === 'gateway').map((frame) => frame.text);
const agentFrames = T.frames.filter((frame) => frame.from === 'agent').map((frame) => frame.text);

/** A session with the transcript's key, ids and clock. */
async function recordedSession(settings = {}) {
  const key = await AgentKey.fromSeed(fromHex(T.agent_seed));
  const ids = [...T.agent_ids];
  const session = new ClientSession(key, { metadata: T.metadata, ...settings }, {
    wallClock: () => T.agent_time_ms, newId: () => ids.shift() ?? 'no-more-ids', jitter: () => 0.5,
  });
  return { key, session };
}

/** @param {ClientSession} session */
async function registeredSession(session) {
  session.connecting();
  const register = await session.receive(gatewayFrames[0], 100);
  assert.equal(register?.kind, 'send');
  const registered = await session.receive(gatewayFrames[1], 100);
  assert.equal(registered?.kind, 'registered');
  return { register, registered };
}

test('the recorded handshake: our REGISTER is the recorded one byte for byte, REGISTERED completes it', async () => {
  const { session } = await recordedSession();
  assert.equal(session.state, State.IDLE);
  const { register, registered } = await registeredSession(session);
  assert.equal(register.text, agentFrames[0]);
  assert.equal(session.gatewayDid, T.gateway_did);
  assert.deepEqual(registered, { kind: 'registered', sessionId: JSON.parse(gatewayFrames[1]).payload.session_id, reconnected: false, attempt: 0 });
  assert.equal(session.state, State.REGISTERED);
  assert.equal(session.agentTimeout, 300);
  assert.deepEqual(session.rateLimit, { messagesPerSecond: 100, burst: 200 });
});

test('the recorded PING is answered by the recorded PONG; the OFFER by the recorded UNKNOWN_AGENT ERROR', async () => {
  const { session } = await recordedSession();
  await registeredSession(session);
  const ping = await session.ping(101);
  assert.equal(ping.text, agentFrames[1]);
  assert.deepEqual(await session.receive(gatewayFrames[2], 101), { kind: 'pingAnswered', pingId: ping.id });
  const offer = await session.send(T.peer_did, 'OFFER', { sdp: 'v=0' }, null, 102);
  assert.equal(offer.text, agentFrames[2]);
  const error = await session.receive(gatewayFrames[3], 102);
  assert.equal(error?.kind, 'deliver');
  assert.equal(error.message.errorCode, 'UNKNOWN_AGENT');
  assert.equal(error.message.correlationId, offer.id);
  assert.equal(error.message.sender, T.gateway_did);
});

test('a CHALLENGE that does not verify, or from another gateway than the pinned one, fails the handshake', async () => {
  const tampered = gatewayFrames[0].replace('"expires_in":30', '"expires_in":31');
  const cases = [
    [{}, tampered, /does not verify/],
    [{ expectedGatewayDid: T.peer_did }, gatewayFrames[0], /not the expected/],
    [{}, gatewayFrames[1], /expected CHALLENGE, got REGISTERED/],
    [{}, '{"id":"a","id":"b"}', /not a valid message/],
  ];
  for (const [settings, frame, why] of cases) {
    const { session } = await recordedSession(settings);
    session.connecting();
    const decision = await session.receive(frame, 0);
    assert.equal(decision?.kind, 'fail');
    assert.ok(decision.error instanceof GatewayConnectionError);
    assert.match(decision.error.message, why);
  }
});

test('an ERROR from the gateway instead of the CHALLENGE (a refused browser origin) is a GatewayError', async () => {
  const gateway = await AgentKey.fromSeed(new Uint8Array(32).fill(1));
  const { text } = await buildMessage(gateway, 'ERROR', null, {
    code: 'AUTH_FAILED', message: "browser origin 'http://evil' is not allowed", details: { origin: 'http://evil', close_code: 4403 },
  });
  const { session } = await recordedSession();
  session.connecting();
  const decision = await session.receive(text, 0);
  assert.equal(decision?.kind, 'refused');
  assert.ok(decision.error instanceof GatewayError);
  assert.equal(decision.error.code, 'AUTH_FAILED');
  assert.equal(decision.error.closeCode, 4403);
});

test('a refused REGISTER is a GatewayError with the code', async () => {
  const gateway = await AgentKey.fromSeed(new Uint8Array(32).fill(1));
  const { session } = await recordedSession();
  session.connecting();
  await session.receive(gatewayFrames[0], 0);
  const { text } = await buildMessage(gateway, 'ERROR', null, { code: 'AUTH_FAILED', message: 'the nonce has expired', details: {} },
    { correlationId: T.agent_ids[0] });
  const decision = await session.receive(text, 0);
  assert.equal(decision?.kind, 'refused');
  assert.equal(decision.error.code, 'AUTH_FAILED');
});

test("messages from agents are verified against their own DID; failures are reported, never delivered", async () => {
  const { key, session } = await recordedSession();
  await registeredSession(session);
  const peer = await AgentKey.fromSeed(new Uint8Array(32).fill(2));
  const { text } = await buildMessage(peer, 'INTENT', key.did, { intent: 'hello' });
  const delivered = await session.receive(text, 1);
  assert.equal(delivered?.kind, 'deliver');
  assert.equal(delivered.message.sender, peer.did);
  assert.equal(delivered.message.raw, text);
  const invalid = [
    text.replace('"hello"', '"bye"'), // changed after signing
    text.replace(peer.did, T.gateway_did), // claims to be someone else
    text.replace(peer.did, 'did:key:z6MkeTG3bFFSLYVU7VqhgZxqr6YzpaGrQtFMh1uvqGy1vDnP'), // the all-zero key
    '{"id": "x", "id": "y"}',
    'not json',
  ];
  for (const frame of invalid) {
    const decision = await session.receive(frame, 1);
    assert.equal(decision?.kind, 'report', frame);
    assert.equal(decision.error.text, frame);
  }
  assert.equal(session.invalidMessages, invalid.length);
  assert.equal(session.receiveBinary()?.kind, 'report');
});

test('pacing keeps to 90 % of the announced limit: a burst of 180, then one frame per 1/90 s', async () => {
  const { session } = await recordedSession();
  await registeredSession(session); // REGISTERED at t=100: rate 100/s, burst 200
  let granted = 0;
  while (session.pace(100) === 0) granted += 1;
  assert.equal(granted, 180);
  const wait = session.pace(100);
  assert.ok(Math.abs(wait - 1 / 90) < 1e-9, String(wait));
  assert.equal(session.pace(100 + 1 / 90 + 1e-9), 0);
  const { session: unpaced } = await recordedSession({ pace: false });
  await registeredSession(unpaced);
  for (let i = 0; i < 1000; i++) assert.equal(unpaced.pace(100), 0);
});

test('keepalive: a PING after a third of agent_timeout without sending, consumed when its PONG comes', async () => {
  const { session } = await recordedSession();
  await registeredSession(session); // at t=100, agent_timeout 300
  assert.equal(session.keepaliveIn(100), 100);
  assert.equal(await session.keepalive(150), null);
  await session.send(T.peer_did, 'OFFER', {}, null, 150);
  assert.equal(session.keepaliveIn(160), 90);
  const ping = await session.keepalive(250);
  assert.equal(ping?.kind, 'send');
  const pingFrame = JSON.parse(ping.text);
  assert.equal(pingFrame.type, 'PING');
  assert.equal(pingFrame.to, T.gateway_did);
  const gateway = await AgentKey.fromSeed(new Uint8Array(32).fill(1));
  const { text: pong } = await buildMessage(gateway, 'PONG', session.key.did, {}, { correlationId: pingFrame.id });
  assert.equal(await session.receive(pong, 251), null);
  const { session: quiet } = await recordedSession({ keepalive: false });
  await registeredSession(quiet);
  assert.equal(quiet.keepaliveIn(100), null);
});

test('reconnection: jittered backoff, queued sends, final codes end it', async () => {
  const policy = reconnectPolicy({ initialDelay: 1, maxDelay: 8, maxAttempts: 3 });
  const { session } = await recordedSession({ reconnect: policy, sendQueueSize: 2 });
  await registeredSession(session);
  const lost = session.connectionLost(1006, '');
  assert.deepEqual(lost, { kind: 'reconnect', attempt: 1, delay: 0.75 }); // jitter 0.5: between 0.5 and 1
  assert.equal(session.reconnecting, true);
  assert.equal((await session.send(T.peer_did, 'OFFER', {}, null, 1)).text, null);
  await session.send(T.peer_did, 'OFFER', {}, null, 1);
  await assert.rejects(session.send(T.peer_did, 'OFFER', {}, null, 1), SendQueueFull);
  assert.deepEqual(session.attemptFailed(new GatewayConnectionError('down')), { kind: 'reconnect', attempt: 2, delay: 1.5 });
  assert.deepEqual(session.attemptFailed(new GatewayConnectionError('busy', { status: 503, retryAfter: 5 })),
    { kind: 'reconnect', attempt: 3, delay: 5 });
  const end = session.attemptFailed(new GatewayConnectionError('down'));
  assert.equal(end.kind, 'finish');
  assert.equal(end.unsent, 2);
  assert.match(end.reason ?? '', /no connection after 3 attempts/);
  await assert.rejects(session.send(T.peer_did, 'OFFER', {}, null, 1), ConnectionClosed);

  for (const code of [1000, 4400, 4401, 4403, 4409]) {
    const { session: other } = await recordedSession({ reconnect: policy });
    await registeredSession(other);
    assert.equal(other.connectionLost(code, 'x').kind, 'finish', String(code));
  }
  for (const code of [1001, 1006, 4008, 4408, 4429]) {
    const { session: other } = await recordedSession({ reconnect: policy });
    await registeredSession(other);
    assert.equal(other.connectionLost(code, 'x').kind, 'reconnect', String(code));
  }
  const { session: refused } = await recordedSession({ reconnect: policy });
  await registeredSession(refused);
  refused.connectionLost(1006, '');
  assert.equal(refused.attemptFailed(new GatewayError('AUTH_FAILED', 'no', {}, 4401)).kind, 'finish');
});

test('equal jitter: between half and all of the capped exponential ceiling', () => {
  assert.equal(backoff(0, { base: 0.5, cap: 30, jitter: () => 0 }), 0.25);
  assert.equal(backoff(0, { base: 0.5, cap: 30, jitter: () => 1 }), 0.5);
  assert.equal(backoff(3, { base: 0.5, cap: 30, jitter: () => 1 }), 4);
  assert.equal(backoff(50, { base: 0.5, cap: 30, jitter: () => 0 }), 15);
  assert.equal(backoff(5000, { base: 0.5, cap: 30, jitter: () => 1 }), 30);
  assert.throws(() => backoff(0, { base: 1, cap: 2, jitter: () => 2 }), RangeError);
  assert.throws(() => reconnectPolicy({ initialDelay: 0 }), RangeError);
  assert.equal(backoffDelay(reconnectPolicy(), 0, { retryAfter: 99, jitter: () => 0 }), 30);
});

test('connect() after close is refused, and twice in a row too', async () => {
  const { session } = await recordedSession();
  session.connecting();
  assert.throws(() => session.connecting(), /already connected or connecting/);
  session.close();
  assert.throws(() => session.connecting(), ConnectionClosed);
});

test('liveness: a PING when nothing came for pingInterval; no answer within pingInterval more: dead', async () => {
  const { session } = await recordedSession({ pingInterval: 20 });
  await registeredSession(session); // at t=100
  assert.equal(session.livenessIn(100), 20);
  assert.equal(await session.liveness(110), null);
  const probe = await session.liveness(120);
  assert.equal(probe?.kind, 'send');
  assert.equal(JSON.parse(probe.text).type, 'PING');
  assert.equal(session.livenessIn(125), 15);
  assert.equal(await session.liveness(139), null);
  assert.deepEqual(await session.liveness(140), { kind: 'dead', reason: 'the gateway did not answer a PING within 20 s' });

  const { session: alive } = await recordedSession({ pingInterval: 20 });
  await registeredSession(alive);
  const ping = await alive.liveness(120);
  const gateway = await AgentKey.fromSeed(new Uint8Array(32).fill(1));
  const { text: pong } = await buildMessage(gateway, 'PONG', alive.key.did, {}, { correlationId: JSON.parse(ping.text).id });
  assert.equal(await alive.receive(pong, 130), null); // consumed, and it shows the gateway is there
  assert.equal(await alive.liveness(140), null);
  assert.equal(alive.livenessIn(140), 10);

  const { session: off } = await recordedSession({ pingInterval: null });
  await registeredSession(off);
  assert.equal(off.livenessIn(100), null);
  assert.equal(await off.liveness(1000), null);
});

test('fresh ICE servers: PING {ice_servers: true}, and the PONG\'s ice_servers replace REGISTERED\'s', async () => {
  const { session } = await recordedSession();
  await registeredSession(session);
  const ping = await session.ping(101, { ice_servers: true });
  const frame = JSON.parse(ping.text);
  assert.deepEqual([frame.type, frame.payload], ['PING', { ice_servers: true }]);
  const gateway = await AgentKey.fromSeed(new Uint8Array(32).fill(1));
  const servers = [{ urls: ['turn:turn.example:3478'], username: '1800000000:did:key:z6Mk', credential: 'bmV3' }];
  const { text: pong } = await buildMessage(gateway, 'PONG', session.key.did, { ice_servers: servers }, { correlationId: frame.id });
  assert.deepEqual(await session.receive(pong, 102), { kind: 'pingAnswered', pingId: frame.id });
  assert.deepEqual(session.registration?.ice_servers, servers);
  assert.equal(session.registration?.session_id, session.sessionId); // the rest of REGISTERED stays
});
