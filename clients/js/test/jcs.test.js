import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';

import { canonicalBytes, canonicalize, CanonicalizationError, parseStrict } from '../src/index.js';
import { DATA } from './helpers.js';

const names = readdirSync(`${DATA}jcs/input`).filter((name) => name.endsWith('.json')).sort();

test('there are RFC 8785 vectors to check', () => {
  assert.ok(names.length >= 6, names.join(', '));
});

for (const name of names) {
  test(`RFC 8785 vector ${name}: canonical bytes equal the expected output`, () => {
    const input = readFileSync(`${DATA}jcs/input/${name}`, 'utf8');
    const expected = readFileSync(`${DATA}jcs/output/${name}`);
    assert.deepEqual(Buffer.from(canonicalBytes(parseStrict(input))), expected);
  });
}

test('the number table of docs/protocol.md section 5', () => {
  const table = [['30.0', '30'], ['30', '30'], ['3e1', '30'], ['-0.0', '0'], ['1.5', '1.5'], ['0.000001', '0.000001'],
    ['1e-7', '1e-7'], ['1e21', '1e+21'], ['100.0', '100'], ['9007199254740993', '9007199254740992'],
    ['12345678901234567890', '12345678901234567000']];
  for (const [frame, canonical] of table) assert.equal(canonicalize(parseStrict(frame)), canonical, frame);
});

test('keys sort by UTF-16 code units at every depth; strings escape as RFC 8785 says', () => {
  const value = { b: [{ z: 1, a: 2 }], a: '\u00e9\u20ac\ud83d\ude00', '\ud83d\ude00': 1, '\uffff': 2, 'A': '/\u007f\u0001\n"\\' };
  assert.equal(canonicalize(value), '{"A":"/\u007f\\u0001\\n\\"\\\\","a":"é€😀","b":[{"a":2,"z":1}],"😀":1,"\uffff":2}');
});

test('values without a canonical form are refused', () => {
  for (const bad of [NaN, Infinity, -Infinity, 1n, () => 1, Symbol('x'), new Date(0), new Map(), '\ud800', { '\udc00': 1 }, [undefined]]) {
    assert.throws(() => canonicalize(bad), CanonicalizationError, String(typeof bad));
  }
  const cycle = /** @type {any} */ ({});
  cycle.self = cycle;
  assert.throws(() => canonicalize(cycle), CanonicalizationError);
});

test('an undefined member is left out, as JSON.stringify (which writes the frame) leaves it out', () => {
  assert.equal(canonicalize({ a: 1, b: undefined }), '{"a":1}');
});
