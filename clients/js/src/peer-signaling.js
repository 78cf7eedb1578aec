/**
 * Peer-channel negotiation as pure objects: signaling payloads in, decisions out. No I/O, no
 * RTCPeerConnection: the same state machine as the Python SDK's client/peer/signaling.py, so a
 * browser and a Python agent make the same decisions (docs/protocol.md section 19).
 *
 * Opening a channel is one *negotiation*, named by a `negotiation_id` that every OFFER, ANSWER and
 * ICE_CANDIDATE of it carries. `Negotiation` is one attempt, on either side; `PeerSignaling` is
 * every negotiation of one agent: it routes received payloads, starts the callee's side of new
 * OFFERs and resolves glare (the OFFER of the DID that sorts first stands). The pump (peer.js)
 * feeds events in and carries the returned decisions out:
 *
 *   state       event                                  decisions                       next
 *   new         localOffer(description)   (caller)     signal OFFER                    offered
 *   offered     ANSWER {description}                   applyRemote                     connecting
 *   offered     ANSWER {refused}                       failed (PeerRefused)            failed
 *   offered     ANSWER {refused: GLARE}, we sort last  -                               awaiting-winner
 *   received    accept() / refuse(code)                applyRemote / signal ANSWER     received / closed
 *   received    localAnswer(description)               signal ANSWER                   connecting
 *   any live    ICE_CANDIDATE {candidate|null}         addCandidate (buffered until applied())
 *   connecting  connected(certificate digests)         sendProof                       proving
 *   proving     proved(null | problem)                 opened / failed (identity)      open / failed
 *   connecting  iceFailed(), fallback                  startRelay, signal relay open   relaying
 *   connecting  relay open from the peer               startRelay, relay opened, open  open
 *   relaying    relay opened (or open)                 opened relay                    open
 *   not open    timedOut()                             failed (timeout / ICE)          failed
 *   open        ICE_CANDIDATE {closed} / close()       closed / signal closed          closed
 * @module
 */

import { base64DecodeStrict, base64Encode } from './encoding.js';

export const PEER_TYPES = Object.freeze(['OFFER', 'ANSWER', 'ICE_CANDIDATE']);
export const MAX_LABEL_LENGTH = 128;
export const MAX_NEGOTIATION_ID_LENGTH = 128;
export const MAX_SDP_LENGTH = 32768;
export const MAX_CANDIDATE_LENGTH = 1024;
export const MAX_RELAY_MESSAGE = 32 * 1024;
export const RELAY_WINDOW = 64;
const MAX_TRACKED = 4096;
/** RFC 8122 hash functions this client checks, as the attribute spells them. */
export const SUPPORTED_HASHES = Object.freeze(['sha-256', 'sha-384', 'sha-512']);

/** Refusal codes of an ANSWER's `refused.code`. */
export const PEER_REFUSED = 'PEER_REFUSED';
export const GLARE = 'GLARE';
export const NO_FINGERPRINT = 'NO_FINGERPRINT';
export const BAD_OFFER = 'BAD_OFFER';

// -- errors --------------------------------------------------------------------------------------

/** A peer channel could not open, or ended; `code` is stable (docs/protocol.md section 19). */
export class PeerError extends Error {
  /**
   * @param {string} message
   * @param {{peerDid?: string | null}} [options]
   */
  constructor(message, options = {}) {
    super(message);
    this.name = 'PeerError';
    /** @type {string} */
    this.code = 'PEER_ERROR';
    this.peerDid = options.peerDid ?? null;
  }
}

/** No agent with that DID is connected to the gateway (its ERROR UNKNOWN_AGENT). */
export class PeerUnknownAgent extends PeerError {
  /** @param {string} message @param {{peerDid?: string | null}} [options] */
  constructor(message, options) { super(message, options); this.name = 'PeerUnknownAgent'; this.code = 'UNKNOWN_AGENT'; }
}

/** The gateway did not deliver the signaling (DELIVERY_FAILED and the like). */
export class PeerUnreachable extends PeerError {
  /** @param {string} message @param {{peerDid?: string | null}} [options] */
  constructor(message, options) { super(message, options); this.name = 'PeerUnreachable'; this.code = 'DELIVERY_FAILED'; }
}

/** The peer did not answer the OFFER within the timeout. */
export class PeerTimeout extends PeerError {
  /** @param {string} message @param {{peerDid?: string | null}} [options] */
  constructor(message, options) { super(message, options); this.name = 'PeerTimeout'; this.code = 'TIMEOUT'; }
}

