/**
 * An agent's Ed25519 key, held by WebCrypto: generate, sign, and store as a JWK or a 32-byte seed.
 *
 * WebCrypto imports Ed25519 private keys as PKCS#8 or JWK only; a raw seed is wrapped into the
 * fixed 16-byte PKCS#8 prefix of RFC 8410 (an encoding, not cryptography). The signing itself is
 * WebCrypto's (RFC 8032 Ed25519, deterministic), in browsers and in Node >= 20 alike.
 * @module
 */

import { didFromPublicKey, publicKeyFromDid } from './did.js';
import { base64UrlDecode, base64UrlEncode, hexDecode, hexEncode } from './encoding.js';

const ED25519 = { name: 'Ed25519' };
/** RFC 8410 PKCS#8 PrivateKeyInfo for Ed25519, up to the 32-byte seed. */
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/**
 * @param {Uint8Array} bytes
 * @returns {BufferSource}
 */
function source(bytes) {
  return /** @type {BufferSource} */ (bytes);
}

/** @returns {SubtleCrypto} */
function subtle() {
  const crypto = globalThis.crypto;
  if (!crypto?.subtle) {
    throw new Error('WebCrypto (crypto.subtle) is not available: a browser page needs a secure context '
      + '(https:// or http://localhost); Node needs version 20 or newer');
  }
  return crypto.subtle;
}

/**
 * A private JWK for Ed25519 (RFC 8037): `{kty: "OKP", crv: "Ed25519", d, x}`, d and x base64url.
 * @typedef {{kty: 'OKP', crv: 'Ed25519', d: string, x: string}} Ed25519PrivateJwk
 */

/**
 * The key file the Python SDK reads and writes (`DIDKey.save`, `python -m aiconexus_gateway.keygen`).
 * @typedef {{type: 'Ed25519', did: string, seed: string}} KeyFile
 */

/** An agent's identity: an Ed25519 key pair and the did:key it names. */
export class AgentKey {
  /**
   * Use the static constructors (`generate`, `fromSeed`, `fromJwk`, `fromKeyPair`).
   * @param {CryptoKey} privateKey
   * @param {Uint8Array} publicKey the 32 raw public-key bytes
   */
  constructor(privateKey, publicKey) {
    /** @readonly */
    this.privateKey = privateKey;
    /** @readonly */
    this.publicKey = publicKey;
    /** @readonly */
    this.did = didFromPublicKey(publicKey);
  }

  /**
   * A new random key. `extractable: false` keeps the private key inside WebCrypto (it can still
   * be stored in IndexedDB as a CryptoKey, see `fromKeyPair`), but then `toJwk`/`seed` refuse.
   * @param {{extractable?: boolean}} [options]
   * @returns {Promise<AgentKey>}
   */
  static async generate(options = {}) {
    const pair = /** @type {CryptoKeyPair} */ (
      await subtle().generateKey(ED25519, options.extractable ?? true, ['sign', 'verify']));
    return AgentKey.fromKeyPair(pair);
  }

  /**
   * The key of a CryptoKeyPair made by WebCrypto (e.g. read back from IndexedDB).
   * @param {CryptoKeyPair} pair
   * @returns {Promise<AgentKey>}
   */
  static async fromKeyPair(pair) {
    const raw = new Uint8Array(await subtle().exportKey('raw', pair.publicKey));
    return new AgentKey(pair.privateKey, raw);
  }

