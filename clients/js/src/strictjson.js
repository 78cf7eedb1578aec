/**
 * Strict JSON parsing: one text, one meaning (docs/protocol.md section 3).
 *
 * `JSON.parse` keeps the last of two equal keys and takes `1e400` as Infinity, so a signed message
 * could mean one thing to us and another to the gateway or a Python agent. This parser refuses,
 * like the gateway's (aiconexus_gateway/strictjson.py): duplicate keys at any depth, lone surrogate
 * escapes, numbers outside the IEEE-754 double range, NaN and Infinity, nesting deeper than 32,
 * anything after the value. Numbers become doubles, as RFC 8785 reads them.
 * @module
 */

export const MAX_DEPTH = 32;

/** The text is not strict JSON; the message says why. */
export class StrictJSONError extends SyntaxError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'StrictJSONError';
  }
}

// eslint-disable-next-line no-control-regex
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const WHITESPACE = /[ \t\n\r]*/y;

/**
 * Whether a string is well-formed UTF-16 (no lone surrogate).
 * @param {string} text
 * @returns {boolean}
 */
export function isWellFormed(text) {
  const native = /** @type {{isWellFormed?: () => boolean}} */ (/** @type {unknown} */ (text)).isWellFormed;
  if (typeof native === 'function') return native.call(text);
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?:^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

/**
 * Parse `text` as strict JSON; StrictJSONError saying why when it is not.
 * @param {string} text
 * @param {{maxDepth?: number}} [options]
 * @returns {unknown}
 */
export function parseStrict(text, options = {}) {
  if (typeof text !== 'string') throw new TypeError('parseStrict takes a string');
  const parser = new Parser(text, options.maxDepth ?? MAX_DEPTH);
  parser.skipWhitespace();
  const value = parser.value(0);
  parser.skipWhitespace();
  if (parser.pos !== text.length) parser.fail('extra data after the JSON value');
  return value;
}

class Parser {
  /**
   * @param {string} text
   * @param {number} maxDepth
   */
  constructor(text, maxDepth) {
    this.text = text;
    this.pos = 0;
    this.maxDepth = maxDepth;
  }

  /**
   * @param {string} why
   * @returns {never}
   */
  fail(why) {
    throw new StrictJSONError(`not JSON: ${why} at position ${this.pos}`);
  }

  skipWhitespace() {
    WHITESPACE.lastIndex = this.pos;
    WHITESPACE.test(this.text);
    this.pos = WHITESPACE.lastIndex;
  }

  /**
   * @param {number} depth
   * @returns {unknown}
   */
  value(depth) {
    const char = this.text[this.pos];
    if (char === '{') return this.object(depth + 1);
    if (char === '[') return this.array(depth + 1);
    if (char === '"') return this.string();
    if (char === '-' || (char >= '0' && char <= '9')) return this.number();
    for (const [word, literal] of /** @type {const} */ ([['true', true], ['false', false], ['null', null]])) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return literal;
      }
    }
    for (const word of ['NaN', 'Infinity']) {
      if (this.text.startsWith(word, this.pos)) throw new StrictJSONError(`${word} is not JSON`);
    }
    return this.fail(char === undefined ? 'expecting a value, found the end' : 'expecting a value');
  }

  /** @param {number} depth */
  enter(depth) {
    if (depth > this.maxDepth) throw new StrictJSONError(`nesting deeper than ${this.maxDepth} levels`);
  }

  /**
   * @param {number} depth
   * @returns {Record<string, unknown>}
   */
  object(depth) {
    this.enter(depth);
    this.pos++;
    /** @type {Record<string, unknown>} */
    const result = {};
    const seen = new Set();
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return result;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') this.fail('expecting a property name in double quotes');
      const key = this.string();
      if (seen.has(key)) throw new StrictJSONError(`duplicate key ${JSON.stringify(key.slice(0, 64))}`);
      seen.add(key);
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') this.fail("expecting ':'");
      this.pos++;
      this.skipWhitespace();
      const item = this.value(depth);
      if (key === '__proto__') {
        Object.defineProperty(result, key, { value: item, enumerable: true, writable: true, configurable: true });
      } else {
        result[key] = item;
      }
      this.skipWhitespace();
      const next = this.text[this.pos++];
      if (next === '}') return result;
      if (next !== ',') {
        this.pos--;
        this.fail("expecting ',' or '}'");
      }
      this.skipWhitespace();
    }
  }

  /**
   * @param {number} depth
   * @returns {unknown[]}
   */
  array(depth) {
    this.enter(depth);
    this.pos++;
    /** @type {unknown[]} */
    const result = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return result;
    }
    for (;;) {
      result.push(this.value(depth));
      this.skipWhitespace();
      const next = this.text[this.pos++];
      if (next === ']') return result;
      if (next !== ',') {
        this.pos--;
        this.fail("expecting ',' or ']'");
      }
      this.skipWhitespace();
    }
  }

  /** @returns {string} */
  string() {
    STRING.lastIndex = this.pos;
    const match = STRING.exec(this.text);
    if (match === null) return this.fail('unterminated string, bad escape or control character in a string');
    this.pos = STRING.lastIndex;
    const token = match[0];
    const value = token.includes('\\') ? /** @type {string} */ (JSON.parse(token)) : token.slice(1, -1);
    if (!isWellFormed(value)) throw new StrictJSONError('lone surrogate in a string (not valid Unicode)');
    return value;
  }

  /** @returns {number} */
  number() {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (match === null) return this.fail('bad number');
    this.pos = NUMBER.lastIndex;
    const value = Number(match[0]);
    if (!Number.isFinite(value)) {
      throw new StrictJSONError(`number ${match[0].slice(0, 32)} is outside the IEEE-754 double range`);
    }
    return value;
  }
}
