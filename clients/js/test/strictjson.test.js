import assert from 'node:assert/strict';
import { test } from 'node:test';

import { canonicalize, parseStrict, StrictJSONError } from '../src/index.js';

test('plain JSON parses as JSON.parse does', () => {
  const text = ' {"a": [1, 2.5, -0, true, false, null, "x\\u00e9\\ud83d\\ude00"], "b": {"c": {}}, "d": []}\r\n\t';
  assert.deepEqual(parseStrict(text), JSON.parse(text));
});

test('the refusals of docs/protocol.md section 3', () => {
  const refused = {
    'duplicate key': '{"id":"a","id":"b"}',
    'duplicate key, deeper': '{"a":[{"x":1,"y":2,"x":3}]}',
    'duplicate key once unescaped': '{"a":1,"\\u0061":2}',
    'lone high surrogate': '"\\ud800"',
    'lone low surrogate': '{"k":"a\\udc00b"}',
    'reversed pair': '"\\udc00\\ud800"',
    'beyond the double range': '1e400',
    'a 400-digit integer': '1' + '0'.repeat(400),
    'negative beyond the range': '[-1.8e308]',
    NaN: '{"x": NaN}',
    Infinity: '[Infinity]',
    '-Infinity': '[-Infinity]',
    'nesting 33 deep': '['.repeat(33) + ']'.repeat(33),
    'data after the value': '{"id":"a"} x',
    'two values': '{} {}',
    'single quotes': "{'a':1}",
    'trailing comma': '[1,]',
    'leading zero': '01',
    'control character in a string': '"a\u0001"',
    'bad escape': '"\\x41"',
    'empty text': '',
    'only whitespace': '  ',
    'non-JSON whitespace': '\u00a0{}',
    comment: '{} // no',
  };
  for (const [why, text] of Object.entries(refused)) {
    assert.throws(() => parseStrict(text), StrictJSONError, why);
  }
});

test('nesting of exactly 32 is accepted; a pair of surrogates is fine; tiny numbers become 0', () => {
  assert.ok(parseStrict('['.repeat(32) + ']'.repeat(32)));
  assert.equal(parseStrict('"\\ud83d\\ude00"'), '😀');
  assert.equal(parseStrict('1e-400'), 0);
});

test('a "__proto__" key is an ordinary member, signed like any other', () => {
  const value = /** @type {Record<string, unknown>} */ (parseStrict('{"__proto__": {"x": 1}, "a": 2}'));
  assert.deepEqual(Object.keys(value), ['__proto__', 'a']);
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.equal(canonicalize(value), '{"__proto__":{"x":1},"a":2}');
});
