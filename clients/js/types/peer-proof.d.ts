/**
 * Our proof, as the JSON text to send first on the data channel.
 * @param {{did: string, sign: (data: Uint8Array) => Promise<Uint8Array>}} key
 * @param {string} negotiationId
 * @param {string} peerDid
 * @param {string} fingerprint SHA-256 of our DTLS certificate, upper-case hex pairs
 * @param {string} peerFingerprint SHA-256 of the peer's
 * @returns {Promise<string>}
 */
export function buildProof(key: {
    did: string;
    sign: (data: Uint8Array) => Promise<Uint8Array>;
}, negotiationId: string, peerDid: string, fingerprint: string, peerFingerprint: string): Promise<string>;
/**
 * Check the peer's proof: null when it checks, else what is wrong.
 * @param {unknown} message the first message of the data channel
 * @param {{negotiationId: string, peerDid: string, ownDid: string, peerFingerprint: string, ownFingerprint: string}} expected
 * @returns {Promise<string | null>}
 */
export function checkProof(message: unknown, expected: {
    negotiationId: string;
    peerDid: string;
    ownDid: string;
    peerFingerprint: string;
    ownFingerprint: string;
}): Promise<string | null>;
export const PROOF_TYPE: "aiconexus-peer-proof";
export const MAX_PROOF_LENGTH: 4096;
