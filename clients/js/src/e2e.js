/**
 * End-to-end encrypted payloads (docs/protocol.md section 20): agents encrypt to each other and
 * the gateway routes what it cannot read. The same construction as the Python SDK's
 * aiconexus_gateway/e2e.py, with the same library: libsodium (libsodium.js, the npm package
 * `libsodium-wrappers`), so both produce and open the same bytes.
 *
 * An encrypted payload is exactly `{"e2e": {"alg", "nonce", "ciphertext"}}`:
 * - key: crypto_kx over the X25519 forms of the two did:key Ed25519 keys
 *   (crypto_sign_ed25519_{pk,sk}_to_curve25519), the sender as kx client, the recipient as server;
 * - plaintext: the RFC 8785 bytes of the payload; ciphertext: XChaCha20-Poly1305 (IETF) with a
 *   random 24-byte nonce and, as associated data, the RFC 8785 bytes of the envelope's
 *   {alg, from, id, to, type}.
 *
 * libsodium is loaded on first use (a dynamic import of `libsodium-wrappers`), so a page that never
 * encrypts loads nothing more; a page that does maps the two modules with an import map
 * (README.md). Every primitive is libsodium's: this module only names the inputs.
 * @module
 */

import { canonicalBytes } from './jcs.js';
import { publicKeyFromDid } from './did.js';
import { parseStrict } from './strictjson.js';
import { base64UrlDecode, base64UrlEncode } from './encoding.js';

/** The payload member that carries the ciphertext. */
export const E2E_MEMBER = 'e2e';
/** The construction's name, in `alg` and in the associated data. */
export const E2E_ALG = 'x25519-kx-xchacha20poly1305';
const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const CACHE_SIZE = 256;

/**
 * @param {unknown} error
 * @returns {string}
 */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

/** A payload could not be encrypted, or an encrypted payload does not open (not delivered). */
export class E2EError extends Error {
  /**
   * @param {string} code E2E_DECRYPT_FAILED, E2E_MALFORMED, E2E_UNSUPPORTED, E2E_NOT_FOR_US, E2E_BAD_PEER
   * @param {string} message
   */
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'E2EError';
    this.code = code;
  }
}

/** @type {Promise<any> | null} */
let sodiumLoading = null;

/**
 * libsodium.js, loaded and initialised once (`libsodium-wrappers`, resolved by Node or an import map).
 * @returns {Promise<any>}
 */
export function loadSodium() {
  sodiumLoading ??= import('libsodium-wrappers').then(async (module) => {
    const sodium = module.default ?? module;
    await sodium.ready;
    return sodium;
  }).catch((error) => {
    sodiumLoading = null;
    throw new Error('end-to-end encryption needs libsodium.js (npm package libsodium-wrappers; in a '
      + `page, an import map for "libsodium-wrappers" and "libsodium", see README.md): ${describe(error)}`);
  });
  return sodiumLoading;
}

/**
 * @param {Record<string, unknown>} payload a received payload
 * @returns {boolean} whether it claims to be encrypted (it has an `e2e` member)
 */
export function isEncrypted(payload) {
  return Object.prototype.hasOwnProperty.call(payload, E2E_MEMBER);
}

/**
 * The envelope members a ciphertext is bound to, as RFC 8785 bytes.
 * @param {string} sender
 * @param {string} recipient
 * @param {string} type
 * @param {string} id
 * @returns {Uint8Array}
 */
export function associatedData(sender, recipient, type, id) {
  return canonicalBytes({ alg: E2E_ALG, from: sender, id, to: recipient, type });
}

/**
 * @param {unknown} text
 * @param {string} what
 * @returns {Uint8Array}
 */
function fromB64url(text, what) {
  const bytes = typeof text === 'string' ? base64UrlDecode(text) : null;
  if (bytes === null || base64UrlEncode(bytes) !== text) {
    throw new E2EError('E2E_MALFORMED', `'${what}' is not canonical base64url without padding`);
  }
  return bytes;
}

/** One agent's end of the encryption: seals payloads to peers and opens theirs. */
export class E2E {
  /**
   * @param {{did: string, seed?: () => Promise<Uint8Array>}} key an AgentKey (extractable: the
   *   X25519 secret is made from the seed)
   * @returns {Promise<E2E>}
   */
  static async forKey(key) {
    const sodium = await loadSodium();
    let seed;
    try {
      if (typeof key.seed !== 'function') throw new TypeError('this key has no seed()');
      seed = await key.seed();
    } catch (error) {
      throw new Error(`end-to-end encryption needs an extractable key (its seed makes the X25519 key): ${describe(error)}`);
    }
    return new E2E(sodium, key.did, seed);
  }

  /**
   * @param {any} sodium libsodium.js, ready
   * @param {string} did
   * @param {Uint8Array} seed
   */
  constructor(sodium, did, seed) {
    const pair = sodium.crypto_sign_seed_keypair(seed);
    /** @private */
    this._sodium = sodium;
    this.did = did;
    /** @private */
    this._public = sodium.crypto_sign_ed25519_pk_to_curve25519(pair.publicKey);
    /** @private */
    this._secret = sodium.crypto_sign_ed25519_sk_to_curve25519(pair.privateKey);
    /** @private @type {Map<string, {rx: Uint8Array, tx: Uint8Array}>} */
    this._keys = new Map();
  }

