// The agent's side of the mailbox (src/mailbox.js), without sockets.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Acknowledgements, acknowledged, checkTtl } from '../src/mailbox.js';

test('a message is handed on once; a repeat after it was finished is acknowledged again', () => {
  const acks = new Acknowledgements();
  assert.equal(acks.arrived('did:key:a', 'm1'), 'new');
  assert.equal(acks.arrived('did:key:a', 'm1'), 'handling');
  assert.equal(acks.finished('did:key:a', 'm1'), true);
  assert.equal(acks.finished('did:key:a', 'm1'), false); // once
  assert.equal(acks.arrived('did:key:a', 'm1'), 'done');
  assert.equal(acks.arrived('did:key:b', 'm1'), 'new'); // another sender's id
  assert.equal(acks.duplicates, 2);
});

test('the memory of seen messages is bounded, oldest first', () => {
  const acks = new Acknowledgements(2);
  for (const id of ['m0', 'm1', 'm2']) assert.equal(acks.arrived('did:key:a', id), 'new');
  assert.equal(acks.arrived('did:key:a', 'm0'), 'new');
  assert.equal(acks.arrived('did:key:a', 'm2'), 'handling');
});

test('what needs an ACK: messages with a ttl from agents, RECEIPTs from the gateway', () => {
  assert.equal(acknowledged('did:key:a', 'INTENT', true, 'did:key:gw'), true);
  assert.equal(acknowledged('did:key:a', 'INTENT', false, 'did:key:gw'), false);
  assert.equal(acknowledged('did:key:gw', 'RECEIPT', false, 'did:key:gw'), true);
  assert.equal(acknowledged('did:key:gw', 'QUEUED', false, 'did:key:gw'), false);
});

test('ttl is whole seconds from 1', () => {
  assert.equal(checkTtl(30), 30);
  for (const bad of [0, -1, 1.5, '30', true, null, 2 ** 31]) assert.throws(() => checkTtl(bad), TypeError);
});