/** The peer refused the channel; `reasonCode` is the ANSWER's `refused.code`. */
export class PeerRefused extends PeerError {
  /** @param {string} message @param {{peerDid?: string | null, reasonCode?: string}} [options] */
  constructor(message, options = {}) {
    super(message, options);
    this.name = 'PeerRefused';
    this.code = 'PEER_REFUSED';
    this.reasonCode = options.reasonCode ?? PEER_REFUSED;
  }
}

/** No ICE candidate pair connected (and no relay fallback). */
export class PeerICEFailed extends PeerError {
  /** @param {string} message @param {{peerDid?: string | null}} [options] */
  constructor(message, options) { super(message, options); this.name = 'PeerICEFailed'; this.code = 'ICE_FAILED'; }
}

/** The DTLS certificate or the identity proof did not match the DID negotiated with. */
export class PeerIdentityError extends PeerError {
  /** @param {string} message @param {{peerDid?: string | null}} [options] */
  constructor(message, options) { super(message, options); this.name = 'PeerIdentityError'; this.code = 'IDENTITY_MISMATCH'; }
}

/** The channel (or the client) is closed. */
export class PeerClosed extends PeerError {
  /** @param {string} message @param {{peerDid?: string | null}} [options] */
  constructor(message, options) { super(message, options); this.name = 'PeerClosed'; this.code = 'CLOSED'; }
}

// -- SDP -----------------------------------------------------------------------------------------

/** @typedef {{algorithm: string, value: string}} Fingerprint */
/** @typedef {{type: string, sdp: string}} Description */
/** @typedef {{candidate: string, sdpMid: string | null, sdpMLineIndex: number | null}} Candidate */

const FINGERPRINT = /^a=fingerprint:(\S+) ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+)\s*$/;

/**
 * Every `a=fingerprint` of an SDP (RFC 8122 section 5), algorithm lower case, value upper case.
 * @param {string} sdp
 * @returns {Fingerprint[]}
 */
export function fingerprints(sdp) {
  /** @type {Fingerprint[]} */
  const found = [];
  for (const line of sdp.split(/\r?\n/)) {
    const match = FINGERPRINT.exec(line.trim());
    if (match) found.push({ algorithm: match[1].toLowerCase(), value: match[2].toUpperCase() });
  }
  return found;
}

/**
 * The fingerprints this client can check (SHA-256/384/512): at least one must be present.
 * @param {string} sdp
 * @returns {Fingerprint[]}
 */
export function supportedFingerprints(sdp) {
  return fingerprints(sdp).filter((print) => SUPPORTED_HASHES.includes(print.algorithm));
}

/**
 * True when the certificate's digests (algorithm -> upper-case hex pairs) match every supported
 * fingerprint of the signed SDP, and there is at least one (RFC 8842 section 5).
 * @param {Fingerprint[]} signed
 * @param {Record<string, string>} certificate
 * @returns {boolean}
 */
export function certificateMatches(signed, certificate) {
  const checked = signed.filter((print) => SUPPORTED_HASHES.includes(print.algorithm));
  return checked.length > 0 && checked.every((print) => (certificate[print.algorithm] ?? '').toUpperCase() === print.value);
}

/**
 * The SDP without `a=candidate` and `a=end-of-candidates` lines: candidates are trickled (the SDP
 * that is signed and sent carries none, as the Python SDK's).
 * @param {string} sdp
 * @returns {string}
 */
export function withoutCandidates(sdp) {
  const kept = sdp.split(/\r?\n/).filter((line) => !line.startsWith('a=candidate:') && !line.startsWith('a=end-of-candidates'));
  while (kept.length > 0 && kept[kept.length - 1] === '') kept.pop();
  return `${kept.join('\r\n')}\r\n`;
}

/**
 * A received RTCSessionDescriptionInit, checked; Error saying why otherwise.
 * @param {unknown} value
 * @param {'offer' | 'answer'} expectedType
 * @returns {Description}
 */
export function checkDescription(value, expectedType) {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error("'description' must be an object {\"type\", \"sdp\"}");
  const { type, sdp } = /** @type {Record<string, unknown>} */ (value);
  if (type !== expectedType) throw new Error(`'description.type' must be '${expectedType}', not ${JSON.stringify(type)}`);
  if (typeof sdp !== 'string' || !sdp.startsWith('v=0')) throw new Error("'description.sdp' must be an SDP text starting with 'v=0'");
  if (sdp.length > MAX_SDP_LENGTH) throw new Error(`'description.sdp' is longer than ${MAX_SDP_LENGTH} characters`);
  return { type: expectedType, sdp };
}

/**
 * A received RTCIceCandidateInit, or null for end-of-candidates (`null` or a `candidate` of "");
 * Error saying why otherwise.
 * @param {unknown} value
 * @returns {Candidate | null}
 */