  /**
   * (key for messages from `peer` to us, key for messages from us to `peer`)
   * @param {string} peer
   * @returns {{rx: Uint8Array, tx: Uint8Array}}
   * @private
   */
  _sessionKeys(peer) {
    const cached = this._keys.get(peer);
    if (cached !== undefined) {
      this._keys.delete(peer);
      this._keys.set(peer, cached);
      return cached;
    }
    const sodium = this._sodium;
    let peerPublic;
    try {
      peerPublic = sodium.crypto_sign_ed25519_pk_to_curve25519(publicKeyFromDid(peer));
    } catch (error) {
      throw new E2EError('E2E_BAD_PEER', `${JSON.stringify(peer)} is not a usable did:key: ${describe(error)}`);
    }
    let keys;
    try {
      // we as kx client: tx = our sending key; the peer as client gives its sending key, which is
      // our receiving key (libsodium names it the server's rx)
      const tx = sodium.crypto_kx_client_session_keys(this._public, this._secret, peerPublic).sharedTx;
      const rx = sodium.crypto_kx_server_session_keys(this._public, this._secret, peerPublic).sharedRx;
      keys = { rx, tx };
    } catch {
      throw new E2EError('E2E_BAD_PEER', `no shared key with ${JSON.stringify(peer)}`);
    }
    this._keys.set(peer, keys);
    if (this._keys.size > CACHE_SIZE) this._keys.delete(this._keys.keys().next().value ?? '');
    return keys;
  }

  /**
   * The payload to send instead of `payload` in the envelope (from us, to `recipient`, `type`, `id`).
   * @param {string} recipient
   * @param {string} type
   * @param {string} id
   * @param {Record<string, unknown>} payload
   * @param {{nonce?: Uint8Array}} [options] a fixed nonce (test vectors only)
   * @returns {{e2e: {alg: string, nonce: string, ciphertext: string}}}
   */
  seal(recipient, type, id, payload, options = {}) {
    const sodium = this._sodium;
    const nonce = options.nonce ?? sodium.randombytes_buf(NONCE_BYTES);
    if (nonce.length !== NONCE_BYTES) throw new TypeError(`the nonce is ${NONCE_BYTES} bytes`);
    const { tx } = this._sessionKeys(recipient);
    const ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
      canonicalBytes(payload), associatedData(this.did, recipient, type, id), null, nonce, tx);
    return { e2e: { alg: E2E_ALG, nonce: base64UrlEncode(nonce), ciphertext: base64UrlEncode(ciphertext) } };
  }

  /**
   * The payload `sender` encrypted for us in this envelope; E2EError when it does not open.
   * @param {string} sender
   * @param {string | null} recipient
   * @param {string} type
   * @param {string} id
   * @param {Record<string, unknown>} payload
   * @returns {Record<string, unknown>}
   */
  open(sender, recipient, type, id, payload) {
    if (recipient !== this.did) throw new E2EError('E2E_NOT_FOR_US', `encrypted for ${JSON.stringify(recipient)}, not for this agent`);
    const others = Object.keys(payload).filter((name) => name !== E2E_MEMBER);
    if (others.length > 0) {
      throw new E2EError('E2E_MALFORMED', `an encrypted payload has the one member 'e2e'; this one also has ${others.sort().join(', ')}`);
    }
    const sealed = /** @type {any} */ (payload[E2E_MEMBER]);
    if (sealed === null || typeof sealed !== 'object' || Array.isArray(sealed)
        || Object.keys(sealed).sort().join(',') !== 'alg,ciphertext,nonce') {
      throw new E2EError('E2E_MALFORMED', "'e2e' must be an object with exactly 'alg', 'nonce' and 'ciphertext'");
    }
    if (sealed.alg !== E2E_ALG) {
      throw new E2EError('E2E_UNSUPPORTED', `unknown 'alg' ${JSON.stringify(sealed.alg)}; this agent opens ${JSON.stringify(E2E_ALG)}`);
    }
    const nonce = fromB64url(sealed.nonce, 'nonce');
    if (nonce.length !== NONCE_BYTES) throw new E2EError('E2E_MALFORMED', `'nonce' must be ${NONCE_BYTES} bytes`);
    const ciphertext = fromB64url(sealed.ciphertext, 'ciphertext');
    if (ciphertext.length < TAG_BYTES) throw new E2EError('E2E_MALFORMED', "'ciphertext' is shorter than its 16-byte tag");
    const { rx } = this._sessionKeys(sender);
    let plaintext;
    try {
      plaintext = this._sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        null, ciphertext, associatedData(sender, recipient, type, id), nonce, rx);
    } catch {
      throw new E2EError('E2E_DECRYPT_FAILED', 'the ciphertext does not open: tampered, made for another envelope (from, to, type, id) or by another key');
    }
    let value;
    try {
      value = parseStrict(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
    } catch (error) {
      throw new E2EError('E2E_MALFORMED', `the plaintext is not strict JSON: ${describe(error)}`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new E2EError('E2E_MALFORMED', 'the plaintext is not a JSON object');
    }
    return /** @type {Record<string, unknown>} */ (value);
  }
}
