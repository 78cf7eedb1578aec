/**
 * The RFC 8785 canonical text of a JSON value (plain objects, arrays, strings, finite numbers,
 * booleans, null).
 * @param {unknown} value
 * @returns {string}
 */
export function canonicalize(value: unknown): string;
/**
 * The RFC 8785 canonical UTF-8 bytes of a JSON value.
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function canonicalBytes(value: unknown): Uint8Array;
/** The value has no RFC 8785 form (NaN, Infinity, lone surrogates, non-JSON types, cycles). */
export class CanonicalizationError extends TypeError {
    /** @param {string} message */
    constructor(message: string);
}
