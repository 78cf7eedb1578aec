// GatewayClient's discovery and presence (the pump's side) against a scripted gateway that signs
// its messages: answers matched to their requests, ERROR answers as GatewayError, PRESENCE to
// onPresence handlers or else presence(), requests and presence() ended by close().
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AgentKey, ConnectionClosed, GatewayClient, GatewayError, TimeoutError } from '../src/index.js';
import { connected, ScriptedGateway } from './scripted-gateway.js';

test('discover() before connect() is ConnectionClosed; the card goes in REGISTER', async () => {
  const idle = new GatewayClient('ws://gateway.test/ws');
  await assert.rejects(idle.discover({ capability: 'x' }), ConnectionClosed);
  const { client, gateway } = await connected({ card: { name: 'Me', capabilities: ['x'] }, unlisted: true });
  assert.deepEqual(gateway.received[0].payload.card, { name: 'Me', capabilities: ['x'] });
  assert.equal(gateway.received[0].payload.unlisted, true);
  await client.close();
});

test("answers are matched to their request; an ERROR answer is a GatewayError; no answer is a TimeoutError", async () => {
  ScriptedGateway.answer = (message) => {
    if (message.type === 'DISCOVER' && message.payload.capability === 'bad') {
      return ['ERROR', { code: 'MALFORMED_MESSAGE', message: "'capability' must be ...", details: { member: 'capability' } }];
    }
    if (message.type === 'DISCOVER' && message.payload.capability === 'silent') return null;
    if (message.type === 'DISCOVER') {
      return ['DISCOVERED', { agents: [{ did: 'did:key:z6MkA', card: null }], next: message.payload.cursor ? null : 'did:key:z6MkA', scope: 'cluster' }];
    }
    if (message.type === 'WATCH') return ['WATCHING', { agents: message.payload.dids.map((/** @type {string} */ did) => ({ did, state: 'offline' })), watching: 1 }];
    if (message.type === 'UNWATCH') return ['WATCHING', { agents: [], watching: 0 }];
    return null;
  };
  const { client, gateway } = await connected();
  const page = await client.discover('translate');
  assert.deepEqual(page.agents, [{ did: 'did:key:z6MkA', card: null, name: null, capabilities: [] }]);
  assert.equal(page.scope, 'cluster');
  assert.deepEqual(gateway.received.at(-1).payload, { capability: 'translate' });
  const all = [];
  for await (const agent of client.discoverAll({ namePrefix: 'tr' })) all.push(agent.did);
  assert.deepEqual(all, ['did:key:z6MkA', 'did:key:z6MkA']); // two pages, 100 each, the cursor followed
  assert.deepEqual(gateway.received.at(-1).payload, { name_prefix: 'tr', limit: 100, cursor: 'did:key:z6MkA' });
  await assert.rejects(client.discover({ capability: 'bad' }),
    (error) => error instanceof GatewayError && error.code === 'MALFORMED_MESSAGE' && error.details?.member === 'capability');
  await assert.rejects(client.discover({ capability: 'silent' }, { timeout: 0.05 }), TimeoutError);
  const bob = (await AgentKey.generate()).did;
  assert.deepEqual(await client.watch([bob]), { [bob]: 'offline' });
  assert.deepEqual(client.watching, [bob]);
  await assert.rejects(client.watch(['did:key:nope']), /INVALID_DID|did/i);
  await client.unwatch([bob]);
  assert.deepEqual(client.watching, []);
  await client.close();
});

test('PRESENCE goes to the onPresence handlers when there are any, else to presence(), which ends at close()', async () => {
  const { client, gateway } = await connected();
  /** @type {any[]} */
  const handled = [];
  /** @type {() => void} */
  let twoHandled = () => {};
  const handledTwo = new Promise((resolve) => { twoHandled = () => resolve(undefined); });
  const removeHandler = client.onPresence((event) => {
    handled.push(event);
    if (handled.length === 2) twoHandled();
  });
  await gateway.push('PRESENCE', { did: 'did:key:z6MkB', event: 'online', state: 'online' });
  await gateway.push('PRESENCE', { did: 'did:key:z6MkB', event: 'bogus' }); // malformed: dropped
  await gateway.push('PRESENCE', { did: 'did:key:z6MkB', event: 'replaced', state: 'online', changes: 2 });
  const stream = client.presence();
  await handledTwo;
  const first = stream.next();
  removeHandler();
  await gateway.push('PRESENCE', { did: 'did:key:z6MkB', event: 'offline', state: 'offline' });
  assert.deepEqual((await first).value, { did: 'did:key:z6MkB', event: 'offline', state: 'offline', changes: 1 });
  assert.deepEqual(handled, [
    { did: 'did:key:z6MkB', event: 'online', state: 'online', changes: 1 },
    { did: 'did:key:z6MkB', event: 'replaced', state: 'online', changes: 2 },
  ]);
  // nothing of this reached receive()
  await assert.rejects(client.receive({ timeout: 0.05 }), TimeoutError);
  const pending = stream.next();
  /** @type {() => void} */
  let watchArrived = () => {};
  const arrived = new Promise((resolve) => { watchArrived = () => resolve(undefined); });
  ScriptedGateway.answer = () => {
    watchArrived();
    return null; // never answered
  };
  const unanswered = assert.rejects(client.watch([(await AgentKey.generate()).did]), ConnectionClosed);
  await arrived;
  await client.close();
  assert.deepEqual(await pending, { value: undefined, done: true });
  await unanswered; // the request in flight failed
  assert.equal((await client.presence().next()).done, true); // a later presence() ends too
});
