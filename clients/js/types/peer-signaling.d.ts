/**
 * Every `a=fingerprint` of an SDP (RFC 8122 section 5), algorithm lower case, value upper case.
 * @param {string} sdp
 * @returns {Fingerprint[]}
 */
export function fingerprints(sdp: string): Fingerprint[];
/**
 * The fingerprints this client can check (SHA-256/384/512): at least one must be present.
 * @param {string} sdp
 * @returns {Fingerprint[]}
 */
export function supportedFingerprints(sdp: string): Fingerprint[];
/**
 * True when the certificate's digests (algorithm -> upper-case hex pairs) match every supported
 * fingerprint of the signed SDP, and there is at least one (RFC 8842 section 5).
 * @param {Fingerprint[]} signed
 * @param {Record<string, string>} certificate
 * @returns {boolean}
 */
export function certificateMatches(signed: Fingerprint[], certificate: Record<string, string>): boolean;
/**
 * The SDP without `a=candidate` and `a=end-of-candidates` lines: candidates are trickled (the SDP
 * that is signed and sent carries none, as the Python SDK's).
 * @param {string} sdp
 * @returns {string}
 */
export function withoutCandidates(sdp: string): string;
/**
 * A received RTCSessionDescriptionInit, checked; Error saying why otherwise.
 * @param {unknown} value
 * @param {'offer' | 'answer'} expectedType
 * @returns {Description}
 */
export function checkDescription(value: unknown, expectedType: "offer" | "answer"): Description;
/**
 * A received RTCIceCandidateInit, or null for end-of-candidates (`null` or a `candidate` of "");
 * Error saying why otherwise.
 * @param {unknown} value
 * @returns {Candidate | null}
 */
export function checkCandidate(value: unknown): Candidate | null;
/**
 * The `typ` of a candidate-attribute (host, srflx, prflx, relay), or null.
 * @param {string} candidate
 * @returns {string | null}
 */
export function candidateType(candidate: string): string | null;
/**
 * A channel label: a string of 0-128 characters; TypeError otherwise.
 * @param {unknown} label
 * @returns {string}
 */
export function checkLabel(label: unknown): string;
/**
 * What a received signal means for this agent.
 * @typedef {{kind: 'route', negotiation: Negotiation, decisions: Decision[]}
 *   | {kind: 'newOffer', negotiation: Negotiation}
 *   | {kind: 'adopt', negotiation: Negotiation, superseded: Negotiation}
 *   | {kind: 'reply', peerDid: string, type: string, payload: Record<string, unknown>}
 *   | {kind: 'ignore', reason: string}} Outcome
 */
/**
 * True for an OFFER / ANSWER / ICE_CANDIDATE that belongs to a peer-channel negotiation.
 * @param {string} type
 * @param {Record<string, unknown>} payload
 * @returns {boolean}
 */
