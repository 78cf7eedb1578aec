/**
 * The identity proof (docs/protocol.md section 19): the first message each side sends on a data
 * channel binds both DIDs to both DTLS certificates, signed with the sender's DID key, so an agent
 * that re-signs someone else's OFFER as its own (an unknown key-share) is refused. The same object
 * as the Python SDK's client/peer/proof.py.
 * @module
 */

import { base64DecodeStrict, base64Encode } from './encoding.js';
import { canonicalBytes, canonicalize } from './jcs.js';
import { verifySignature } from './keys.js';
import { parseStrict } from './strictjson.js';

export const PROOF_TYPE = 'aiconexus-peer-proof';
export const MAX_PROOF_LENGTH = 4096;

/**
 * Our proof, as the JSON text to send first on the data channel.
 * @param {{did: string, sign: (data: Uint8Array) => Promise<Uint8Array>}} key
 * @param {string} negotiationId
 * @param {string} peerDid
 * @param {string} fingerprint SHA-256 of our DTLS certificate, upper-case hex pairs
 * @param {string} peerFingerprint SHA-256 of the peer's
 * @returns {Promise<string>}
 */
export async function buildProof(key, negotiationId, peerDid, fingerprint, peerFingerprint) {
  /** @type {Record<string, unknown>} */
  const fields = {
    type: PROOF_TYPE, version: 1, negotiation_id: negotiationId, did: key.did, peer_did: peerDid,
    fingerprint, peer_fingerprint: peerFingerprint,
  };
  fields.signature = base64Encode(await key.sign(canonicalBytes(fields)));
  return canonicalize(fields);
}

/**
 * Check the peer's proof: null when it checks, else what is wrong.
 * @param {unknown} message the first message of the data channel
 * @param {{negotiationId: string, peerDid: string, ownDid: string, peerFingerprint: string, ownFingerprint: string}} expected
 * @returns {Promise<string | null>}
 */
export async function checkProof(message, expected) {
  if (typeof message !== 'string' || message.length > MAX_PROOF_LENGTH) return 'the first message on the channel is not an identity proof';
  let fields;
  try {
    fields = parseStrict(message);
  } catch {
    return 'the identity proof is not JSON';
  }
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return 'the first message on the channel is not an identity proof';
  const members = /** @type {Record<string, unknown>} */ (fields);
  if (members.type !== PROOF_TYPE) return 'the first message on the channel is not an identity proof';
  /** @type {Array<[string, unknown]>} */
  const wanted = [['version', 1], ['negotiation_id', expected.negotiationId], ['did', expected.peerDid], ['peer_did', expected.ownDid]];
  for (const [member, value] of wanted) {
    if (members[member] !== value) {
      return `the identity proof's '${member}' is ${JSON.stringify(members[member])}, not ${JSON.stringify(value)}: the agent at the other end is not the one negotiated with`;
    }
  }
  if (String(members.fingerprint ?? '').toUpperCase() !== expected.peerFingerprint.toUpperCase()) {
    return 'the identity proof names another DTLS certificate than the one presented';
  }
  if (String(members.peer_fingerprint ?? '').toUpperCase() !== expected.ownFingerprint.toUpperCase()) {
    return 'the identity proof was made for another DTLS certificate than ours';
  }
  const { signature, ...signed } = members;
  const raw = typeof signature === 'string' ? base64DecodeStrict(signature) : null;
  let valid = false;
  try {
    valid = raw !== null && await verifySignature(expected.peerDid, raw, canonicalBytes(signed));
  } catch {
    valid = false;
  }
  return valid ? null : `the identity proof is not signed by ${expected.peerDid}`;
}
