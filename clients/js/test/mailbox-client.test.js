// GatewayClient's mailbox (the pump's side) against a scripted gateway: a message with ttl is
// acknowledged only once the onMessage handlers returned or receive() returned it, a repeat is
// acknowledged again and never handed on twice, RECEIPTs resolve receipt() and are acknowledged,
// send() signs the ttl, mailbox() resolves to the gateway's answer or rejects with its ERROR.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AgentKey, buildMessage, GatewayError, TimeoutError } from '../src/index.js';
import { connected, GATEWAY, ScriptedGateway } from './scripted-gateway.js';

const ALICE = await AgentKey.generate();

/**
 * A frame from alice to the client, as the gateway forwards it.
 * @param {string | null} to
 * @param {Record<string, unknown>} payload
 * @param {Record<string, unknown>} [extra]
 */
async function fromAlice(to, payload, extra) {
  return (await buildMessage(ALICE, 'INTENT', to, payload, { extra })).text;
}

test('with onMessage: the ACK follows the handler; a repeat is acknowledged again, not handed on; no ttl, no ACK', async () => {
  const { client, gateway } = await connected();
  /** @type {any[]} */
  const handled = [];
  /** @type {() => void} */
  let release = () => {};
  const gate = new Promise((resolve) => { release = () => resolve(undefined); });
  /** @type {() => void} */
  let started = () => {};
  const inHandler = new Promise((resolve) => { started = () => resolve(undefined); });
  client.onMessage(async (message) => {
    handled.push(message.payload.n);
    if (message.payload.n === 1) {
      started();
      await gate;
    }
  });
  const letter = await fromAlice(gateway.agent, { n: 1 }, { ttl: 60 });
  gateway.deliver(letter);
  await inHandler;
  assert.equal(gateway.received.filter((message) => message.type === 'ACK').length, 0); // not while the handler runs
  release();
  const ack = await gateway.next('ACK');
  assert.deepEqual(ack.payload, { from: ALICE.did, id: JSON.parse(letter).id });
  assert.equal(ack.to, GATEWAY.did);
  gateway.deliver(letter); // the gateway did not hear the ACK: again after a reconnection
  const again = await gateway.next('ACK');
  assert.deepEqual(again.payload, ack.payload);
  gateway.deliver(await fromAlice(gateway.agent, { n: 2 })); // no ttl: handed on, never acknowledged
  const stored = await fromAlice(gateway.agent, { n: 3 }, { ttl: 5 });
  gateway.deliver(stored);
  assert.equal((await gateway.next('ACK')).payload.id, JSON.parse(stored).id);
  assert.deepEqual(handled, [1, 2, 3]);
  assert.equal(client.duplicates, 1);
  await client.close();
});

test('with receive(): the ACK is sent once receive() returned the message', async () => {
  const { client, gateway } = await connected();
  const letter = await fromAlice(gateway.agent, { n: 1 }, { ttl: 60 });
  gateway.deliver(letter);
  const ack = gateway.next('ACK');
  let acknowledged = false;
  ack.then(() => { acknowledged = true; });
  const message = await client.receive({ timeout: 5 });
  assert.equal(message.id, JSON.parse(letter).id);
  assert.equal((await ack).payload.id, message.id);
  assert.equal(acknowledged, true);
  await client.close();
});

test('receipt() resolves from the RECEIPT, before or after it came; the RECEIPT is acknowledged and still delivered', async () => {
  const { client, gateway } = await connected();
  await assert.rejects(client.send(ALICE.did, 'INTENT', {}, { ttl: 0 }), /ttl must be a whole number/);
  await assert.rejects(client.send(ALICE.did, 'INTENT', {}, { ttl: 1.5 }), TypeError);
  const id = await client.send(ALICE.did, 'INTENT', { hello: 1 }, { ttl: 30 });
  const sent = await gateway.next('INTENT');
  assert.equal(sent.ttl, 30);
  const waiting = client.receipt(id, { timeout: 5 });
  const receiptId = await gateway.push('RECEIPT', { id, to: ALICE.did, status: 'DELIVERED' }, id);
  assert.equal(await waiting, 'DELIVERED');
  assert.equal(await client.receipt(id), 'DELIVERED'); // already came: at once
  assert.deepEqual((await gateway.next('ACK')).payload, { from: GATEWAY.did, id: receiptId });
  const delivered = await client.receive({ timeout: 5 });
  assert.equal(delivered.type, 'RECEIPT');
  await assert.rejects(client.receipt('never-sent', { timeout: 0.05 }), TimeoutError);
  await client.close();
});

test("mailbox() sends the agent's rules and resolves to the gateway's answer; an ERROR is a GatewayError", async () => {
  ScriptedGateway.answer = (message) => {
    if (message.type !== 'MAILBOX') return null;
    if (message.payload.enabled === false) return ['ERROR', { code: 'MAILBOX_REFUSED', message: 'no mailbox', details: { reason: 'unavailable' } }];
    return ['MAILBOX', { enabled: true, blocked: message.payload.blocked ?? [], messages: 0, bytes: 0, receipts: 0 }];
  };
  const { client, gateway } = await connected();
  const view = await client.mailbox({ blocked: [ALICE.did] });
  assert.deepEqual(view, { enabled: true, blocked: [ALICE.did], messages: 0, bytes: 0, receipts: 0 });
  assert.deepEqual(gateway.received.at(-1).payload, { blocked: [ALICE.did] });
  await assert.rejects(client.mailbox({ enabled: false }), (error) => error instanceof GatewayError && error.code === 'MAILBOX_REFUSED');
  await assert.rejects(client.mailbox({ blocked: ['did:key:nope'] }), /INVALID_DID|did/i);
  ScriptedGateway.answer = () => null;
  await client.close();
});
