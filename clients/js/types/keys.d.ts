/**
 * The WebCrypto verification key of an Ed25519 did:key (cached); ProtocolError INVALID_DID when
 * the DID is not valid.
 * @param {string} did
 * @returns {Promise<CryptoKey>}
 */
export function verifyKeyOf(did: string): Promise<CryptoKey>;
/**
 * Whether `signature` is `did`'s Ed25519 signature of `data`.
 * @param {string} did
 * @param {Uint8Array} signature
 * @param {Uint8Array} data
 * @returns {Promise<boolean>}
 */
export function verifySignature(did: string, signature: Uint8Array, data: Uint8Array): Promise<boolean>;
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
     * A new random key. `extractable: false` keeps the private key inside WebCrypto (it can still
     * be stored in IndexedDB as a CryptoKey, see `fromKeyPair`), but then `toJwk`/`seed` refuse.
     * @param {{extractable?: boolean}} [options]
     * @returns {Promise<AgentKey>}
     */
    static generate(options?: {
        extractable?: boolean;
    }): Promise<AgentKey>;
    /**
     * The key of a CryptoKeyPair made by WebCrypto (e.g. read back from IndexedDB).
     * @param {CryptoKeyPair} pair
     * @returns {Promise<AgentKey>}
     */
    static fromKeyPair(pair: CryptoKeyPair): Promise<AgentKey>;
    /**
     * The key of a 32-byte private seed (RFC 8032), e.g. from the Python SDK's key file.
     * @param {Uint8Array} seed
     * @param {{extractable?: boolean}} [options]
     * @returns {Promise<AgentKey>}
     */
    static fromSeed(seed: Uint8Array, options?: {
        extractable?: boolean;
    }): Promise<AgentKey>;
    /**
     * The key of a private Ed25519 JWK (`d` and `x`); Error when `x` is not `d`'s public key.
     * @param {JsonWebKey} jwk
     * @param {{extractable?: boolean}} [options]
     * @returns {Promise<AgentKey>}
     */
    static fromJwk(jwk: JsonWebKey, options?: {
        extractable?: boolean;
    }): Promise<AgentKey>;
    /**
     * The key in a Python SDK key file (`{"type": "Ed25519", "did": ..., "seed": "<64 hex>"}`),
     * given as its JSON text or parsed; Error when the DID is not the seed's.
     * @param {string | KeyFile} file
     * @param {{extractable?: boolean}} [options]
     * @returns {Promise<AgentKey>}
     */
    static fromKeyFile(file: string | KeyFile, options?: {
        extractable?: boolean;
    }): Promise<AgentKey>;
    /**
     * Use the static constructors (`generate`, `fromSeed`, `fromJwk`, `fromKeyPair`).
     * @param {CryptoKey} privateKey
     * @param {Uint8Array} publicKey the 32 raw public-key bytes
     */
    constructor(privateKey: CryptoKey, publicKey: Uint8Array);
    /** @readonly */
    readonly privateKey: CryptoKey;
    /** @readonly */
    readonly publicKey: Uint8Array<ArrayBufferLike>;
    /** @readonly */
    readonly did: string;
    /**
     * The private JWK (needs an extractable key). Keep it secret: it *is* the identity.
     * @returns {Promise<Ed25519PrivateJwk>}
     */
    toJwk(): Promise<Ed25519PrivateJwk>;
    /**
     * The 32-byte private seed (needs an extractable key).
     * @returns {Promise<Uint8Array>}
     */
    seed(): Promise<Uint8Array>;
    /**
     * The Python SDK's key file contents (write it readable by its owner only).
     * @returns {Promise<KeyFile>}
     */
    toKeyFile(): Promise<KeyFile>;
    /**
     * The 64-byte Ed25519 signature of `data`.
     * @param {Uint8Array} data
     * @returns {Promise<Uint8Array>}
     */
    sign(data: Uint8Array): Promise<Uint8Array>;
}
/**
 * A private JWK for Ed25519 (RFC 8037): `{kty: "OKP", crv: "Ed25519", d, x}`, d and x base64url.
 */
export type Ed25519PrivateJwk = {
    kty: "OKP";
    crv: "Ed25519";
    d: string;
    x: string;
};
/**
 * The key file the Python SDK reads and writes (`DIDKey.save`, `python -m aiconexus_gateway.keygen`).
 */
export type KeyFile = {
    type: "Ed25519";
    did: string;
    seed: string;
};
