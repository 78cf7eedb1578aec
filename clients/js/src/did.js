/**
 * did:key for Ed25519 (W3C did:key method): `did:key:z` + base58btc(0xed 0x01 + 32-byte key),
 * with the gateway's strictness (docs/protocol.md section 4).
 *
 * Rule 6 (the 32 bytes are a valid Ed25519 public key) is checked here as far as it is a matter of
 * encoding: the y coordinate must be canonical (< 2^255 - 19) and must not be that of one of the
 * 8 points of small order (the all-zero and identity keys among them, for which WebCrypto accepts
 * forged signatures). Whether the point is on the curve and in the prime-order subgroup needs
 * curve arithmetic, which WebCrypto does not expose (its importKey accepts every 32 bytes) and
 * which this package does not implement (no home-made cryptography): such DIDs are refused by
 * the gateway (REGISTER's `from`, a routed message's `to`), so no message from one reaches us.
 * @module
 */

import { base58Decode, base58Encode, bytesEqual } from './encoding.js';
import { ProtocolError } from './errors.js';

export const DID_PREFIX = 'did:key:z';
export const MAX_DID_LENGTH = 64;
export const PUBLIC_KEY_LENGTH = 32;
export const EXPECTED_FORM =
  'did:key:z + base58btc(0xed01 multicodec prefix + 32-byte Ed25519 public key)';

/**
 * The y coordinates (little-endian, top bit cleared) of the 8 points of order 1, 2, 4 and 8.
 * @type {Uint8Array[]}
 */
const SMALL_ORDER_Y = [
  '0000000000000000000000000000000000000000000000000000000000000000', // y = 0 (order 4)
  '0100000000000000000000000000000000000000000000000000000000000000', // y = 1 (identity)
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p - 1 (order 2)
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
].map((hex) => Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16)));

/**
 * Why these 32 bytes are not an acceptable Ed25519 public key, or `null` when they pass the
 * checks made here (canonical y, not of small order; see the module's note).
 * @param {Uint8Array} key
 * @returns {string | null}
 */
export function publicKeyProblem(key) {
  if (key.length !== PUBLIC_KEY_LENGTH) return `the key is ${key.length} bytes, not ${PUBLIC_KEY_LENGTH}`;
  const y = Uint8Array.from(key);
  y[31] &= 0x7f;
  // y >= p = 2^255 - 19: bytes ed ff .. ff 7f or above (little-endian)
  let nonCanonical = y[31] === 0x7f && y[0] >= 0xed;
  for (let i = 1; nonCanonical && i < 31; i++) nonCanonical = y[i] === 0xff;
  if (nonCanonical) return 'its 32 bytes are not a valid Ed25519 public key (y is not below 2^255 - 19)';
  if (SMALL_ORDER_Y.some((small) => bytesEqual(small, y))) {
    return 'its 32 bytes are not a valid Ed25519 public key (a point of small order)';
  }
  return null;
}

/**
 * The did:key of a 32-byte Ed25519 public key.
 * @param {Uint8Array} publicKey
 * @returns {string}
 */
export function didFromPublicKey(publicKey) {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_LENGTH) {
    throw new TypeError(`an Ed25519 public key is ${PUBLIC_KEY_LENGTH} bytes`);
  }
  const prefixed = new Uint8Array(2 + PUBLIC_KEY_LENGTH);
  prefixed[0] = 0xed;
  prefixed[1] = 0x01;
  prefixed.set(publicKey, 2);
  return DID_PREFIX + base58Encode(prefixed);
}

/**
 * The 32-byte public key inside an Ed25519 did:key; ProtocolError (code INVALID_DID) saying why
 * when `did` is not one (the gateway's rules, docs/protocol.md section 4).
 * @param {unknown} did
 * @returns {Uint8Array}
 */
export function publicKeyFromDid(did) {
  if (typeof did !== 'string' || !did.startsWith(DID_PREFIX)) {
    throw invalid(did, "it does not start with 'did:key:z'");
  }
  if (did.length > MAX_DID_LENGTH) throw invalid(did, `it is longer than ${MAX_DID_LENGTH} characters`);
  const decoded = base58Decode(did.slice(DID_PREFIX.length));
  if (decoded === null) throw invalid(did, 'it is not base58btc');
  if (decoded.length < 2 || decoded[0] !== 0xed || decoded[1] !== 0x01) {
    throw invalid(did, 'the key has no Ed25519 multicodec prefix 0xed01');
  }
  const key = decoded.slice(2);
  if (key.length !== PUBLIC_KEY_LENGTH) {
    throw invalid(did, `the key is ${key.length} bytes, not ${PUBLIC_KEY_LENGTH}`);
  }
  if (didFromPublicKey(key) !== did) {
    throw invalid(did, 'it is not the canonical base58btc spelling of its key');
  }
  const problem = publicKeyProblem(key);
  if (problem !== null) throw invalid(did, problem);
  return key;
}

/**
 * Whether `did` passes `publicKeyFromDid`.
 * @param {unknown} did
 * @returns {boolean}
 */
export function isValidDid(did) {
  try {
    publicKeyFromDid(did);
    return true;
  } catch {
    return false;
  }
}

/**
 * @param {unknown} did
 * @param {string} why
 * @returns {ProtocolError}
 */
function invalid(did, why) {
  const text = typeof did === 'string' ? did : String(did);
  const shown = text.length > 80 ? `${text.slice(0, 80)}...` : text;
  return new ProtocolError('INVALID_DID', `invalid DID ${JSON.stringify(shown)}: ${why}; expected ${EXPECTED_FORM}`,
    { expected: EXPECTED_FORM });
}
