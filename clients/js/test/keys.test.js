import assert from 'node:assert/strict';
import { test } from 'node:test';

import { AgentKey, hexEncode } from '../src/index.js';

test('a generated key survives its JWK and its seed: same DID, same signatures', async () => {
  const key = await AgentKey.generate();
  assert.match(key.did, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
  const jwk = await key.toJwk();
  assert.deepEqual(Object.keys(jwk).sort(), ['crv', 'd', 'kty', 'x']);
  const again = await AgentKey.fromJwk(JSON.parse(JSON.stringify(jwk)));
  assert.equal(again.did, key.did);
  const seed = await key.seed();
  assert.equal(seed.length, 32);
  const third = await AgentKey.fromSeed(seed);
  assert.equal(third.did, key.did);
  const data = new TextEncoder().encode('same bytes');
  assert.deepEqual(await third.sign(data), await key.sign(data)); // Ed25519 is deterministic
});

test("the Python SDK's key file: read and written in the same form", async () => {
  const file = { type: 'Ed25519', did: 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp', seed: '00'.repeat(32) };
  const key = await AgentKey.fromKeyFile(JSON.stringify(file));
  assert.equal(key.did, file.did);
  assert.deepEqual(await key.toKeyFile(), file);
  await assert.rejects(AgentKey.fromKeyFile({ ...file, did: 'did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX' }), /not its seed's/);
  await assert.rejects(AgentKey.fromKeyFile({ type: 'Ed25519', seed: 'zz' }), /not a key file/);
});

test('bad JWKs and seeds are refused with a reason', async () => {
  const jwk = await (await AgentKey.generate()).toJwk();
  const other = await (await AgentKey.generate()).toJwk();
  await assert.rejects(AgentKey.fromJwk({ ...jwk, x: other.x }), /x is not the public key of its d/);
  await assert.rejects(AgentKey.fromJwk({ ...jwk, kty: 'EC' }), TypeError);
  await assert.rejects(AgentKey.fromJwk({ ...jwk, d: 'AAAA' }), /not 32 bytes/);
  await assert.rejects(AgentKey.fromSeed(new Uint8Array(31)), TypeError);
});

test('a non-extractable key signs but does not give its private key away', async () => {
  const key = await AgentKey.generate({ extractable: false });
  assert.equal(key.privateKey.extractable, false);
  assert.equal((await key.sign(new Uint8Array(1))).length, 64);
  await assert.rejects(key.toJwk());
  const fromSeed = await AgentKey.fromSeed(new Uint8Array(32), { extractable: false });
  assert.equal(fromSeed.privateKey.extractable, false);
  assert.equal(hexEncode(fromSeed.publicKey), '3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29');
});
