// GatewayClient (the pump) against a WebSocket that replays the transcript recorded from the real
// gateway (tests/js/record_transcript.py): every frame the client writes must be the recorded one.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AgentKey, ConnectionClosed, GatewayClient, GatewayConnectionError, TimeoutError } from '../src/index.js';
import { fromHex, readJson } from './helpers.js';

const T = readJson('clients/js/test/fixtures/handshake-transcript.json');

/** A WebSocket whose peer is the transcript: it sends the gateway's frames, checks ours. */
class ReplayWebSocket extends EventTarget {
  /** @type {ReplayWebSocket[]} */
  static made = [];

  /**
   * @param {string} url
   * @param {string} protocol
   */
  constructor(url, protocol) {
    super();
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    this.binaryType = 'blob';
    this.step = 0;
    /** @type {string[]} frames that differ from the recording */
    this.mismatches = [];
    ReplayWebSocket.made.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.dispatchEvent(new Event('open'));
      this.play();
    }, 0);
  }

  play() {
    while (T.frames[this.step]?.from === 'gateway') {
      const data = T.frames[this.step++].text;
      setTimeout(() => this.dispatchEvent(new MessageEvent('message', { data })), 0);
    }
  }

  /** @param {string} text */
  send(text) {
    const expected = T.frames[this.step++];
    if (expected?.text !== text) this.mismatches.push(text);
    this.play();
  }

  close(code = 1000, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    /** @type {Promise<void>} resolves once the close event was dispatched */
    this.closeDispatched = new Promise((resolve) => {
      setTimeout(() => {
        this.dispatchEvent(Object.assign(new Event('close'), { code, reason }));
        resolve();
      }, 0);
    });
  }
}

async function replayClient(options = {}) {
  const ids = [...T.agent_ids];
  const key = await AgentKey.fromSeed(fromHex(T.agent_seed));
  return new GatewayClient('ws://gateway.test:8000/ws', key, {
    WebSocket: /** @type {any} */ (ReplayWebSocket),
    metadata: T.metadata,
    clocks: { wallClock: () => T.agent_time_ms, newId: () => ids.shift() ?? 'no-more-ids' },
    ...options,
  });
}

test('connect, ping, send and receive as recorded with the real gateway', async () => {
  const client = await replayClient();
  await client.connect();
  const socket = ReplayWebSocket.made.at(-1);
  assert.equal(socket?.protocol, 'ioap.v1');
  assert.equal(client.state, 'registered');
  assert.equal(client.gatewayDid, T.gateway_did);
  assert.equal(client.sessionId, JSON.parse(T.frames[2].text).payload.session_id);
  assert.equal(client.agentTimeout, 300);
  assert.deepEqual(client.registration, JSON.parse(T.frames[2].text).payload);
  assert.ok((await client.ping()) >= 0);
  const id = await client.send(T.peer_did, 'OFFER', { sdp: 'v=0' });
  const error = await client.receive({ timeout: 5 });
  assert.equal(error.errorCode, 'UNKNOWN_AGENT');
  assert.equal(error.correlationId, id);
  assert.deepEqual(socket?.mismatches, []);
  await client.close();
  assert.equal(client.state, 'closed');
  await assert.rejects(client.receive(), ConnectionClosed);
  await assert.rejects(client.send(T.peer_did, 'OFFER', {}), ConnectionClosed);
  await client.waitClosed();
});

test('handlers for some types take those; the others still come out of receive()', async () => {
  const client = await replayClient();
  /** @type {string[]} */
  const taken = [];
  client.onMessage((message) => { taken.push(message.type); }, { types: ['OFFER', 'ANSWER', 'ICE_CANDIDATE'] });
  await client.connect();
  await client.ping();
  await client.send(T.peer_did, 'OFFER', { sdp: 'v=0' });
  const error = await client.receive({ timeout: 5 }); // an ERROR is not one of the handler's types
  assert.equal(error.type, 'ERROR');
  assert.deepEqual(taken, []);
  await client.close();
});

test('a handler for every type takes every message, and receive() refuses', async () => {
  const client = await replayClient();
  /** @type {string[]} */
  const taken = [];
  let resolve = () => {};
  const got = new Promise((done) => { resolve = () => done(undefined); });
  client.onMessage((message) => { taken.push(message.errorCode ?? message.type); resolve(); });
  await client.connect();
  await client.ping();
  await client.send(T.peer_did, 'OFFER', { sdp: 'v=0' });
  await got;
  assert.deepEqual(taken, ['UNKNOWN_AGENT']);
  await assert.rejects(client.receive(), /onMessage handlers/);
  await client.close();
});

