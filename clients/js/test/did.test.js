import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  AgentKey, base58Decode, base58Encode, base64UrlDecode, didFromPublicKey, isValidDid, ProtocolError,
  publicKeyFromDid, publicKeyProblem,
} from '../src/index.js';
import { fromHex, readJson } from './helpers.js';

const W3C = readJson('tests/data/did-key/ed25519-x25519.json');
const INVALID = readJson('tests/data/did-key/invalid-ed25519.json').vectors;

test('every W3C did:key vector: the seed gives the DID, the DID gives the public key back', async () => {
  let checked = 0;
  for (const [did, vector] of Object.entries(W3C)) {
    const pair = vector.verificationKeyPair;
    const publicKey = pair.publicKeyBase58 ? base58Decode(pair.publicKeyBase58) : base64UrlDecode(pair.publicKeyJwk.x);
    assert.ok(publicKey);
    assert.equal(didFromPublicKey(publicKey), did);
    assert.deepEqual(publicKeyFromDid(did), publicKey);
    assert.ok(isValidDid(did));
    if (vector.seed) {
      const key = await AgentKey.fromSeed(fromHex(vector.seed));
      assert.equal(key.did, did);
    }
    checked += 1;
  }
  assert.ok(checked >= 5, `only ${checked} vectors`);
});

test('the worked example of docs/protocol.md section 4', async () => {
  const key = await AgentKey.fromSeed(new Uint8Array(32));
  assert.equal(Buffer.from(key.publicKey).toString('hex'), '3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29');
  assert.equal(key.did, 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp');
  assert.equal(base58Encode(fromHex('ed013b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29')),
    '6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp');
});

test('base58btc keeps leading zero bytes as 1s and refuses characters outside the alphabet', () => {
  assert.equal(base58Encode(Uint8Array.of(0, 0, 1)), '112');
  assert.deepEqual(base58Decode('112'), Uint8Array.of(0, 0, 1));
  assert.equal(base58Encode(new Uint8Array(0)), '');
  for (const bad of ['0', 'O', 'I', 'l', '+', 'é']) assert.equal(base58Decode(`z${bad}`), null);
});

// The kinds WebCrypto cannot tell us about without curve arithmetic (see src/did.js): the gateway
// refuses them, so no message from such a DID reaches a client; send() gets the gateway's INVALID_DID.
const CHECKED_HERE = new Set(['small-order', 'non-canonical']);

test('invalid Ed25519 keys: small-order and non-canonical DIDs are refused as the gateway refuses them', () => {
  const kinds = new Set(INVALID.map((vector) => vector.kind));
  assert.deepEqual([...kinds].sort(), ['mixed-order', 'non-canonical', 'off-curve', 'small-order']);
  let refused = 0;
  for (const vector of INVALID.filter((item) => CHECKED_HERE.has(item.kind))) {
    assert.equal(isValidDid(vector.did), false, `${vector.did} (${vector.why}) was accepted`);
    assert.throws(() => publicKeyFromDid(vector.did), (error) => error instanceof ProtocolError
      && error.code === 'INVALID_DID' && /not a valid Ed25519 public key/.test(error.message));
    assert.notEqual(publicKeyProblem(fromHex(vector.publicKeyHex)), null);
    refused += 1;
  }
  assert.equal(refused, 14);
});

test('WebCrypto would verify a forged signature for the all-zero key: that is why small-order keys are refused here', async () => {
  const key = await crypto.subtle.importKey('raw', new Uint8Array(32), { name: 'Ed25519' }, false, ['verify']);
  const forged = await crypto.subtle.verify('Ed25519', key, new Uint8Array(64), new TextEncoder().encode('any message'));
  assert.equal(forged, true, 'if WebCrypto starts refusing this, use its checks (src/did.js)');
  assert.equal(isValidDid('did:key:z6MkeTG3bFFSLYVU7VqhgZxqr6YzpaGrQtFMh1uvqGy1vDnP'), false);
});

test('malformed DIDs are refused with a reason and the expected form', () => {
  const good = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp';
  const rawKey = 'did:key:z' + base58Encode(fromHex('3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29'));
  const cases = [
    [good.replace('did:key:', 'did:web:'), /does not start with 'did:key:z'/],
    [good + 'a'.repeat(20), /longer than 64/],
    ['did:key:z6Mk0OIl', /not base58btc/],
    [rawKey, /no Ed25519 multicodec prefix/],
    ['did:key:z' + base58Encode(Uint8Array.of(0xed, 0x01, 1, 2, 3)), /3 bytes, not 32/],
    ['did:key:z1' + good.slice(9), /canonical base58btc spelling|multicodec prefix/],
    [42, /does not start/],
  ];
  for (const [did, why] of cases) {
    assert.throws(() => publicKeyFromDid(did), (error) => error instanceof ProtocolError && error.code === 'INVALID_DID'
      && why.test(error.message) && error.message.includes('expected did:key:z + base58btc'), String(did));
  }
});
