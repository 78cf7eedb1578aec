/**
 * base58btc (Bitcoin alphabet) of `bytes`, read as one big-endian number; each leading zero byte
 * is one leading '1'.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base58Encode(bytes: Uint8Array): string;
/**
 * The bytes of a base58btc text; `null` when a character is outside the alphabet.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function base58Decode(text: string): Uint8Array | null;
/**
 * Standard base64 with padding (RFC 4648 section 4).
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base64Encode(bytes: Uint8Array): string;
/**
 * The bytes of a standard base64 text, only when `text` is exactly what encoding them gives back
 * (RFC 4648 section 3.5: no whitespace, padding present, zero padding bits); else `null`.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function base64DecodeStrict(text: string): Uint8Array | null;
/**
 * base64url without padding (RFC 4648 section 5), as JWK and the gateway's nonces use.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base64UrlEncode(bytes: Uint8Array): string;
/**
 * The bytes of an unpadded base64url text; `null` when it is not one.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function base64UrlDecode(text: string): Uint8Array | null;
/**
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function hexEncode(bytes: Uint8Array): string;
/**
 * The bytes of an even-length hex text; `null` when it is not one.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function hexDecode(text: string): Uint8Array | null;
/**
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean;