export function checkCandidate(value) {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error("'candidate' must be an RTCIceCandidateInit object or null");
  const { candidate: text, sdpMid: mid, sdpMLineIndex: index } = /** @type {Record<string, unknown>} */ (value);
  if (typeof text !== 'string' || text.length > MAX_CANDIDATE_LENGTH) throw new Error("'candidate.candidate' must be a candidate-attribute string");
  if (text === '') return null;
  if (!text.startsWith('candidate:') || text.split(/\s+/).length < 8) {
    throw new Error("'candidate.candidate' must read 'candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...' (RFC 8839)");
  }
  if (mid !== undefined && mid !== null && typeof mid !== 'string') throw new Error("'candidate.sdpMid' must be a string or null");
  if (index !== undefined && index !== null && (typeof index !== 'number' || !Number.isInteger(index) || index < 0)) {
    throw new Error("'candidate.sdpMLineIndex' must be a non-negative integer or null");
  }
  if ((mid ?? null) === null && (index ?? null) === null) throw new Error("a candidate needs 'sdpMid' or 'sdpMLineIndex'");
  return { candidate: text, sdpMid: /** @type {string | null} */ (mid ?? null), sdpMLineIndex: /** @type {number | null} */ (index ?? null) };
}

/**
 * The `typ` of a candidate-attribute (host, srflx, prflx, relay), or null.
 * @param {string} candidate
 * @returns {string | null}
 */
export function candidateType(candidate) {
  const parts = candidate.split(/\s+/);
  const position = parts.indexOf('typ');
  return position >= 0 && position + 1 < parts.length ? parts[position + 1] : null;
}

/**
 * A channel label: a string of 0-128 characters; TypeError otherwise.
 * @param {unknown} label
 * @returns {string}
 */
export function checkLabel(label) {
  if (typeof label !== 'string' || label.length > MAX_LABEL_LENGTH) {
    throw new TypeError(`a channel label must be a string of at most ${MAX_LABEL_LENGTH} characters`);
  }
  return label;
}

// -- decisions -----------------------------------------------------------------------------------

/**
 * What the pump carries out, in order.
 * @typedef {{kind: 'signal', type: string, payload: Record<string, unknown>}
 *   | {kind: 'applyRemote', description: Description}
 *   | {kind: 'addCandidate', candidate: Candidate | null}
 *   | {kind: 'sendProof'}
 *   | {kind: 'opened', transport: string}
 *   | {kind: 'failed', error: PeerError}
 *   | {kind: 'closed', reason: string}
 *   | {kind: 'startRelay'}
 *   | {kind: 'relayFrame', frame: Record<string, unknown>}} Decision
 */

/** @typedef {'new' | 'offered' | 'awaiting-winner' | 'received' | 'connecting' | 'proving' | 'relaying' | 'open' | 'closed' | 'failed'} NegotiationState */

const LIVE = new Set(['new', 'offered', 'awaiting-winner', 'received', 'connecting', 'proving', 'relaying', 'open']);
const UNANSWERED = new Set(['new', 'offered', 'awaiting-winner']);

/** @param {unknown} value @returns {value is Record<string, unknown>} */
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One attempt to open one channel between this agent and `peerDid`. */
export class Negotiation {
  /**
   * @param {{id: string, localDid: string, peerDid: string, label: string, role: 'caller' | 'callee',
   *   fallback?: boolean, state?: NegotiationState, timeout?: number, remoteDescription?: Description | null,
   *   remoteFingerprints?: Fingerprint[]}} init
   */
  constructor(init) {
    this.id = init.id;
    this.localDid = init.localDid;
    this.peerDid = init.peerDid;
    this.label = init.label;
    this.role = init.role;
    this.fallback = init.fallback ?? false;
    /** @type {NegotiationState} */
    this.state = init.state ?? 'new';
    /** @type {string | null} direct, turn or relay once open */
    this.transport = null;
    /** @type {Description | null} */
    this.remoteDescription = init.remoteDescription ?? null;
    /** @type {Fingerprint[]} */
    this.remoteFingerprints = init.remoteFingerprints ?? [];
    this.remoteApplied = false;
    /** a callee negotiation that answers this agent's own connectPeer (glare) */
    this.adopted = false;
    this.timeout = init.timeout ?? 20;
    /** @private @type {Array<Candidate | null>} */
    this._buffered = [];
  }

  get live() { return LIVE.has(this.state); }

  /** caller side, still without the peer's ANSWER (the glare window) */
  get unanswered() { return UNANSWERED.has(this.state); }