test('receive() and ping() time out with TimeoutError; a bad recipient is refused before sending', async () => {
  const client = await replayClient();
  await client.connect();
  await assert.rejects(client.receive({ timeout: 0 }), TimeoutError);
  await assert.rejects(client.send('did:key:z6MkeTG3bFFSLYVU7VqhgZxqr6YzpaGrQtFMh1uvqGy1vDnP', 'OFFER', {}), /INVALID_DID|not a valid Ed25519/);
  await assert.rejects(client.send(T.peer_did, 'REGISTER', {}), TypeError);
  await client.close();
});

test('the arguments are checked at once', async () => {
  assert.throws(() => new GatewayClient('ftp://host/ws'), /unsupported scheme/);
  assert.throws(() => new GatewayClient('http://host:8000/health'), /HTTP endpoint/);
  assert.throws(() => new GatewayClient('ws://host/ws#x'), /fragment/);
  assert.throws(() => new GatewayClient('ws://h/ws', /** @type {any} */ (T.gateway_did)), /must be an AgentKey/);
  assert.throws(() => new GatewayClient('ws://h/ws', undefined, { expectedGatewayDid: 'did:key:zzz' }), /INVALID_DID|invalid DID/);
  assert.throws(() => new GatewayClient('ws://h/ws', undefined, { reconnect: { initialDelay: -1 } }), RangeError);
  assert.equal(new GatewayClient('127.0.0.1:8000').gatewayUrl, 'ws://127.0.0.1:8000/ws');
  assert.equal(new GatewayClient('https://gw.example').gatewayUrl, 'wss://gw.example/ws');
});

test('a gateway that is not there: GatewayConnectionError from connect(), and connect() may be tried again', async () => {
  class Refused extends EventTarget { // what a browser shows of a refused or failed upgrade: close 1006
    readyState = 0;
    binaryType = 'blob';
    constructor() {
      super();
      setTimeout(() => {
        this.readyState = 3;
        this.dispatchEvent(new Event('error'));
        this.dispatchEvent(Object.assign(new Event('close'), { code: 1006, reason: '' }));
      }, 0);
    }

    close() {}
  }
  const client = await replayClient({ WebSocket: Refused, connectTimeout: 5 });
  await assert.rejects(client.connect(), (error) => error instanceof GatewayConnectionError && /did not open/.test(error.message));
  assert.equal(client.state, 'idle');
  await assert.rejects(client.connect(), GatewayConnectionError);
});

test('a gateway that stops answering: the PING probe goes unanswered and the connection is dropped (1006)', async () => {
  class Silent extends ReplayWebSocket {
    play() {
      if (this.step < 3) super.play(); // the CHALLENGE and the REGISTERED, then nothing
    }
  }
  const client = await replayClient({ WebSocket: Silent, pingInterval: 0.05 });
  /** @type {string[]} */
  const states = [];
  client.onConnectionChange((event) => { states.push(`${event.state} ${event.code}`); });
  await client.connect();
  await client.waitClosed();
  assert.equal(client.closeCode, 1006);
  assert.match(client.closeReason ?? '', /did not answer a PING within 0.05 s/);
  assert.deepEqual(states, ['closed 1006']);
  const socket = /** @type {ReplayWebSocket} */ (ReplayWebSocket.made.at(-1));
  assert.equal(socket.mismatches.length, 0); // the probe is the recorded PING
  assert.equal(socket.step, 4);
});

test("a WebSocket that only says 'error' when it cannot connect (Node 22's) fails connect() at once", async () => {
  class ErrorOnly extends EventTarget {
    readyState = 0;
    binaryType = 'blob';
    constructor() {
      super();
      setTimeout(() => {
        this.readyState = 3;
        this.dispatchEvent(Object.assign(new Event('error'), { message: 'Received network error or non-101 status code.' }));
      }, 0);
    }

    close() {}
  }
  const client = await replayClient({ WebSocket: ErrorOnly, connectTimeout: 30 });
  const started = performance.now();
  await assert.rejects(client.connect(), (error) => error instanceof GatewayConnectionError && /network error/.test(error.message));
  assert.ok(performance.now() - started < 5000);
});

test('a gateway that never answers REGISTER: connect() fails after connectTimeout, nothing left unhandled', async () => {
  class Mute extends ReplayWebSocket {
    play() {
      if (this.step < 1) super.play(); // the CHALLENGE only
    }
  }
  /** @type {unknown[]} */
  const unhandled = [];
  const onUnhandled = (/** @type {unknown} */ reason) => { unhandled.push(reason); };
  process.on('unhandledRejection', onUnhandled);
  try {
    const client = await replayClient({ WebSocket: Mute, connectTimeout: 0.05 });
    await assert.rejects(client.connect(), /no registration at .* within 0.05 s/);
    await /** @type {ReplayWebSocket} */ (ReplayWebSocket.made.at(-1)).closeDispatched;
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
