/**
 * Why these 32 bytes are not an acceptable Ed25519 public key, or `null` when they pass the
 * checks made here (canonical y, not of small order; see the module's note).
 * @param {Uint8Array} key
 * @returns {string | null}
 */
export function publicKeyProblem(key: Uint8Array): string | null;
/**
 * The did:key of a 32-byte Ed25519 public key.
 * @param {Uint8Array} publicKey
 * @returns {string}
 */
export function didFromPublicKey(publicKey: Uint8Array): string;
/**
 * The 32-byte public key inside an Ed25519 did:key; ProtocolError (code INVALID_DID) saying why
 * when `did` is not one (the gateway's rules, docs/protocol.md section 4).
 * @param {unknown} did
 * @returns {Uint8Array}
 */
export function publicKeyFromDid(did: unknown): Uint8Array;
/**
 * Whether `did` passes `publicKeyFromDid`.
 * @param {unknown} did
 * @returns {boolean}
 */
export function isValidDid(did: unknown): boolean;
export const DID_PREFIX: "did:key:z";
export const MAX_DID_LENGTH: 64;
export const PUBLIC_KEY_LENGTH: 32;
export const EXPECTED_FORM: "did:key:z + base58btc(0xed01 multicodec prefix + 32-byte Ed25519 public key)";