  /** @private @param {Record<string, unknown>} members @returns {Record<string, unknown>} */
  _payload(members) {
    return { negotiation_id: this.id, ...members };
  }

  /**
   * The local offer (without candidates) is made: send the OFFER.
   * @param {Description} description
   * @returns {Decision[]}
   */
  localOffer(description) {
    if (this.state !== 'new') return [];
    this.state = 'offered';
    return [{ kind: 'signal', type: 'OFFER', payload: this._payload({ label: this.label, description, fallback: this.fallback }) }];
  }

  /**
   * The local answer (without candidates) is made: send the ANSWER.
   * @param {Description} description
   * @returns {Decision[]}
   */
  localAnswer(description) {
    if (this.state !== 'received') return [];
    this.state = 'connecting';
    return [{ kind: 'signal', type: 'ANSWER', payload: this._payload({ description }) }];
  }

  /** @returns {Decision[]} the application accepts the OFFER: apply it (then answer) */
  accept() {
    if (this.state !== 'received' || this.remoteDescription === null) return [];
    return [{ kind: 'applyRemote', description: this.remoteDescription }];
  }

  /**
   * Refuse the OFFER with an ANSWER carrying `refused`.
   * @param {string} [code]
   * @param {string} [message]
   * @returns {Decision[]}
   */
  refuse(code = PEER_REFUSED, message = 'the peer refused the channel') {
    if (this.state !== 'received') return [];
    this.state = 'closed';
    return [{ kind: 'signal', type: 'ANSWER', payload: this._payload({ refused: { code, message } }) }];
  }

  /** @returns {Decision[]} the remote description is applied: the candidates that came meanwhile */
  applied() {
    this.remoteApplied = true;
    const buffered = this._buffered;
    this._buffered = [];
    return buffered.map((candidate) => ({ kind: /** @type {const} */ ('addCandidate'), candidate }));
  }

  /**
   * A local candidate (null: gathering complete) for the peer.
   * @param {Candidate | null} candidate
   * @returns {Decision[]}
   */
  localCandidate(candidate) {
    if (!['offered', 'connecting', 'proving', 'open'].includes(this.state)) return [];
    return [{ kind: 'signal', type: 'ICE_CANDIDATE', payload: this._payload({ candidate }) }];
  }

  /**
   * DTLS is up with a certificate whose digests are `certificate` (algorithm -> hex pairs).
   * @param {Record<string, string>} certificate
   * @param {{relayed: boolean}} options the selected pair goes through TURN
   * @returns {Decision[]}
   */
  connected(certificate, { relayed }) {
    if (this.state !== 'connecting') return [];
    if (!certificateMatches(this.remoteFingerprints, certificate)) {
      return this._fail(new PeerIdentityError(`the DTLS certificate of ${this.peerDid} does not match the fingerprint in its `
        + 'signed SDP: the channel is not with the DID\'s holder; refused', { peerDid: this.peerDid }), true);
    }
    this.state = 'proving';
    this.transport = relayed ? 'turn' : 'direct';
    return [{ kind: 'sendProof' }];
  }

  /**
   * The peer's identity proof arrived: `problem` is null when it checked.
   * @param {string | null} problem
   * @returns {Decision[]}
   */
  proved(problem) {
    if (this.state !== 'proving') return [];
    if (problem !== null) {
      return this._fail(new PeerIdentityError(`the channel negotiated with ${this.peerDid} is refused: ${problem}`, { peerDid: this.peerDid }), true);
    }
    this.state = 'open';
    return [{ kind: 'opened', transport: this.transport ?? 'direct' }];
  }

  /** @returns {Decision[]} ICE connected but DTLS did not (a certificate that does not match) */
  dtlsFailed() {
    if (this.state !== 'connecting' && this.state !== 'proving') return [];
    return this._fail(new PeerIdentityError(`the DTLS handshake with ${this.peerDid} failed: its certificate does not match `
      + 'the fingerprint in its signed SDP (or DTLS broke); refused', { peerDid: this.peerDid }), true);
  }

  /** @returns {Decision[]} the data channel or its connection closed without a signaled close */
  linkClosed() {
    if (this.state === 'open' && this.transport !== 'relay') {
      this.state = 'closed';
      return [{ kind: 'closed', reason: `the connection to ${this.peerDid} closed` }];
    }
    return this.iceFailed();
  }

  /** @returns {Decision[]} no candidate pair connected (or the connection failed before opening) */
  iceFailed() {
    if (this.state !== 'connecting' && this.state !== 'proving') return [];
    if (!this.fallback) {
      return this._fail(new PeerICEFailed(`no ICE candidate pair to ${this.peerDid} connected (UDP blocked, symmetric NATs, `
        + 'or no TURN server); connectPeer(..., {fallback: true}) would relay through the gateway', { peerDid: this.peerDid }), true);
    }
    this.state = 'relaying';
    return [{ kind: 'startRelay' }, { kind: 'signal', type: 'ICE_CANDIDATE', payload: this._payload({ relay: { op: 'open' } }) }];
  }