export function isPeerSignal(type: string, payload: Record<string, unknown>): boolean;
export const PEER_TYPES: readonly string[];
export const MAX_LABEL_LENGTH: 128;
export const MAX_NEGOTIATION_ID_LENGTH: 128;
export const MAX_SDP_LENGTH: 32768;
export const MAX_CANDIDATE_LENGTH: 1024;
export const MAX_RELAY_MESSAGE: number;
export const RELAY_WINDOW: 64;
/** RFC 8122 hash functions this client checks, as the attribute spells them. */
export const SUPPORTED_HASHES: readonly string[];
/** Refusal codes of an ANSWER's `refused.code`. */
export const PEER_REFUSED: "PEER_REFUSED";
export const GLARE: "GLARE";
export const NO_FINGERPRINT: "NO_FINGERPRINT";
export const BAD_OFFER: "BAD_OFFER";
/** A peer channel could not open, or ended; `code` is stable (docs/protocol.md section 19). */
export class PeerError extends Error {
    /**
     * @param {string} message
     * @param {{peerDid?: string | null}} [options]
     */
    constructor(message: string, options?: {
        peerDid?: string | null;
    });
    /** @type {string} */
    code: string;
    peerDid: string | null;
}
/** No agent with that DID is connected to the gateway (its ERROR UNKNOWN_AGENT). */
export class PeerUnknownAgent extends PeerError {
}
/** The gateway did not deliver the signaling (DELIVERY_FAILED and the like). */
export class PeerUnreachable extends PeerError {
}
/** The peer did not answer the OFFER within the timeout. */
export class PeerTimeout extends PeerError {
}
/** The peer refused the channel; `reasonCode` is the ANSWER's `refused.code`. */
export class PeerRefused extends PeerError {
    /** @param {string} message @param {{peerDid?: string | null, reasonCode?: string}} [options] */
    constructor(message: string, options?: {
        peerDid?: string | null;
        reasonCode?: string;
    });
    reasonCode: string;
}
/** No ICE candidate pair connected (and no relay fallback). */
export class PeerICEFailed extends PeerError {
}
/** The DTLS certificate or the identity proof did not match the DID negotiated with. */
export class PeerIdentityError extends PeerError {
}
/** The channel (or the client) is closed. */
export class PeerClosed extends PeerError {
}
/** One attempt to open one channel between this agent and `peerDid`. */
export class Negotiation {
    /**
     * @param {{id: string, localDid: string, peerDid: string, label: string, role: 'caller' | 'callee',
     *   fallback?: boolean, state?: NegotiationState, timeout?: number, remoteDescription?: Description | null,
     *   remoteFingerprints?: Fingerprint[]}} init
     */
    constructor(init: {
        id: string;
        localDid: string;
        peerDid: string;
        label: string;
        role: "caller" | "callee";
        fallback?: boolean;
        state?: NegotiationState;
        timeout?: number;
        remoteDescription?: Description | null;
        remoteFingerprints?: Fingerprint[];
    });
    id: string;
    localDid: string;
    peerDid: string;
    label: string;
    role: "caller" | "callee";
    fallback: boolean;
    /** @type {NegotiationState} */
    state: NegotiationState;
    /** @type {string | null} direct, turn or relay once open */
    transport: string | null;
    /** @type {Description | null} */
    remoteDescription: Description | null;
    /** @type {Fingerprint[]} */
    remoteFingerprints: Fingerprint[];
    remoteApplied: boolean;
    /** a callee negotiation that answers this agent's own connectPeer (glare) */
    adopted: boolean;
    timeout: number;
    /** @private @type {Array<Candidate | null>} */
    private _buffered;
    get live(): boolean;
    /** caller side, still without the peer's ANSWER (the glare window) */
    get unanswered(): boolean;
    /** @private @param {Record<string, unknown>} members @returns {Record<string, unknown>} */
    private _payload;
    /**
     * The local offer (without candidates) is made: send the OFFER.
     * @param {Description} description
     * @returns {Decision[]}
     */
    localOffer(description: Description): Decision[];
    /**
     * The local answer (without candidates) is made: send the ANSWER.
     * @param {Description} description
     * @returns {Decision[]}
     */
    localAnswer(description: Description): Decision[];
    /** @returns {Decision[]} the application accepts the OFFER: apply it (then answer) */
    accept(): Decision[];
    /**
     * Refuse the OFFER with an ANSWER carrying `refused`.
     * @param {string} [code]
     * @param {string} [message]
     * @returns {Decision[]}
     */
    refuse(code?: string, message?: string): Decision[];
    /** @returns {Decision[]} the remote description is applied: the candidates that came meanwhile */
    applied(): Decision[];
    /**
     * A local candidate (null: gathering complete) for the peer.
     * @param {Candidate | null} candidate
     * @returns {Decision[]}
     */
    localCandidate(candidate: Candidate | null): Decision[];
    /**
     * DTLS is up with a certificate whose digests are `certificate` (algorithm -> hex pairs).
     * @param {Record<string, string>} certificate
     * @param {{relayed: boolean}} options the selected pair goes through TURN
     * @returns {Decision[]}
     */
    connected(certificate: Record<string, string>, { relayed }: {
        relayed: boolean;
    }): Decision[];
    /**
     * The peer's identity proof arrived: `problem` is null when it checked.
     * @param {string | null} problem
     * @returns {Decision[]}
     */
    proved(problem: string | null): Decision[];
    /** @returns {Decision[]} ICE connected but DTLS did not (a certificate that does not match) */
    dtlsFailed(): Decision[];
    /** @returns {Decision[]} the data channel or its connection closed without a signaled close */
    linkClosed(): Decision[];
    /** @returns {Decision[]} no candidate pair connected (or the connection failed before opening) */
    iceFailed(): Decision[];
    /** @returns {Decision[]} the connect timeout passed before the channel opened */
    timedOut(): Decision[];
    /**
     * The application closes the channel: tell the peer, when it knows of it.
     * @param {string} [reason]
     * @returns {Decision[]}
     */
    close(reason?: string): Decision[];
    /**
     * The gateway did not forward one of our signals (UNKNOWN_AGENT, DELIVERY_FAILED, ...).
     * @param {string} code
     * @param {string} message
     * @returns {Decision[]}
     */
    gatewayError(code: string, message: string): Decision[];
    /**
     * A payload of this negotiation from the peer (already verified as its).
     * @param {string} type
     * @param {Record<string, unknown>} payload
     * @returns {Decision[]}
     */
    receive(type: string, payload: Record<string, unknown>): Decision[];
    /** @private @param {Record<string, unknown>} payload @returns {Decision[]} */
    private _answer;
    /** @private @param {unknown} value @returns {Decision[]} */
    private _candidate;
    /** @private @param {unknown} value @returns {Decision[]} */
    private _relay;
    /** @private @param {unknown} value @returns {Decision[]} */
    private _remoteClosed;
    /** @private @param {PeerError} error @param {boolean} tellPeer @returns {Decision[]} */
    private _fail;
}
/** Every negotiation of the agent `did`, keyed by negotiation id. */
export class PeerSignaling {
    /**
     * @param {string} did
     * @param {{newId?: () => string}} [options]
     */
    constructor(did: string, options?: {
        newId?: () => string;
    });
    did: string;
    /** @type {Map<string, Negotiation>} */
    negotiations: Map<string, Negotiation>;
    /** @private */
    private _newId;
    /** @private @type {Map<string, string>} id of a message we sent -> its negotiation (for ERRORs) */
    private _signals;
    /**
     * A new negotiation for connectPeer, or the peer's waiting OFFER with the same label when glare
     * makes it the one that stands (`adopted`, nothing offered). The replies refuse the peer's
     * OFFERs that lose to ours.
     * @param {string} peerDid
     * @param {string} label
     * @param {{fallback?: boolean, timeout?: number}} [options]
     * @returns {{negotiation: Negotiation, replies: Outcome[]}}
     */
    connect(peerDid: string, label: string, options?: {
        fallback?: boolean;
        timeout?: number;
    }): {
        negotiation: Negotiation;
        replies: Outcome[];
    };
    /**
     * A signal of `negotiationId` went out as message `messageId` (for the gateway's ERRORs).
     * @param {string} messageId
     * @param {string} negotiationId
     */
    sent(messageId: string, negotiationId: string): void;
    /**
     * A verified OFFER / ANSWER / ICE_CANDIDATE from `sender` (see isPeerSignal).
     * @param {string} sender
     * @param {string} type
     * @param {Record<string, unknown>} payload
     * @returns {Outcome}
     */
    receive(sender: string, type: string, payload: Record<string, unknown>): Outcome;
    /**
     * @private
     * @param {string} sender
     * @param {string} negotiationId
     * @param {Record<string, unknown>} payload
     * @returns {Outcome}
     */
    private _offer;
    /** @private @param {string} peerDid @param {string} label @returns {Negotiation | null} */
    private _ownUnanswered;
    /** @private @param {Negotiation} negotiation @returns {Outcome} */
    private _glareRefusal;
    /**
     * A gateway ERROR about a message we sent for some negotiation, else null.
     * @param {string | null} correlationId
     * @param {string} code
     * @param {string} message
     * @returns {Outcome | null}
     */
    gatewayError(correlationId: string | null, code: string, message: string): Outcome | null;
    /**
     * The negotiation is over and its channel released: drop it (and its message ids).
     * @param {Negotiation} negotiation
     */
    forget(negotiation: Negotiation): void;
}
/**
 * Ordered relay frames and a credit window (docs/protocol.md section 19, "Relay fallback"): data
 * numbered from 0 each way, acks when the application read up to n, a gap is an error.
 */
