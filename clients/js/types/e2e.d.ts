/**
 * libsodium.js, loaded and initialised once (`libsodium-wrappers`, resolved by Node or an import map).
 * @returns {Promise<any>}
 */
export function loadSodium(): Promise<any>;
/**
 * @param {Record<string, unknown>} payload a received payload
 * @returns {boolean} whether it claims to be encrypted (it has an `e2e` member)
 */
export function isEncrypted(payload: Record<string, unknown>): boolean;
/**
 * The envelope members a ciphertext is bound to, as RFC 8785 bytes.
 * @param {string} sender
 * @param {string} recipient
 * @param {string} type
 * @param {string} id
 * @returns {Uint8Array}
 */
export function associatedData(sender: string, recipient: string, type: string, id: string): Uint8Array;
/** The payload member that carries the ciphertext. */
export const E2E_MEMBER: "e2e";
/** The construction's name, in `alg` and in the associated data. */
export const E2E_ALG: "x25519-kx-xchacha20poly1305";
/** A payload could not be encrypted, or an encrypted payload does not open (not delivered). */
export class E2EError extends Error {
    /**
     * @param {string} code E2E_DECRYPT_FAILED, E2E_MALFORMED, E2E_UNSUPPORTED, E2E_NOT_FOR_US, E2E_BAD_PEER
     * @param {string} message
     */
    constructor(code: string, message: string);
    code: string;
}
/** One agent's end of the encryption: seals payloads to peers and opens theirs. */
export class E2E {
    /**
     * @param {{did: string, seed?: () => Promise<Uint8Array>}} key an AgentKey (extractable: the
     *   X25519 secret is made from the seed)
     * @returns {Promise<E2E>}
     */
    static forKey(key: {
        did: string;
        seed?: () => Promise<Uint8Array>;
    }): Promise<E2E>;
    /**
     * @param {any} sodium libsodium.js, ready
     * @param {string} did
     * @param {Uint8Array} seed
     */
    constructor(sodium: any, did: string, seed: Uint8Array);
    /** @private */
    private _sodium;
    did: string;
    /** @private */
    private _public;
    /** @private */
    private _secret;
    /** @private @type {Map<string, {rx: Uint8Array, tx: Uint8Array}>} */
    private _keys;
    /**
     * (key for messages from `peer` to us, key for messages from us to `peer`)
     * @param {string} peer
     * @returns {{rx: Uint8Array, tx: Uint8Array}}
     * @private
     */
    private _sessionKeys;
    /**
     * The payload to send instead of `payload` in the envelope (from us, to `recipient`, `type`, `id`).
     * @param {string} recipient
     * @param {string} type
     * @param {string} id
     * @param {Record<string, unknown>} payload
     * @param {{nonce?: Uint8Array}} [options] a fixed nonce (test vectors only)
     * @returns {{e2e: {alg: string, nonce: string, ciphertext: string}}}
     */
    seal(recipient: string, type: string, id: string, payload: Record<string, unknown>, options?: {
        nonce?: Uint8Array;
    }): {
        e2e: {
            alg: string;
            nonce: string;
            ciphertext: string;
        };
    };
    /**
     * The payload `sender` encrypted for us in this envelope; E2EError when it does not open.
     * @param {string} sender
     * @param {string | null} recipient
     * @param {string} type
     * @param {string} id
     * @param {Record<string, unknown>} payload
     * @returns {Record<string, unknown>}
     */
    open(sender: string, recipient: string | null, type: string, id: string, payload: Record<string, unknown>): Record<string, unknown>;
}