  /** @returns {Decision[]} the connect timeout passed before the channel opened */
  timedOut() {
    if (UNANSWERED.has(this.state)) {
      return this._fail(new PeerTimeout(`${this.peerDid} did not answer the OFFER within ${this.timeout} s`, { peerDid: this.peerDid }), true);
    }
    if (this.state === 'proving') {
      return this._fail(new PeerIdentityError(`${this.peerDid} sent no identity proof on the channel within ${this.timeout} s`,
        { peerDid: this.peerDid }), true);
    }
    if (['received', 'connecting', 'relaying'].includes(this.state)) {
      return this._fail(new PeerICEFailed(`the channel to ${this.peerDid} did not connect within ${this.timeout} s (ICE did not succeed)`,
        { peerDid: this.peerDid }), true);
    }
    return [];
  }

  /**
   * The application closes the channel: tell the peer, when it knows of it.
   * @param {string} [reason]
   * @returns {Decision[]}
   */
  close(reason = 'closed') {
    if (!this.live) return [];
    const known = this.state !== 'new';
    this.state = 'closed';
    return known ? [{ kind: 'signal', type: 'ICE_CANDIDATE', payload: this._payload({ closed: { reason } }) }] : [];
  }

  /**
   * The gateway did not forward one of our signals (UNKNOWN_AGENT, DELIVERY_FAILED, ...).
   * @param {string} code
   * @param {string} message
   * @returns {Decision[]}
   */
  gatewayError(code, message) {
    if (!this.live) return [];
    if (this.state === 'open') {
      if (this.transport === 'relay') {
        this.state = 'closed';
        return [{ kind: 'closed', reason: `the gateway could not reach ${this.peerDid}: ${code}` }];
      }
      return []; // a late ICE_CANDIDATE or close notice: the direct channel is unaffected
    }
    const error = code === 'UNKNOWN_AGENT'
      ? new PeerUnknownAgent(`no agent ${this.peerDid} is connected to the gateway (UNKNOWN_AGENT)`, { peerDid: this.peerDid })
      : new PeerUnreachable(`the gateway did not deliver the signaling to ${this.peerDid}: ${code}: ${message}`, { peerDid: this.peerDid });
    return this._fail(error, false);
  }

  /**
   * A payload of this negotiation from the peer (already verified as its).
   * @param {string} type
   * @param {Record<string, unknown>} payload
   * @returns {Decision[]}
   */
  receive(type, payload) {
    if (type === 'ANSWER') return this._answer(payload);
    if (type === 'ICE_CANDIDATE') {
      if ('closed' in payload) return this._remoteClosed(payload.closed);
      if ('relay' in payload) return this._relay(payload.relay);
      if ('candidate' in payload) return this._candidate(payload.candidate);
    }
    return [];
  }

  /** @private @param {Record<string, unknown>} payload @returns {Decision[]} */
  _answer(payload) {
    if (this.role !== 'caller' || this.state !== 'offered') return [];
    const refused = payload.refused;
    if (refused !== undefined && refused !== null) {
      const code = isObject(refused) && typeof refused.code === 'string' ? refused.code : PEER_REFUSED;
      const text = isObject(refused) && typeof refused.message === 'string' ? `: ${refused.message}` : '';
      if (code === GLARE && this.localDid > this.peerDid) {
        this.state = 'awaiting-winner'; // the peer's OFFER answers us
        return [];
      }
      this.state = 'failed';
      return [{ kind: 'failed', error: new PeerRefused(`${this.peerDid} refused the channel (${code}${text})`, { peerDid: this.peerDid, reasonCode: code }) }];
    }
    let description;
    try {
      description = checkDescription(payload.description, 'answer');
    } catch (error) {
      return this._fail(new PeerRefused(`${this.peerDid} sent an unusable ANSWER: ${/** @type {Error} */ (error).message}`,
        { peerDid: this.peerDid, reasonCode: BAD_OFFER }), true);
    }
    const prints = supportedFingerprints(description.sdp);
    if (prints.length === 0) {
      return this._fail(new PeerIdentityError(`the signed ANSWER of ${this.peerDid} carries no DTLS fingerprint `
        + '(a=fingerprint with SHA-256/384/512): the channel could not be authenticated; refused', { peerDid: this.peerDid }), true);
    }
    this.remoteDescription = description;
    this.remoteFingerprints = prints;
    this.state = 'connecting';
    return [{ kind: 'applyRemote', description }];
  }

