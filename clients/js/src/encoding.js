/**
 * Byte encodings the protocol uses: base58btc (did:key), standard base64 (signatures), base64url
 * (nonces, JWK), hex. Encodings only, no cryptography; strict where the gateway is strict.
 * @module
 */

const BASE58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
/** @type {Int16Array} */
const BASE58_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < BASE58_ALPHABET.length; i++) BASE58_INDEX[BASE58_ALPHABET.charCodeAt(i)] = i;

/**
 * base58btc (Bitcoin alphabet) of `bytes`, read as one big-endian number; each leading zero byte
 * is one leading '1'.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base58Encode(bytes) {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  /** @type {number[]} base-58 digits, least significant first */
  const digits = [];
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i];
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j] * 256;
      digits[j] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = Math.floor(carry / 58);
    }
  }
  let text = '1'.repeat(zeros);
  for (let i = digits.length - 1; i >= 0; i--) text += BASE58_ALPHABET[digits[i]];
  return text;
}

/**
 * The bytes of a base58btc text; `null` when a character is outside the alphabet.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function base58Decode(text) {
  let zeros = 0;
  while (zeros < text.length && text[zeros] === '1') zeros++;
  /** @type {number[]} bytes, least significant first */
  const bytes = [];
  for (let i = zeros; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? BASE58_INDEX[code] : -1;
    if (value < 0) return null;
    let carry = value;
    for (let j = 0; j < bytes.length; j++) {
      carry += bytes[j] * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  const out = new Uint8Array(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) out[out.length - 1 - i] = bytes[i];
  return out;
}

/**
 * Standard base64 with padding (RFC 4648 section 4).
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base64Encode(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary);
}

const BASE64_TEXT = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * The bytes of a standard base64 text, only when `text` is exactly what encoding them gives back
 * (RFC 4648 section 3.5: no whitespace, padding present, zero padding bits); else `null`.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function base64DecodeStrict(text) {
  if (text.length % 4 !== 0 || !BASE64_TEXT.test(text)) return null;
  let binary;
  try {
    binary = atob(text);
  } catch {
    return null;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return base64Encode(bytes) === text ? bytes : null;
}

/**
 * base64url without padding (RFC 4648 section 5), as JWK and the gateway's nonces use.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function base64UrlEncode(bytes) {
  return base64Encode(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * The bytes of an unpadded base64url text; `null` when it is not one.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function base64UrlDecode(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  return base64DecodeStrict(padded);
}

/**
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function hexEncode(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i++) text += bytes[i].toString(16).padStart(2, '0');
  return text;
}

/**
 * The bytes of an even-length hex text; `null` when it is not one.
 * @param {string} text
 * @returns {Uint8Array | null}
 */
export function hexDecode(text) {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return null;
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

/**
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
