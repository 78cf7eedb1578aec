import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  AgentKey, associatedData, buildMessage, ClientSession, E2E, E2E_ALG, E2EError, hexEncode, loadSodium, parseEnvelope,
} from '../src/index.js';
import { fromHex, readJson } from './helpers.js';

// the vectors the Python SDK makes and checks too (tests/data/e2e/README.md)
const V = readJson('tests/data/e2e/vectors.json');

/** @param {string} name */
async function agent(name) {
  return AgentKey.fromSeed(fromHex(V.agents[name].seed));
}

test('the vectors name this construction, and each agent\'s X25519 keys are libsodium\'s conversion', async () => {
  assert.equal(V.alg, E2E_ALG);
  const sodium = await loadSodium();
  for (const [name, expected] of Object.entries(V.agents)) {
    const key = await agent(name);
    assert.equal(key.did, expected.did);
    const pair = sodium.crypto_sign_seed_keypair(fromHex(expected.seed));
    assert.equal(hexEncode(sodium.crypto_sign_ed25519_pk_to_curve25519(pair.publicKey)), expected.x25519_public);
    assert.equal(hexEncode(sodium.crypto_sign_ed25519_sk_to_curve25519(pair.privateKey)), expected.x25519_secret);
  }
});

test('every valid vector: sealed with its nonce gives its bytes; its frame opens to its payload', async () => {
  for (const vector of V.valid) {
    const sender = await agent(vector.sender);
    const recipient = await agent(vector.recipient);
    const sealer = await E2E.forKey(sender);
    const sealed = sealer.seal(recipient.did, vector.type, vector.id, vector.payload, { nonce: fromHex(vector.nonce) });
    assert.deepEqual(sealed, vector.sealed_payload, vector.name);
    assert.equal(new TextDecoder().decode(associatedData(sender.did, recipient.did, vector.type, vector.id)),
      vector.associated_data);
    const envelope = parseEnvelope(vector.frame);
    const opened = (await E2E.forKey(recipient)).open(envelope.sender, envelope.recipient, envelope.type, envelope.id,
      envelope.payload);
    assert.deepEqual(opened, vector.payload, vector.name);
  }
});

test('every invalid vector is refused with its code', async () => {
  assert.ok(V.invalid.length >= 10);
  for (const vector of V.invalid) {
    const envelope = parseEnvelope(vector.frame);
    const e2e = await E2E.forKey(await agent(vector.recipient));
    assert.throws(() => e2e.open(envelope.sender, envelope.recipient, envelope.type, envelope.id, envelope.payload),
      (error) => error instanceof E2EError && error.code === vector.error, `${vector.name}: ${vector.why}`);
  }
});

/** A ClientSession of `name`, registered with a gateway whose frames are made here. */
async function registeredAs(name) {
  const gateway = await AgentKey.fromSeed(new Uint8Array(32).fill(9));
  const key = await agent(name);
  const session = new ClientSession(key, {});
  session.connecting();
  const challenge = await buildMessage(gateway, 'CHALLENGE', null, { nonce: 'AAAA', expires_in: 30 });
  const register = await session.receive(challenge.text, 0);
  assert.equal(register?.kind, 'send');
  const registerId = JSON.parse(/** @type {any} */ (register).text).id;
  const done = await buildMessage(gateway, 'REGISTERED', key.did, { session_id: 's', agent_timeout: 300 },
    { correlationId: registerId });
  assert.equal((await session.receive(done.text, 0))?.kind, 'registered');
  return { session, gateway };
}

test('a session delivers an encrypted message decrypted, and reports (never delivers) one that does not open', async () => {
  const { session } = await registeredAs('bob');
  const delivered = await session.receive(V.valid[0].frame, 1);
  assert.equal(delivered?.kind, 'deliver');
  const message = /** @type {any} */ (delivered).message;
  assert.equal(message.encrypted, true);
  assert.deepEqual(message.payload, V.valid[0].payload);
  assert.deepEqual(message.fields.payload, V.valid[0].sealed_payload);
  for (const vector of V.invalid.filter((v) => v.recipient === 'bob')) {
    const before = session.invalidMessages;
    const decision = await session.receive(vector.frame, 1);
    assert.equal(decision?.kind, 'report', vector.name);
    assert.ok(/** @type {any} */ (decision).error.reason.startsWith(`${vector.error}:`), vector.name);
    assert.equal(session.invalidMessages, before + 1);
  }
});

test('a session sends encrypted: the frame carries only the sealed payload, which the peer opens', async () => {
  const { session: alice, gateway } = await registeredAs('alice');
  const bob = await agent('bob');
  const { id, text } = await alice.send(bob.did, 'EXEC_REQUEST', { method: 'sum', params: [1, 2] }, null, 1, undefined, true);
  assert.ok(text !== null && !text.includes('sum'));
  const envelope = parseEnvelope(text);
  assert.equal(envelope.id, id);
  assert.deepEqual(Object.keys(envelope.payload), ['e2e']);
  const opened = (await E2E.forKey(bob)).open(envelope.sender, envelope.recipient, envelope.type, envelope.id, envelope.payload);
  assert.deepEqual(opened, { method: 'sum', params: [1, 2] });
  await assert.rejects(alice.send(gateway.did, 'PING', {}, null, 1, undefined, true), TypeError);
});
