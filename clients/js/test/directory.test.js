// Discovery and presence (src/directory.js), without sockets: the card's checks, the DISCOVER
// payload, every discovered card checked against its agent's signed REGISTER (forged or altered
// entries dropped), WATCHING and PRESENCE answers, the watch set.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  checkCard, checkCardProof, discoveryPage, MAX_CARD_BYTES, presenceEvent, requestPayload, WatchSet, WATCH_BATCH,
  watchStates,
} from '../src/directory.js';
import { AgentKey, base64Encode, buildMessage, canonicalBytes, ClientSession, GatewayClient } from '../src/index.js';

const CARD = { name: 'Translator', description: 'fr <-> en', version: '2.1', capabilities: ['translate', 'llm:chat'], skills: [{ id: 'translate' }] };

/**
 * A REGISTER signed by `key`, as the gateway hands it along in DISCOVERED.
 * @param {AgentKey} key
 * @param {Record<string, unknown>} card
 */
async function register(key, card) {
  const { text } = await buildMessage(key, 'REGISTER', key.did, { nonce: 'n', card }, { now: 1_790_000_000_000 });
  return JSON.parse(text);
}

test('a card is checked as the gateway checks it, naming the member that is wrong', () => {
  assert.deepEqual(checkCard(CARD), CARD);
  assert.notEqual(checkCard(CARD), CARD); // a copy
  assert.deepEqual(checkCard({ name: 'x' }), { name: 'x' });
  const bad = [
    [[], "'card' must be an object"],
    [{}, 'card.name must be a string of 1-64'],
    [{ name: '' }, 'card.name must be a string of 1-64'],
    [{ name: 'x'.repeat(65) }, 'card.name must be a string of 1-64'],
    [{ name: 'x', description: 3 }, 'card.description must be a string of 1-1024'],
    [{ name: 'x', version: 'v'.repeat(33) }, 'card.version must be a string of 1-32'],
    [{ name: 'x', capabilities: 'translate' }, 'card.capabilities must be a list of at most 32'],
    [{ name: 'x', capabilities: Array.from({ length: 33 }, (_, i) => `c${i}`) }, 'at most 32'],
    [{ name: 'x', capabilities: ['ok', 'not ok'] }, 'card.capabilities[1] must be 1-64 characters'],
    [{ name: 'x', capabilities: ['a', 'a'] }, 'must not repeat'],
    [{ name: 'x', notes: 'y'.repeat(MAX_CARD_BYTES) }, `bytes; at most ${MAX_CARD_BYTES}`],
  ];
  for (const [card, words] of bad) {
    assert.throws(() => checkCard(card), (error) => error instanceof TypeError && error.message.includes(words), JSON.stringify(card).slice(0, 60));
  }
  // 64 characters, not 64 UTF-16 units
  assert.doesNotThrow(() => checkCard({ name: '😀'.repeat(64) }));
});

test('the client refuses a bad card or unlisted at once, and its REGISTER carries both, signed', async () => {
  assert.throws(() => new GatewayClient('ws://127.0.0.1:1/ws', undefined, { card: { name: '' } }), /card\.name/);
  assert.throws(() => new GatewayClient('ws://127.0.0.1:1/ws', undefined, { card: CARD, unlisted: 'yes' }), /unlisted must be true or false/);
  const key = await AgentKey.generate();
  const gateway = await AgentKey.generate();
  const session = new ClientSession(key, { card: CARD, unlisted: true });
  session.connecting();
  const { text: challenge } = await buildMessage(gateway, 'CHALLENGE', null, { nonce: 'abc' });
  const decision = await session.receive(challenge, 1);
  assert.equal(decision?.kind, 'send');
  const sent = JSON.parse(decision.text);
  assert.deepEqual(sent.payload, { nonce: 'abc', card: CARD, unlisted: true });
  assert.equal(await checkCardProof(key.did, CARD, sent), null); // its own REGISTER proves its card
  const plain = new ClientSession(key, {});
  plain.connecting();
  const bare = await plain.receive(challenge, 1);
  assert.deepEqual(JSON.parse(bare.text).payload, { nonce: 'abc' }); // no card: nothing added
});

test('the DISCOVER payload takes the wire names; a wrong type or an unknown member is a TypeError', () => {
  assert.deepEqual(requestPayload(), {});
  assert.deepEqual(requestPayload({ capability: 'translate', namePrefix: 'Tr', dids: ['did:key:z'], limit: 5, cursor: 'c' }),
    { capability: 'translate', name_prefix: 'Tr', dids: ['did:key:z'], limit: 5, cursor: 'c' });
  assert.deepEqual(requestPayload({ capability: undefined, cursor: null }), {});
  assert.throws(() => requestPayload({ capabilty: 'x' }), /unknown query member "capabilty"/);
  assert.throws(() => requestPayload({ limit: 2.5 }), /limit must be a whole number/);
  assert.throws(() => requestPayload({ dids: 'did:key:z' }), /dids must be a list/);
  assert.throws(() => requestPayload({ capability: 3 }), /capability must be a string/);
});