  /** @private @param {unknown} value @returns {Decision[]} */
  _candidate(value) {
    if (!['received', 'connecting', 'proving', 'open', 'offered'].includes(this.state)) return [];
    let candidate;
    try {
      candidate = checkCandidate(value);
    } catch {
      return []; // one unusable candidate does not end the negotiation
    }
    if (!this.remoteApplied) {
      this._buffered.push(candidate);
      return [];
    }
    return [{ kind: 'addCandidate', candidate }];
  }

  /** @private @param {unknown} value @returns {Decision[]} */
  _relay(value) {
    const op = isObject(value) ? value.op : undefined;
    if (op === 'open' && this.fallback) {
      if (this.state === 'relaying') { // both sides failed: both asked
        this.state = 'open';
        this.transport = 'relay';
        return [{ kind: 'opened', transport: 'relay' }];
      }
      if (this.state === 'connecting' || this.state === 'proving') { // the peer's ICE failed first
        this.state = 'open';
        this.transport = 'relay';
        return [{ kind: 'startRelay' }, { kind: 'signal', type: 'ICE_CANDIDATE', payload: this._payload({ relay: { op: 'opened' } }) },
          { kind: 'opened', transport: 'relay' }];
      }
      return [];
    }
    if (op === 'opened' && this.state === 'relaying') {
      this.state = 'open';
      this.transport = 'relay';
      return [{ kind: 'opened', transport: 'relay' }];
    }
    if ((op === 'data' || op === 'ack') && this.state === 'open' && this.transport === 'relay' && isObject(value)) {
      return [{ kind: 'relayFrame', frame: value }];
    }
    return [];
  }

  /** @private @param {unknown} value @returns {Decision[]} */
  _remoteClosed(value) {
    const reason = isObject(value) && typeof value.reason === 'string' ? value.reason.slice(0, 200) : 'closed';
    const code = isObject(value) ? value.code : undefined;
    if (this.state === 'open') {
      this.state = 'closed';
      return [{ kind: 'closed', reason: `closed by ${this.peerDid}: ${reason}` }];
    }
    if (!this.live) return [];
    this.state = 'failed';
    const text = `${this.peerDid} gave up the negotiation: ${reason}`;
    let error;
    if (code === 'IDENTITY_MISMATCH') error = new PeerIdentityError(text, { peerDid: this.peerDid });
    else if (code === 'ICE_FAILED' || code === 'TIMEOUT') error = new PeerICEFailed(text, { peerDid: this.peerDid });
    else error = new PeerRefused(text, { peerDid: this.peerDid, reasonCode: typeof code === 'string' ? code : 'CLOSED' });
    return [{ kind: 'failed', error }];
  }

  /** @private @param {PeerError} error @param {boolean} tellPeer @returns {Decision[]} */
  _fail(error, tellPeer) {
    const known = this.state !== 'new';
    this.state = 'failed';
    /** @type {Decision[]} */
    const decisions = [{ kind: 'failed', error }];
    if (tellPeer && known) {
      decisions.push({ kind: 'signal', type: 'ICE_CANDIDATE', payload: this._payload({ closed: { code: error.code, reason: error.message.slice(0, 200) } }) });
    }
    return decisions;
  }
}

// -- every negotiation of one agent --------------------------------------------------------------

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
export function isPeerSignal(type, payload) {
  return PEER_TYPES.includes(type) && typeof payload.negotiation_id === 'string';
}

/** @param {unknown} value @returns {string | null} */
function checkId(value) {
  return typeof value === 'string' && value.length >= 1 && value.length <= MAX_NEGOTIATION_ID_LENGTH ? value : null;
}

/** Every negotiation of the agent `did`, keyed by negotiation id. */
export class PeerSignaling {
  /**
   * @param {string} did
   * @param {{newId?: () => string}} [options]
   */
  constructor(did, options = {}) {
    this.did = did;
    /** @type {Map<string, Negotiation>} */
    this.negotiations = new Map();
    /** @private */
    this._newId = options.newId ?? (() => crypto.randomUUID());
    /** @private @type {Map<string, string>} id of a message we sent -> its negotiation (for ERRORs) */
    this._signals = new Map();
  }