  /**
   * The key of a 32-byte private seed (RFC 8032), e.g. from the Python SDK's key file.
   * @param {Uint8Array} seed
   * @param {{extractable?: boolean}} [options]
   * @returns {Promise<AgentKey>}
   */
  static async fromSeed(seed, options = {}) {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) {
      throw new TypeError('an Ed25519 seed is 32 bytes (a Uint8Array)');
    }
    const pkcs8 = new Uint8Array(PKCS8_PREFIX.length + 32);
    pkcs8.set(PKCS8_PREFIX);
    pkcs8.set(seed, PKCS8_PREFIX.length);
    // imported extractable once to read the public key (WebCrypto derives it), then as asked
    const probe = await subtle().importKey('pkcs8', pkcs8, ED25519, true, ['sign']);
    const jwk = await subtle().exportKey('jwk', probe);
    const publicKey = base64UrlDecode(jwk.x ?? '');
    if (publicKey === null || publicKey.length !== 32) throw new Error('WebCrypto gave no Ed25519 public key');
    const privateKey = (options.extractable ?? true)
      ? probe : await subtle().importKey('pkcs8', pkcs8, ED25519, false, ['sign']);
    return new AgentKey(privateKey, publicKey);
  }

  /**
   * The key of a private Ed25519 JWK (`d` and `x`); Error when `x` is not `d`'s public key.
   * @param {JsonWebKey} jwk
   * @param {{extractable?: boolean}} [options]
   * @returns {Promise<AgentKey>}
   */
  static async fromJwk(jwk, options = {}) {
    if (jwk?.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') {
      throw new TypeError('expected a private Ed25519 JWK: {kty: "OKP", crv: "Ed25519", d, x}');
    }
    const seed = base64UrlDecode(jwk.d);
    if (seed === null || seed.length !== 32) throw new TypeError("the JWK's d is not 32 bytes of base64url");
    const key = await AgentKey.fromSeed(seed, options);
    if (jwk.x !== undefined && jwk.x !== base64UrlEncode(key.publicKey)) {
      throw new Error("the JWK's x is not the public key of its d");
    }
    return key;
  }

  /**
   * The key in a Python SDK key file (`{"type": "Ed25519", "did": ..., "seed": "<64 hex>"}`),
   * given as its JSON text or parsed; Error when the DID is not the seed's.
   * @param {string | KeyFile} file
   * @param {{extractable?: boolean}} [options]
   * @returns {Promise<AgentKey>}
   */
  static async fromKeyFile(file, options = {}) {
    const data = typeof file === 'string' ? JSON.parse(file) : file;
    const seed = typeof data?.seed === 'string' ? hexDecode(data.seed) : null;
    if (data?.type !== 'Ed25519' || seed === null || seed.length !== 32) {
      throw new TypeError('not a key file: expected {"type": "Ed25519", "did": ..., "seed": "<64 hex digits>"}');
    }
    const key = await AgentKey.fromSeed(seed, options);
    if (data.did !== undefined && data.did !== key.did) {
      throw new Error(`the key file's did ${data.did} is not its seed's (${key.did})`);
    }
    return key;
  }

  /**
   * The private JWK (needs an extractable key). Keep it secret: it *is* the identity.
   * @returns {Promise<Ed25519PrivateJwk>}
   */
  async toJwk() {
    const jwk = await subtle().exportKey('jwk', this.privateKey);
    if (typeof jwk.d !== 'string') throw new Error('WebCrypto exported no private key');
    return { kty: 'OKP', crv: 'Ed25519', d: jwk.d, x: base64UrlEncode(this.publicKey) };
  }

  /**
   * The 32-byte private seed (needs an extractable key).
   * @returns {Promise<Uint8Array>}
   */
  async seed() {
    const seed = base64UrlDecode((await this.toJwk()).d);
    if (seed === null) throw new Error('WebCrypto exported a malformed key');
    return seed;
  }

  /**
   * The Python SDK's key file contents (write it readable by its owner only).
   * @returns {Promise<KeyFile>}
   */
  async toKeyFile() {
    return { type: 'Ed25519', did: this.did, seed: hexEncode(await this.seed()) };
  }

  /**
   * The 64-byte Ed25519 signature of `data`.
   * @param {Uint8Array} data
   * @returns {Promise<Uint8Array>}
   */
  async sign(data) {
    return new Uint8Array(await subtle().sign(ED25519, this.privateKey, source(data)));
  }
}

/** @type {Map<string, Promise<CryptoKey>>} */
const verifyKeys = new Map();
const VERIFY_KEY_CACHE = 512;

/**
 * The WebCrypto verification key of an Ed25519 did:key (cached); ProtocolError INVALID_DID when
 * the DID is not valid.
 * @param {string} did
 * @returns {Promise<CryptoKey>}
 */
export function verifyKeyOf(did) {
  let key = verifyKeys.get(did);
  if (key === undefined) {
    const raw = publicKeyFromDid(did);
    key = subtle().importKey('raw', source(raw), ED25519, true, ['verify']);
    if (verifyKeys.size >= VERIFY_KEY_CACHE) {
      const oldest = verifyKeys.keys().next().value;
      if (oldest !== undefined) verifyKeys.delete(oldest);
    }
    verifyKeys.set(did, key);
  }
  return key;
}

/**
 * Whether `signature` is `did`'s Ed25519 signature of `data`.
 * @param {string} did
 * @param {Uint8Array} signature
 * @param {Uint8Array} data
 * @returns {Promise<boolean>}
 */
export async function verifySignature(did, signature, data) {
  return subtle().verify(ED25519, await verifyKeyOf(did), source(signature), source(data));
}
