import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';

import {
  AgentKey, base64Encode, buildMessage, canonicalize, parseEnvelope, ProtocolError, signingInput, verifyEnvelope,
} from '../src/index.js';
import { readText } from './helpers.js';

// docs/protocol.md section 6, copied here and checked to be in the document verbatim
const DOC = readText('docs/protocol.md');
const GATEWAY_DID = 'did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX';
const AGENT_DID = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp';
const NONCE = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8';
const CHALLENGE = '{"id":"0c9a1f3e-7b2d-4c8e-a5f6-1d2e3f4a5b6c","type":"CHALLENGE","from":"did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX","to":null,"timestamp":"2026-11-26T10:00:00.000Z","version":"1.0","payload":{"nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","expires_in":30},"signature":"yfdxzAPm0yZRtB09bKc++bQjdhsQb7Es+gIsSGB4l+e9U5ilyyHgx5/bZVe9MbqzV+wsBgRkk0pvBJbOUaOvBw=="}';
const CHALLENGE_CANONICAL = '{"from":"did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX","id":"0c9a1f3e-7b2d-4c8e-a5f6-1d2e3f4a5b6c","payload":{"expires_in":30,"nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"},"timestamp":"2026-11-26T10:00:00.000Z","to":null,"type":"CHALLENGE","version":"1.0"}';
const REGISTER_CANONICAL = '{"from":"did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp","id":"5b3a2c1e-8f4d-4e6a-9b7c-0d1e2f3a4b5c","payload":{"metadata":{"name":"alice"},"nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"},"timestamp":"2026-11-26T10:00:00.123Z","to":"did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX","type":"REGISTER","version":"1.0"}';
const REGISTER_SHA256 = '170c1803954af17e17bd08c664b46a3d7e659de94529851d86325b6deaa94cc8';
const REGISTER_SIGNATURE_HEX = '0c3f46708c53c2481628ff3165e9c4f2afce8d1c869d37d61ecdb794925fe3bc30cd5368774eb7f2cc462c6caa46a82be0db490a9f5a70a04cd66922332a940b';
const REGISTER_FRAME = '{"id":"5b3a2c1e-8f4d-4e6a-9b7c-0d1e2f3a4b5c","type":"REGISTER","from":"did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp","to":"did:key:z6Mkon3Necd6NkkyfoGoHxid2znGc59LU3K7mubaRcFbLfLX","timestamp":"2026-11-26T10:00:00.123Z","version":"1.0","payload":{"nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","metadata":{"name":"alice"}},"signature":"DD9GcIxTwkgWKP8xZenE8q/OjRyGnTfWHs23lJJf47wwzVNod0638sxGLGyqRqgr4NtJCp9acKBM1mkiMyqUCw=="}';

test('the worked example values are in docs/protocol.md verbatim', () => {
  for (const value of [CHALLENGE, CHALLENGE_CANONICAL, REGISTER_CANONICAL, REGISTER_SHA256, REGISTER_SIGNATURE_HEX, REGISTER_FRAME]) {
    assert.ok(DOC.includes(value), `not in docs/protocol.md: ${value.slice(0, 60)}...`);
  }
});

test('6.1: the CHALLENGE parses, canonicalizes to its 277 bytes and verifies against the gateway DID', async () => {
  const envelope = parseEnvelope(CHALLENGE);
  assert.equal(envelope.sender, GATEWAY_DID);
  const bytes = signingInput(envelope.fields);
  assert.equal(bytes.length, 277);
  assert.equal(new TextDecoder().decode(bytes), CHALLENGE_CANONICAL);
  await verifyEnvelope(envelope);
});

test('6.2: the REGISTER is built byte for byte as the document shows it', async () => {
  const key = await AgentKey.fromSeed(new Uint8Array(32));
  assert.equal(key.did, AGENT_DID);
  const { text, id } = await buildMessage(key, 'REGISTER', GATEWAY_DID, { nonce: NONCE, metadata: { name: 'alice' } },
    { id: '5b3a2c1e-8f4d-4e6a-9b7c-0d1e2f3a4b5c', now: Date.parse('2026-11-26T10:00:00.123Z') });
  assert.equal(id, '5b3a2c1e-8f4d-4e6a-9b7c-0d1e2f3a4b5c');
  assert.equal(text, REGISTER_FRAME);
  const canonical = signingInput(parseEnvelope(text).fields);
  assert.equal(canonical.length, 342);
  assert.equal(new TextDecoder().decode(canonical), REGISTER_CANONICAL);
  assert.equal(createHash('sha256').update(canonical).digest('hex'), REGISTER_SHA256);
  assert.equal(Buffer.from(await key.sign(canonical)).toString('hex'), REGISTER_SIGNATURE_HEX);
});

test('any member order and whitespace verify: the signature covers the parsed values', async () => {
  const object = JSON.parse(REGISTER_FRAME);
  const reordered = `{\n "signature": ${JSON.stringify(object.signature)},\n "payload": {"metadata": {"name": "al\\u0069ce"}, "nonce": "${NONCE}"},`
    + ` "version": "1.0", "timestamp": "2026-11-26T10:00:00.123Z", "to": "${GATEWAY_DID}", "from": "${AGENT_DID}", "type": "REGISTER",`
    + ` "id": "5b3a2c1e-8f4d-4e6a-9b7c-0d1e2f3a4b5c"}`;
  await verifyEnvelope(parseEnvelope(reordered));
});