  /**
   * A new negotiation for connectPeer, or the peer's waiting OFFER with the same label when glare
   * makes it the one that stands (`adopted`, nothing offered). The replies refuse the peer's
   * OFFERs that lose to ours.
   * @param {string} peerDid
   * @param {string} label
   * @param {{fallback?: boolean, timeout?: number}} [options]
   * @returns {{negotiation: Negotiation, replies: Outcome[]}}
   */
  connect(peerDid, label, options = {}) {
    checkLabel(label);
    /** @type {Outcome[]} */
    const replies = [];
    for (const other of [...this.negotiations.values()]) {
      if (other.role === 'callee' && other.peerDid === peerDid && other.label === label && other.state === 'received' && !other.adopted) {
        if (peerDid < this.did) { // the peer's negotiation stands: answer it ourselves
          other.adopted = true;
          other.timeout = options.timeout ?? 20;
          return { negotiation: other, replies: [] };
        }
        replies.push(this._glareRefusal(other));
      }
    }
    const negotiation = new Negotiation({
      id: this._newId(), localDid: this.did, peerDid, label, role: 'caller', fallback: options.fallback ?? false, timeout: options.timeout ?? 20,
    });
    this.negotiations.set(negotiation.id, negotiation);
    return { negotiation, replies };
  }

  /**
   * A signal of `negotiationId` went out as message `messageId` (for the gateway's ERRORs).
   * @param {string} messageId
   * @param {string} negotiationId
   */
  sent(messageId, negotiationId) {
    this._signals.set(messageId, negotiationId);
    if (this._signals.size > MAX_TRACKED) this._signals.delete(/** @type {string} */ (this._signals.keys().next().value));
  }

  /**
   * A verified OFFER / ANSWER / ICE_CANDIDATE from `sender` (see isPeerSignal).
   * @param {string} sender
   * @param {string} type
   * @param {Record<string, unknown>} payload
   * @returns {Outcome}
   */
  receive(sender, type, payload) {
    const negotiationId = checkId(payload.negotiation_id);
    if (negotiationId === null) return { kind: 'ignore', reason: 'a signal without a usable negotiation_id' };
    const negotiation = this.negotiations.get(negotiationId);
    if (negotiation !== undefined) {
      if (negotiation.peerDid !== sender) return { kind: 'ignore', reason: `${sender} sent a signal for a negotiation with ${negotiation.peerDid}` };
      return { kind: 'route', negotiation, decisions: negotiation.receive(type, payload) };
    }
    if (type !== 'OFFER') return { kind: 'ignore', reason: `a ${type} for an unknown negotiation ${JSON.stringify(negotiationId)}` };
    return this._offer(sender, negotiationId, payload);
  }

  /**
   * @private
   * @param {string} sender
   * @param {string} negotiationId
   * @param {Record<string, unknown>} payload
   * @returns {Outcome}
   */
  _offer(sender, negotiationId, payload) {
    const refuse = (/** @type {string} */ code, /** @type {string} */ message) => /** @type {Outcome} */ ({
      kind: 'reply', peerDid: sender, type: 'ANSWER', payload: { negotiation_id: negotiationId, refused: { code, message } },
    });
    let label;
    let fallback;
    let description;
    try {
      label = checkLabel(payload.label ?? 'default');
      fallback = payload.fallback ?? false;
      if (typeof fallback !== 'boolean') throw new Error("'fallback' must be true or false");
      description = checkDescription(payload.description, 'offer');
    } catch (error) {
      return refuse(BAD_OFFER, /** @type {Error} */ (error).message);
    }
    const prints = supportedFingerprints(description.sdp);
    if (prints.length === 0) {
      return refuse(NO_FINGERPRINT, "the OFFER's SDP has no DTLS fingerprint (a=fingerprint with SHA-256/384/512); the channel could not be authenticated");
    }
    const negotiation = new Negotiation({
      id: negotiationId, localDid: this.did, peerDid: sender, label, role: 'callee', fallback, state: 'received',
      remoteDescription: description, remoteFingerprints: prints,
    });
    const ours = this._ownUnanswered(sender, label);
    if (ours !== null && this.did < sender) return this._glareRefusal(negotiation); // ours stands
    this.negotiations.set(negotiationId, negotiation);
    if (ours !== null) { // theirs stands: it answers our connectPeer
      ours.state = 'closed';
      negotiation.adopted = true;
      negotiation.timeout = ours.timeout;
      return { kind: 'adopt', negotiation, superseded: ours };
    }
    return { kind: 'newOffer', negotiation };
  }

  /** @private @param {string} peerDid @param {string} label @returns {Negotiation | null} */
  _ownUnanswered(peerDid, label) {
    for (const negotiation of this.negotiations.values()) {
      if (negotiation.role === 'caller' && negotiation.peerDid === peerDid && negotiation.label === label && negotiation.unanswered) return negotiation;
    }
    return null;
  }