export class RelayStream {
    /** @param {number} [window] */
    constructor(window?: number);
    window: number;
    nextOut: number;
    acked: number;
    nextIn: number;
    /** @private */
    private _unackedIn;
    /** @private */
    private _consumed;
    /** frames we may send before an ack (0: wait) */
    get credit(): number;
    /**
     * The relay frame for one message; RangeError when too large or without credit.
     * @param {string | Uint8Array} message
     * @returns {Record<string, unknown>}
     */
    data(message: string | Uint8Array): Record<string, unknown>;
    /**
     * The message a data frame carries, or null for an ack (which adds credit); Error when the frame
     * is malformed or out of order (a gap: the channel must fail rather than deliver it).
     * @param {Record<string, unknown>} frame
     * @returns {string | Uint8Array | null}
     */
    receive(frame: Record<string, unknown>): string | Uint8Array | null;
    /** @returns {Record<string, unknown> | null} the application took one message: the ack to send, every window / 2 */
    consumed(): Record<string, unknown> | null;
}
/**
 * What a received signal means for this agent.
 */
export type Outcome = {
    kind: "route";
    negotiation: Negotiation;
    decisions: Decision[];
} | {
    kind: "newOffer";
    negotiation: Negotiation;
} | {
    kind: "adopt";
    negotiation: Negotiation;
    superseded: Negotiation;
} | {
    kind: "reply";
    peerDid: string;
    type: string;
    payload: Record<string, unknown>;
} | {
    kind: "ignore";
    reason: string;
};
export type Fingerprint = {
    algorithm: string;
    value: string;
};
export type Description = {
    type: string;
    sdp: string;
};
export type Candidate = {
    candidate: string;
    sdpMid: string | null;
    sdpMLineIndex: number | null;
};
/**
 * What the pump carries out, in order.
 */
export type Decision = {
    kind: "signal";
    type: string;
    payload: Record<string, unknown>;
} | {
    kind: "applyRemote";
    description: Description;
} | {
    kind: "addCandidate";
    candidate: Candidate | null;
} | {
    kind: "sendProof";
} | {
    kind: "opened";
    transport: string;
} | {
    kind: "failed";
    error: PeerError;
} | {
    kind: "closed";
    reason: string;
} | {
    kind: "startRelay";
} | {
    kind: "relayFrame";
    frame: Record<string, unknown>;
};
export type NegotiationState = "new" | "offered" | "awaiting-winner" | "received" | "connecting" | "proving" | "relaying" | "open" | "closed" | "failed";