/**
 * @param {string} text
 * @param {string} code
 */
async function refusedAs(text, code) {
  await assert.rejects(async () => verifyEnvelope(parseEnvelope(text)), (error) => error instanceof ProtocolError && error.code === code, text.slice(0, 80));
}

test('a changed member, a signature by another key, or another sender fails as INVALID_SIGNATURE', async () => {
  await refusedAs(REGISTER_FRAME.replace('"alice"', '"mallory"'), 'INVALID_SIGNATURE');
  await refusedAs(REGISTER_FRAME.replace('"version":"1.0"', '"version":"1.0","extra":1'), 'INVALID_SIGNATURE');
  await refusedAs(REGISTER_FRAME.replace(`"from":"${AGENT_DID}"`, `"from":"${GATEWAY_DID}"`), 'INVALID_SIGNATURE');
  const other = await AgentKey.generate();
  const object = JSON.parse(REGISTER_FRAME);
  delete object.signature;
  object.signature = base64Encode(await other.sign(new TextEncoder().encode(canonicalize(object).replace('x', 'x'))));
  await refusedAs(JSON.stringify(object), 'INVALID_SIGNATURE');
});

test('only the canonical padded base64 of 64 bytes is a signature (section 5)', async () => {
  const signature = JSON.parse(REGISTER_FRAME).signature;
  assert.ok(signature.endsWith('Cw=='));
  const variants = [
    signature.replace('Cw==', 'Cx=='), // non-zero padding bits: same bytes to a lenient decoder
    signature.replace('==', ''),
    signature.replace('/', '_'),
    `${signature.slice(0, 40)}\\n${signature.slice(40)}`, // an escaped line break inside the text
    ` ${signature}`,
    signature.slice(4),
  ];
  for (const variant of variants) {
    assert.throws(() => parseEnvelope(REGISTER_FRAME.replace(signature, variant)),
      (error) => error instanceof ProtocolError && error.code === 'INVALID_SIGNATURE', variant);
  }
});

test('field checks in the gateway order (section 2.1)', () => {
  const base = JSON.parse(REGISTER_FRAME);
  /** @param {Record<string, unknown>} changes */
  const frame = (changes) => JSON.stringify(Object.fromEntries(Object.entries({ ...base, ...changes }).filter(([, value]) => value !== undefined)));
  const cases = [
    ['[1]', 'MALFORMED_MESSAGE', /must be a JSON object/],
    [frame({ id: '' }), 'MALFORMED_MESSAGE', /'id' must be/],
    [frame({ id: 'x'.repeat(129) }), 'MALFORMED_MESSAGE', /'id' must be/],
    [frame({ to: undefined }), 'MALFORMED_MESSAGE', /missing field 'to'/],
    [frame({ payload: [] }), 'MALFORMED_MESSAGE', /'payload' must be an object/],
    [frame({ to: 5 }), 'MALFORMED_MESSAGE', /'to' must be/],
    [frame({ correlation_id: '' }), 'MALFORMED_MESSAGE', /correlation_id/],
    [frame({ type: 'HELLO' }), 'MALFORMED_MESSAGE', /unknown message type/],
    [frame({ version: 'one' }), 'MALFORMED_MESSAGE', /version/],
    [frame({ version: '١.0' }), 'MALFORMED_MESSAGE', /version/],
    [frame({ version: '2.0' }), 'UNSUPPORTED_VERSION', /not supported/],
    [frame({ timestamp: '2026-11-26 10:00:00Z' }), 'MALFORMED_MESSAGE', /RFC 3339/],
    [frame({ timestamp: '٢٠٢٦-11-26T10:00:00Z' }), 'MALFORMED_MESSAGE', /RFC 3339/],
    ['{"id":"a","id":"b"}', 'MALFORMED_MESSAGE', /duplicate key/],
  ];
  for (const [text, code, why] of cases) {
    assert.throws(() => parseEnvelope(/** @type {string} */ (text)), (error) => error instanceof ProtocolError
      && error.code === code && /** @type {RegExp} */ (why).test(error.message), /** @type {string} */ (text).slice(0, 100));
  }
  for (const version of ['1', '1.0', '1.0.0', '1.2']) parseEnvelope(frame({ version }));
  const id128 = '😀'.repeat(128); // 128 code points, 256 UTF-16 units
  assert.equal(parseEnvelope(frame({ id: id128 })).id, id128);
});

test('large integers are signed as their double, as every strict verifier checks (section 3)', async () => {
  const key = await AgentKey.generate();
  const { text } = await buildMessage(key, 'INTENT', AGENT_DID, { n: 9007199254740993 });
  const received = text.replace('9007199254740992', '9007199254740993'); // a Python sender's exact digits
  await verifyEnvelope(parseEnvelope(received));
});