test('a discovered card is kept only when its agent signed it: forged or altered entries are dropped and reported', async () => {
  const alice = await AgentKey.generate();
  const bob = await AgentKey.generate();
  const carol = await AgentKey.generate();
  const proof = await register(alice, CARD);
  const mallory = { ...CARD, name: 'Mallory' };
  const renamed = structuredClone(proof);
  renamed.payload.card = mallory;
  const borrowed = await register(bob, CARD);
  borrowed.from = alice.did; // bob's signature, alice's name
  const notRegister = { ...proof, type: 'PING' };
  const badSignature = { ...proof, signature: 'A'.repeat(86) + '==' };
  const page = await discoveryPage({
    agents: [
      { did: alice.did, card: CARD, register: proof }, // genuine
      { did: carol.did, card: null }, // no card: nothing to prove
      { did: alice.did, card: mallory, register: proof }, // another card than the one signed
      { did: alice.did, card: mallory, register: renamed }, // the signed REGISTER altered
      { did: bob.did, card: CARD, register: proof }, // alice's proof for bob's DID
      { did: alice.did, card: CARD, register: borrowed },
      { did: alice.did, card: CARD, register: notRegister },
      { did: alice.did, card: CARD, register: badSignature },
      { did: alice.did, card: CARD }, // no proof at all
      { did: alice.did, card: 'Translator', register: proof },
      { card: CARD, register: proof }, // no DID
      'junk',
    ],
    next: 'did:key:zLast',
    scope: 'cluster',
  });
  assert.deepEqual(page.agents, [
    { did: alice.did, card: CARD, name: 'Translator', capabilities: ['translate', 'llm:chat'] },
    { did: carol.did, card: null, name: null, capabilities: [] },
  ]);
  assert.equal(page.rejected, 10);
  assert.equal(page.problems.length, 10);
  assert.deepEqual(page.problems.slice(0, 3).map((problem) => problem.reason), [
    'the card is not the one its agent signed', "the REGISTER's signature does not verify against the agent's DID",
    "the card's proof is not a REGISTER signed by the agent",
  ]);
  assert.equal(page.next, 'did:key:zLast');
  assert.equal(page.scope, 'cluster');
  const last = await discoveryPage({ agents: [] });
  assert.deepEqual([last.next, last.scope, last.rejected], [null, 'instance', 0]);
});

test('a proof without the optional members verifies over them as null, like the Python SDK', async () => {
  const alice = await AgentKey.generate();
  const fields = { type: 'REGISTER', from: alice.did, payload: { nonce: 'n', card: CARD }, id: null, to: null, timestamp: null, version: null };
  const signature = base64Encode(await alice.sign(canonicalBytes(fields)));
  const proof = { type: 'REGISTER', from: alice.did, payload: fields.payload, signature };
  assert.equal(await checkCardProof(alice.did, CARD, proof), null);
});

test('WATCHING and PRESENCE answers', () => {
  assert.deepEqual(watchStates({ agents: [{ did: 'a', state: 'online' }, { did: 'b', state: 'offline' }, { did: 'c', state: '?' }, 'junk'], watching: 3 }),
    { a: 'online', b: 'offline', c: 'offline' });
  assert.deepEqual(watchStates({}), {});
  assert.deepEqual(presenceEvent({ did: 'a', event: 'online', state: 'online' }), { did: 'a', event: 'online', state: 'online', changes: 1 });
  assert.deepEqual(presenceEvent({ did: 'a', event: 'replaced', state: 'online', changes: 3 }), { did: 'a', event: 'replaced', state: 'online', changes: 3 });
  assert.deepEqual(presenceEvent({ did: 'a', event: 'offline', changes: -1 }), { did: 'a', event: 'offline', state: 'offline', changes: 1 });
  assert.equal(presenceEvent({ did: 'a', event: 'gone' }), null);
  assert.equal(presenceEvent({ event: 'online' }), null);
});

test('the watch set keeps first-watched order and is sent again in WATCHes of at most 100', () => {
  const watching = new WatchSet();
  const dids = Array.from({ length: 250 }, (_, i) => `did:${i}`);
  watching.add(dids);
  watching.add(['did:0']);
  watching.remove(['did:1']);
  const batches = watching.batches();
  assert.deepEqual(batches.map((batch) => batch.length), [WATCH_BATCH, WATCH_BATCH, 49]);
  assert.deepEqual(batches[0].slice(0, 2), ['did:0', 'did:2']);
  assert.deepEqual(new WatchSet().batches(), []);
});
