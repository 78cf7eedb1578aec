/**
 * AIConexus Gateway client (ioap.v1) for browsers and Node >= 20: an ES module without runtime
 * dependencies in browsers. See README.md for an example and docs/protocol.md for the wire format.
 * @module
 */

export { GatewayClient, gatewayUrlFor } from './client.js';
export { AgentKey, verifyKeyOf, verifySignature } from './keys.js';
export { didFromPublicKey, publicKeyFromDid, isValidDid, publicKeyProblem, EXPECTED_FORM } from './did.js';
export { canonicalize, canonicalBytes, CanonicalizationError } from './jcs.js';
export { parseStrict, StrictJSONError, MAX_DEPTH } from './strictjson.js';
export {
  buildMessage, parseEnvelope, verifyEnvelope, signingInput, signFields, utcTimestamp, newId, Message,
  PROTOCOL_VERSION, ROUTABLE_TYPES, CONTROL_TYPES, MAILBOX_TYPES, DISCOVERY_TYPES,
} from './envelope.js';
export { ClientSession, State, PACING_MARGIN } from './session.js';
export { E2E, E2EError, E2E_ALG, E2E_MEMBER, associatedData, isEncrypted, loadSodium } from './e2e.js';
export { Acknowledgements, acknowledged, checkTtl, ACK_MEMORY } from './mailbox.js';
export {
  checkCard, checkCardProof, discoveryPage, presenceEvent, requestPayload, watchStates, WatchSet, MAX_CARD_BYTES,
  DIRECTORY_ANSWERS,
} from './directory.js';
export { backoff, backoffDelay, reconnectPolicy, TokenBucket, FINAL_CLOSE_CODES, FINAL_REGISTRATION_ERRORS } from './backoff.js';
export {
  ProtocolError, GatewayConnectionError, GatewayError, ConnectionClosed, SendQueueFull, InvalidMessageError, TimeoutError,
} from './errors.js';
export {
  base58Encode, base58Decode, base64Encode, base64DecodeStrict, base64UrlEncode, base64UrlDecode, hexEncode, hexDecode,
} from './encoding.js';
export { SUBPROTOCOL } from './websocket.js';
export { PeerChannel, PeerManager, CALLEE_TIMEOUT, REFRESH_MARGIN, credentialsExpire } from './peer.js';
export {
  PeerSignaling, Negotiation, RelayStream, PeerError, PeerRefused, PeerTimeout, PeerUnknownAgent, PeerUnreachable, PeerICEFailed,
  PeerIdentityError, PeerClosed, isPeerSignal, fingerprints, supportedFingerprints, certificateMatches, withoutCandidates,
  checkDescription, checkCandidate, candidateType, PEER_REFUSED, GLARE, NO_FINGERPRINT, BAD_OFFER,
} from './peer-signaling.js';
export { buildProof, checkProof, PROOF_TYPE } from './peer-proof.js';

/** The gateway version this client was written for (the package's version). */
export const VERSION = '0.1.0';
