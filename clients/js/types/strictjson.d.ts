/**
 * Whether a string is well-formed UTF-16 (no lone surrogate).
 * @param {string} text
 * @returns {boolean}
 */
export function isWellFormed(text: string): boolean;
/**
 * Parse `text` as strict JSON; StrictJSONError saying why when it is not.
 * @param {string} text
 * @param {{maxDepth?: number}} [options]
 * @returns {unknown}
 */
export function parseStrict(text: string, options?: {
    maxDepth?: number;
}): unknown;
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
export const MAX_DEPTH: 32;
/** The text is not strict JSON; the message says why. */
export class StrictJSONError extends SyntaxError {
    /** @param {string} message */
    constructor(message: string);
}
