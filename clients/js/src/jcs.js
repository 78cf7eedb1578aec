/**
 * RFC 8785 JSON Canonicalization Scheme: the bytes a signature covers (docs/protocol.md section 5).
 *
 * JCS is defined on ECMAScript's own serialization: numbers are written by Number.prototype
 * toString (3.2.2.3) and strings as JSON.stringify escapes them (3.2.2.2); object members are
 * sorted by their keys as UTF-16 code units (3.2.3), which is what Array.prototype.sort does
 * with strings. What is left to do is to refuse what has no canonical form.
 * @module
 */

import { isWellFormed } from './strictjson.js';

/** The value has no RFC 8785 form (NaN, Infinity, lone surrogates, non-JSON types, cycles). */
export class CanonicalizationError extends TypeError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'CanonicalizationError';
  }
}

const MAX_NESTING = 1000;

/**
 * The RFC 8785 canonical text of a JSON value (plain objects, arrays, strings, finite numbers,
 * booleans, null).
 * @param {unknown} value
 * @returns {string}
 */
export function canonicalize(value) {
  return write(value, 0);
}

const encoder = new TextEncoder();

/**
 * The RFC 8785 canonical UTF-8 bytes of a JSON value.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function canonicalBytes(value) {
  return encoder.encode(write(value, 0));
}

/**
 * @param {unknown} value
 * @param {number} depth
 * @returns {string}
 */
function write(value, depth) {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new CanonicalizationError('NaN and infinities have no JSON form');
      return String(value); // -0 gives "0", as RFC 8785 asks
    case 'string':
      if (!isWellFormed(value)) throw new CanonicalizationError('a string holds a lone surrogate');
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw new CanonicalizationError(`${typeof value} is not a JSON value`);
  }
  if (depth >= MAX_NESTING) throw new CanonicalizationError('the value nests too deeply or refers to itself');
  if (Array.isArray(value)) {
    return `[${value.map((item) => write(item, depth + 1)).join(',')}]`;
  }
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) {
    const name = /** @type {{constructor?: {name?: string}}} */ (value).constructor?.name ?? 'object';
    throw new CanonicalizationError(`${name} is not a JSON value (plain objects and arrays only)`);
  }
  const record = /** @type {Record<string, unknown>} */ (value);
  const keys = Object.keys(record).sort();
  const members = [];
  for (const key of keys) {
    if (record[key] === undefined) continue; // as JSON.stringify, which writes the frame, leaves it out
    if (!isWellFormed(key)) throw new CanonicalizationError('a key holds a lone surrogate');
    members.push(`${JSON.stringify(key)}:${write(record[key], depth + 1)}`);
  }
  return `{${members.join(',')}}`;
}