  /** @private @param {Negotiation} negotiation @returns {Outcome} */
  _glareRefusal(negotiation) {
    negotiation.state = 'closed';
    this.negotiations.delete(negotiation.id);
    return {
      kind: 'reply', peerDid: negotiation.peerDid, type: 'ANSWER', payload: {
        negotiation_id: negotiation.id,
        refused: { code: GLARE, message: `both agents offered a channel ${JSON.stringify(negotiation.label)} at once; the OFFER of ${this.did} (the DID that sorts first) stands` },
      },
    };
  }

  /**
   * A gateway ERROR about a message we sent for some negotiation, else null.
   * @param {string | null} correlationId
   * @param {string} code
   * @param {string} message
   * @returns {Outcome | null}
   */
  gatewayError(correlationId, code, message) {
    if (correlationId === null) return null;
    const negotiationId = this._signals.get(correlationId);
    this._signals.delete(correlationId);
    const negotiation = negotiationId === undefined ? undefined : this.negotiations.get(negotiationId);
    if (negotiation === undefined) return null;
    return { kind: 'route', negotiation, decisions: negotiation.gatewayError(code, message) };
  }

  /**
   * The negotiation is over and its channel released: drop it (and its message ids).
   * @param {Negotiation} negotiation
   */
  forget(negotiation) {
    if (this.negotiations.get(negotiation.id) === negotiation) this.negotiations.delete(negotiation.id);
    for (const [messageId, negotiationId] of [...this._signals]) {
      if (negotiationId === negotiation.id) this._signals.delete(messageId);
    }
  }
}

// -- the relay fallback's stream -----------------------------------------------------------------

/**
 * Ordered relay frames and a credit window (docs/protocol.md section 19, "Relay fallback"): data
 * numbered from 0 each way, acks when the application read up to n, a gap is an error.
 */
export class RelayStream {
  /** @param {number} [window] */
  constructor(window = RELAY_WINDOW) {
    if (window < 2) throw new RangeError('the relay window must be at least 2');
    this.window = window;
    this.nextOut = 0;
    this.acked = -1;
    this.nextIn = 0;
    /** @private */
    this._unackedIn = 0;
    /** @private */
    this._consumed = 0;
  }

  /** frames we may send before an ack (0: wait) */
  get credit() {
    return this.window - (this.nextOut - 1 - this.acked);
  }

  /**
   * The relay frame for one message; RangeError when too large or without credit.
   * @param {string | Uint8Array} message
   * @returns {Record<string, unknown>}
   */
  data(message) {
    /** @type {Record<string, unknown>} */
    let frame;
    let size;
    if (typeof message === 'string') {
      size = new TextEncoder().encode(message).length;
      frame = { op: 'data', seq: this.nextOut, text: message };
    } else if (message instanceof Uint8Array) {
      size = message.length;
      frame = { op: 'data', seq: this.nextOut, bytes: base64Encode(message) };
    } else {
      throw new TypeError('a channel sends a string or a Uint8Array');
    }
    if (size > MAX_RELAY_MESSAGE) throw new RangeError(`a relayed message is limited to ${MAX_RELAY_MESSAGE} bytes; this one has ${size}`);
    if (this.credit <= 0) throw new RangeError("no credit: wait for the peer's ack");
    this.nextOut += 1;
    return frame;
  }

  /**
   * The message a data frame carries, or null for an ack (which adds credit); Error when the frame
   * is malformed or out of order (a gap: the channel must fail rather than deliver it).
   * @param {Record<string, unknown>} frame
   * @returns {string | Uint8Array | null}
   */
  receive(frame) {
    const { op, seq } = frame;
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0) throw new Error("a relay frame needs a non-negative integer 'seq'");
    if (op === 'ack') {
      if (seq >= this.nextOut) throw new Error(`ack ${seq} for a frame never sent`);
      this.acked = Math.max(this.acked, seq);
      return null;
    }
    if (seq !== this.nextIn) throw new Error(`relay frame ${seq} arrived where ${this.nextIn} was expected`);
    let message;
    if (typeof frame.text === 'string') {
      message = frame.text;
    } else if (typeof frame.bytes === 'string') {
      message = base64DecodeStrict(frame.bytes);
      if (message === null) throw new Error("'bytes' is not base64");
    } else {
      throw new Error("a data frame carries 'text' (a string) or 'bytes' (base64)");
    }
    this.nextIn += 1;
    return message;
  }

  /** @returns {Record<string, unknown> | null} the application took one message: the ack to send, every window / 2 */
  consumed() {
    this._consumed += 1;
    this._unackedIn += 1;
    if (this._unackedIn < Math.floor(this.window / 2)) return null;
    this._unackedIn = 0;
    return { op: 'ack', seq: this._consumed - 1 };
  }
}
