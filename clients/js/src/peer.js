/**
 * Peer channels with the browser's own RTCPeerConnection: the pump that carries out what the pure
 * negotiation (peer-signaling.js) decides, with the OFFER / ANSWER / ICE_CANDIDATE payloads of
 * docs/protocol.md section 19, so a page and a Python aiortc agent open a data channel to each other.
 *
 * One `PeerManager` per GatewayClient, made on the first use of a peer API. The client hands it
 * every verified OFFER / ANSWER / ICE_CANDIDATE that carries a `negotiation_id`, and the gateway's
 * ERRORs about the signals it sent. Each negotiation has an attempt: its RTCPeerConnection (or its
 * relay stream), its PeerChannel, the connectPeer call waiting for it, and one promise chain that
 * carries out its work in order, so a candidate is never applied before its description and
 * signals leave in the order the negotiation made them.
 *
 * The identity chain (SECURITY.md): the peer's SDP, with its DTLS fingerprint, came in an envelope
 * signed by its DID and verified by the client; RTCPeerConnection refuses a DTLS certificate that
 * does not match the fingerprint of the remote description it was given (RFC 8842 section 5); where
 * the browser exposes the certificate (`RTCDtlsTransport.getRemoteCertificates()`, Chromium) its
 * digests are checked against the signed SDP here too; then each side's identity proof (peer-proof.js)
 * binds both DIDs to both certificates.
 *
 * Node has no RTCPeerConnection: there `connectPeer` rejects saying so and incoming OFFERs are
 * refused (`PEER_REFUSED`), unless an implementation is passed as the `RTCPeerConnection` option.
 * The relay fallback cannot stand alone: it starts only after a WebRTC negotiation failed ICE.
 * @module
 */

import { loadSodium } from './e2e.js';
import { hexEncode } from './encoding.js';
import { Inbox } from './inbox.js';
import { buildProof, checkProof } from './peer-proof.js';
import {
  PeerClosed, PeerError, PeerSignaling, RelayStream, checkLabel, isPeerSignal, supportedFingerprints, withoutCandidates,
} from './peer-signaling.js';

/** @typedef {import('./peer-signaling.js').Negotiation} Negotiation */
/** @typedef {import('./peer-signaling.js').Decision} Decision */
/** @typedef {import('./peer-signaling.js').Outcome} Outcome */
/** @typedef {import('./envelope.js').Message} Message */
/** @typedef {{urls: string | string[], username?: string, credential?: string}} IceServer */
/** @typedef {string | Uint8Array} ChannelData */

/**
 * @typedef {object} ConnectPeerOptions
 * @property {string} [label] the data channel's label (default "default"; 0-128 characters)
 * @property {number} [timeout] seconds for the channel to open (default 20)
 * @property {boolean} [fallback] relay through the gateway when ICE fails (default false)
 * @property {IceServer[]} [iceServers] replace the gateway's ICE servers for this channel
 * @property {boolean} [relayOnly] TURN candidates only (iceTransportPolicy "relay")
 */

/**
 * What a PeerManager needs of its client (GatewayClient has it).
 * @typedef {object} PeerClient
 * @property {string | null} did
 * @property {string | null} gatewayDid
 * @property {{did: string, sign: (data: Uint8Array) => Promise<Uint8Array>} | null} key
 * @property {IceServer[]} iceServers
 * @property {(to: string, type: string, payload: Record<string, unknown>, options?: {encrypt?: boolean}) => Promise<string>} send
 * @property {boolean} [connected]
 * @property {() => Promise<unknown>} [refreshIceServers]
 */

/** seconds an incoming OFFER has to become an open channel */
export const CALLEE_TIMEOUT = 30;
/** seconds before TURN credentials expire that fresh ones are asked for */
export const REFRESH_MARGIN = 60;

/**
 * True when a TURN REST username (`<expiry>:<user>`) among `servers` expires before `by` (Unix seconds).
 * @param {IceServer[]} servers
 * @param {number} by
 * @returns {boolean}
 */
export function credentialsExpire(servers, by) {
  return servers.some((server) => {
    const expiry = String(server.username ?? '').split(':')[0];
    return /^\d+$/.test(expiry) && Number(expiry) < by;
  });
}
const HIGH_WATER = 1024 * 1024; // bytes buffered in the data channel before send() waits
const LOW_WATER = 256 * 1024;
const END = Symbol('end');

/**
 * A change of a channel's state: `state` (open, closed, failed) and why.
 * @typedef {{state: string, reason: string | null}} PeerEvent
 */

/** An ordered, reliable, DID-authenticated channel to one agent (WebRTC, or the gateway relay). */
export class PeerChannel {
  /**
   * @param {string} peerDid
   * @param {string} label
   * @param {string} negotiationId
   * @param {(channel: PeerChannel, reason: string) => Promise<void>} closer
   * @param {(channel: PeerChannel) => void} consumed
   */
  constructor(peerDid, label, negotiationId, closer, consumed) {
    /** the agent at the other end, whose signed SDP the DTLS certificate matched */
    this.peerDid = peerDid;
    this.label = label;
    this.negotiationId = negotiationId;
    /** @type {'connecting' | 'open' | 'closed' | 'failed'} */
    this.state = 'connecting';
    /** @type {'direct' | 'turn' | 'relay' | null} null until open */
    this.transport = null;
    /** @type {string | null} */
    this.closeReason = null;
    /** @type {number | null} seconds from the start of the negotiation until the channel opened */
    this.openedIn = null;
    /** @type {{send: (data: ChannelData) => Promise<void>} | null} */
    this.link = null;
    /** @private */
    this._closer = closer;
    /** @private */
    this._consumed = consumed;
    /** @private @type {Inbox<ChannelData | typeof END>} */
    this._inbox = new Inbox();
    /** @private @type {Array<(event: PeerEvent) => unknown>} */
    this._handlers = [];
    /** @type {() => void} */
    let done = () => {};
    /** @private @type {Promise<void>} */
    this._done = new Promise((resolve) => { done = resolve; });
    /** @private */
    this._markDone = done;
  }

  /**
   * Send one message (a string, or bytes as a Uint8Array / ArrayBuffer); PeerClosed when the
   * channel is not open. Waits while the data channel's buffer is full (or the relay window).
   * @param {ChannelData | ArrayBuffer} data
   * @returns {Promise<void>}
   */
  async send(data) {
    const message = data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    if (typeof message !== 'string' && !(message instanceof Uint8Array)) throw new TypeError('a channel sends a string or bytes (Uint8Array)');
    if (this.state !== 'open' || this.link === null) {
      throw new PeerClosed(`the channel to ${this.peerDid} is ${this.state}${this.closeReason ? `: ${this.closeReason}` : ''}`, { peerDid: this.peerDid });
    }
    await this.link.send(message);
  }

  /**
   * The next message, in order (a string, or a Uint8Array for bytes); PeerClosed once the channel
   * ended and every message before the end was read; PeerError TIMEOUT after `timeout` seconds.
   * @param {{timeout?: number | null}} [options]
   * @returns {Promise<ChannelData>}
   */
  async receive(options = {}) {
    const timeout = options.timeout ?? null;
    const item = await this._inbox.take(timeout, () => {
      const error = new PeerError(`no message on the channel from ${this.peerDid} within ${timeout} s`, { peerDid: this.peerDid });
      error.code = 'TIMEOUT';
      return error;
    });
    if (item === END) {
      this._inbox.putBack(END); // every later receive() sees the end too
      throw new PeerClosed(`the channel to ${this.peerDid} is ${this.state}${this.closeReason ? `: ${this.closeReason}` : ''}`, { peerDid: this.peerDid });
    }
    this._consumed(this);
    return /** @type {ChannelData} */ (item);
  }

  /** @returns {AsyncIterator<ChannelData>} every message until the channel ends */
  async* [Symbol.asyncIterator]() {
    for (;;) {
      try {
        yield await this.receive();
      } catch (error) {
        if (error instanceof PeerClosed) return;
        throw error;
      }
    }
  }

  /**
   * Close the channel; the peer sees it closed too. Idempotent.
   * @param {string} [reason]
   * @returns {Promise<void>}
   */
  async close(reason = 'closed by the application') {
    if (this.state === 'closed' || this.state === 'failed') return;
    await this._closer(this, reason);
  }

  /** @returns {Promise<void>} resolves when the channel is closed or failed */
  waitClosed() {
    return this._done;
  }

  /**
   * Call `handler({state, reason})` when the channel opens, closes or fails; returns a remover.
   * @param {(event: PeerEvent) => unknown} handler
   * @returns {() => void}
   */
  onEvent(handler) {
    this._handlers.push(handler);
    return () => {
      const index = this._handlers.indexOf(handler);
      if (index >= 0) this._handlers.splice(index, 1);
    };
  }

  // -- the pump's side ---------------------------------------------------------------------------

  /**
   * @param {'direct' | 'turn' | 'relay'} transport
   * @param {{send: (data: ChannelData) => Promise<void>}} link
   */
  _opened(transport, link) {
    this.transport = transport;
    this.link = link;
    this.state = 'open';
    this._emit({ state: 'open', reason: null });
  }

  /** @param {ChannelData} data */
  _delivered(data) {
    if (this.state === 'closed' || this.state === 'failed') return;
    this._push(data);
  }

  /**
   * The channel is over: receivers see the end after what was queued.
   * @param {'closed' | 'failed'} state
   * @param {string} reason
   */
  _ended(state, reason) {
    if (this.state === 'closed' || this.state === 'failed') return;
    this.state = state;
    this.closeReason = reason;
    this._push(END);
    this._markDone();
    this._emit({ state, reason });
  }

  /** @private @param {ChannelData | typeof END} item */
  _push(item) {
    this._inbox.put(item);
  }

  /** @private @param {PeerEvent} event */
  _emit(event) {
    for (const handler of [...this._handlers]) {
      try {
        Promise.resolve(handler(event)).catch((error) => console.error('aiconexus: peer channel event handler failed', error));
      } catch (error) {
        console.error('aiconexus: peer channel event handler failed', error);
      }
    }
  }
}

/**
 * Hex pairs, upper case, colon-separated: the SDP's way of writing a digest.
 * @param {ArrayBuffer} digest
 * @returns {string}
 */
function hexPairs(digest) {
  return (hexEncode(new Uint8Array(digest)).toUpperCase().match(/../g) ?? []).join(':');
}

/** The I/O of one negotiation. */
class Attempt {
  /**
   * @param {Negotiation} negotiation
   * @param {PeerChannel} channel
   */
  constructor(negotiation, channel) {
    this.negotiation = negotiation;
    this.channel = channel;
    /** @type {RTCPeerConnection | null} */
    this.pc = null;
    /** @type {RTCDataChannel | null} */
    this.dc = null;
    /** @type {RelayStream | null} */
    this.relay = null;
    this.encryptRelay = true;
    /** @type {Array<() => void>} senders waiting for relay credit or buffer room */
    this.waiting = [];
    /** @type {Promise<void>} the work so far, chained */
    this.chain = Promise.resolve();
    /** @type {{resolve: (channel: PeerChannel) => void, reject: (error: Error) => void} | null} */
    this.waiter = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.deadline = null;
    this.relayOnly = false;
    /** @type {IceServer[]} */
    this.iceServers = [];
    this.ended = false;
    this.candidatesSent = 0;
    this.gatheringDone = false;
    this.proofSeen = false;
    this.peerCertificate = ''; // SHA-256 of the certificate DTLS presented
    this.localFingerprint = ''; // SHA-256 of ours, from our SDP
    this.started = performance.now();
    this.closing = false; // our close() is closing the data channel
    /** @type {Promise<void> | null} the relayed sends so far, chained */
    this.relaySending = null;
  }

  wake() {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }
}

/** Every peer channel of one GatewayClient. */
export class PeerManager {
  /**
   * @param {PeerClient} client
   * @param {{RTCPeerConnection?: typeof RTCPeerConnection | null}} [options]
   */
  constructor(client, options = {}) {
    this.client = client;
    this.signaling = new PeerSignaling(/** @type {string} */ (client.did));
    /** @type {Map<string, Attempt>} */
    this.attempts = new Map();
    /** @type {typeof RTCPeerConnection | null} */
    this.RTCPeerConnection = options.RTCPeerConnection ?? globalThis.RTCPeerConnection ?? null;
    /** @type {IceServer[] | null} null: the gateway's (REGISTERED's ice_servers) */
    this.iceServers = null;
    this.relayOnly = false;
    /** @private @type {Array<(channel: PeerChannel) => unknown>} */
    this._handlers = [];
    /** @private @type {((peerDid: string, label: string) => boolean | Promise<boolean>) | null} */
    this._accept = null;
    /** @private */
    this._listening = false;
    /** @private @type {Array<PeerChannel | typeof END>} */
    this._incoming = [];
    /** @private @type {Array<(item: PeerChannel | typeof END) => void>} */
    this._takers = [];
    /** @private */
    this._closed = false;
  }

  // -- the application's side --------------------------------------------------------------------

  /**
   * Open a channel to `peerDid`; resolves once it is open (and the peer's identity proved).
   * @param {string} peerDid
   * @param {ConnectPeerOptions} [options]
   * @returns {Promise<PeerChannel>}
   */
  async connect(peerDid, options = {}) {
    if (this._closed) throw new PeerClosed('the client is closed');
    const label = checkLabel(options.label ?? 'default');
    const timeout = options.timeout ?? 20;
    if (!(timeout > 0)) throw new RangeError('timeout must be above 0 seconds');
    if (this.RTCPeerConnection === null) {
      throw new PeerError('peer channels need WebRTC (RTCPeerConnection): a browser has it; Node has none (pass an implementation '
        + 'as the RTCPeerConnection option, e.g. from a WebRTC package)', { peerDid });
    }
    await this._freshIceServers();
    const { negotiation, replies } = this.signaling.connect(peerDid, label, { fallback: options.fallback ?? false, timeout });
    for (const reply of replies) this._reply(reply);
    return new Promise((resolve, reject) => {
      if (negotiation.adopted) { // glare: the peer's waiting OFFER is the one that stands
        const attempt = /** @type {Attempt} */ (this.attempts.get(negotiation.id));
        attempt.waiter = { resolve, reject };
        this._arm(attempt, timeout);
        return;
      }
      const attempt = this._attempt(negotiation, timeout, options.relayOnly ?? null, options.iceServers ?? null);
      attempt.waiter = { resolve, reject };
      this._push(attempt, () => this._offer(attempt));
    });
  }

  /** @private The gateway's TURN credentials expire: ask for new ones a minute before. */
  async _freshIceServers() {
    if (this.iceServers !== null || !this.client.connected || !this.client.refreshIceServers) return;
    if (!credentialsExpire(this.client.iceServers, Date.now() / 1000 + REFRESH_MARGIN)) return;
    try {
      await this.client.refreshIceServers();
    } catch (error) {
      console.warn(`aiconexus: could not refresh the ICE servers: ${error instanceof Error ? error.message : error}`);
    }
  }

  /**
   * Call `handler(channel)` for every channel another agent opens to this one (accepting them).
   * @param {(channel: PeerChannel) => unknown} handler
   * @returns {() => void} removes the handler
   */
  onPeer(handler) {
    this._handlers.push(handler);
    this._listening = true;
    return () => {
      const index = this._handlers.indexOf(handler);
      if (index >= 0) this._handlers.splice(index, 1);
    };
  }

  /**
   * Decide which OFFERs to accept: `policy(peerDid, label)` (plain or async) true accepts.
   * @param {(peerDid: string, label: string) => boolean | Promise<boolean>} policy
   */
  acceptPolicy(policy) {
    this._accept = policy;
    this._listening = true;
  }

  /** @returns {AsyncIterableIterator<PeerChannel>} the channels other agents open, as they open */
  peers() {
    this._listening = true;
    const next = () => new Promise((resolve) => {
      const item = this._incoming.shift();
      if (item !== undefined) resolve(item);
      else this._takers.push(resolve);
    }).then((item) => {
      if (item === END) {
        this._incoming.unshift(END);
        return { done: true, value: undefined };
      }
      return { done: false, value: item };
    });
    const iterator = {
      next,
      [Symbol.asyncIterator]() { return iterator; },
    };
    return /** @type {AsyncIterableIterator<PeerChannel>} */ (/** @type {unknown} */ (iterator));
  }

  /** @returns {PeerChannel[]} the channels open now */
  channels() {
    return [...this.attempts.values()].filter((attempt) => attempt.channel.state === 'open').map((attempt) => attempt.channel);
  }

  /**
   * The client closes: close every channel (telling the peers, within 2 s), end peers().
   * @returns {Promise<void>}
   */
  async close() {
    if (this._closed) return;
    this._closed = true;
    const attempts = [...this.attempts.values()];
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    await Promise.race([
      Promise.allSettled(attempts.map((attempt) => this._closeChannel(attempt.channel, "the peer's client closed"))),
      new Promise((resolve) => { timer = setTimeout(resolve, 2000); }),
    ]);
    clearTimeout(timer);
    for (const attempt of attempts) if (!attempt.ended) this._end(attempt, 'closed', 'the client closed');
    this._offerIncoming(END);
  }

  // -- from the client ---------------------------------------------------------------------------

  /**
   * Handle `message` when it belongs to a negotiation (true), else leave it (false).
   * @param {Message} message
   * @returns {boolean}
   */
  takes(message) {
    if (isPeerSignal(message.type, message.payload)) {
      this._route(this.signaling.receive(message.sender, message.type, message.payload));
      return true;
    }
    if (message.type === 'ERROR' && message.sender === this.client.gatewayDid) {
      const outcome = this.signaling.gatewayError(message.correlationId, String(message.payload.code), String(message.payload.message));
      if (outcome !== null) {
        this._route(outcome);
        return true;
      }
    }
    return false;
  }

  /** @private @param {Outcome} outcome */
  _route(outcome) {
    if (outcome.kind === 'route') {
      const attempt = this.attempts.get(outcome.negotiation.id);
      if (attempt !== undefined && outcome.decisions.length > 0) this._push(attempt, () => this._carryOut(attempt, outcome.decisions));
    } else if (outcome.kind === 'newOffer') {
      const attempt = this._attempt(outcome.negotiation, CALLEE_TIMEOUT, null, null);
      this._push(attempt, () => this._decide(attempt));
    } else if (outcome.kind === 'adopt') {
      const superseded = this.attempts.get(outcome.superseded.id);
      const attempt = this._attempt(outcome.negotiation, outcome.negotiation.timeout, superseded?.relayOnly ?? null, superseded?.iceServers ?? null);
      if (superseded !== undefined) {
        attempt.waiter = superseded.waiter;
        superseded.waiter = null;
        this._end(superseded, 'closed', "glare: the peer's offer stands");
      }
      this._push(attempt, () => this._carryOut(attempt, attempt.negotiation.accept()));
    } else if (outcome.kind === 'reply') {
      this._reply(outcome);
    }
  }

  /** @private @param {Outcome} reply */
  _reply(reply) {
    if (reply.kind !== 'reply') return;
    this.client.send(reply.peerDid, reply.type, reply.payload).catch(() => {});
  }

  // -- attempts ----------------------------------------------------------------------------------

  /**
   * @private
   * @param {Negotiation} negotiation
   * @param {number} timeout
   * @param {boolean | null} relayOnly
   * @param {IceServer[] | null} iceServers
   * @returns {Attempt}
   */
  _attempt(negotiation, timeout, relayOnly, iceServers) {
    const channel = new PeerChannel(negotiation.peerDid, negotiation.label, negotiation.id,
      (ch, reason) => this._closeChannel(ch, reason), (ch) => this._consumedOne(ch));
    const attempt = new Attempt(negotiation, channel);
    attempt.relayOnly = relayOnly ?? this.relayOnly;
    attempt.iceServers = iceServers ?? this.iceServers ?? this.client.iceServers;
    this.attempts.set(negotiation.id, attempt);
    this._arm(attempt, timeout);
    return attempt;
  }

  /** @private @param {Attempt} attempt @param {number} timeout */
  _arm(attempt, timeout) {
    if (attempt.deadline !== null) clearTimeout(attempt.deadline);
    attempt.negotiation.timeout = timeout;
    attempt.deadline = setTimeout(() => {
      attempt.deadline = null;
      this._carryOut(attempt, attempt.negotiation.timedOut()).catch(() => {});
    }, timeout * 1000);
  }

  /**
   * Run `work` after the attempt's earlier work, unless the attempt ended meanwhile.
   * @private
   * @param {Attempt} attempt
   * @param {() => Promise<void>} work
   */
  _push(attempt, work) {
    attempt.chain = attempt.chain.then(async () => {
      if (attempt.ended) return;
      try {
        await work();
      } catch (error) {
        if (error instanceof PeerError || attempt.ended) return; // already carried out
        console.error(`aiconexus: peer channel ${attempt.negotiation.id} with ${attempt.negotiation.peerDid} failed`, error);
        const failure = new PeerError(`the channel failed: ${error instanceof Error ? error.message : String(error)}`, { peerDid: attempt.negotiation.peerDid });
        this._end(attempt, 'failed', failure.message, failure);
      }
    });
  }

  /**
   * The RTCPeerConnection of an attempt, with its negotiated data channel (id 0, ordered).
   * @private
   * @param {Attempt} attempt
   * @returns {RTCPeerConnection}
   */
  _connection(attempt) {
    const Peer = /** @type {typeof RTCPeerConnection} */ (this.RTCPeerConnection);
    const pc = new Peer({ iceServers: attempt.iceServers, iceTransportPolicy: attempt.relayOnly ? 'relay' : 'all' });
    const dc = pc.createDataChannel(attempt.negotiation.label, { negotiated: true, id: 0, ordered: true });
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = LOW_WATER;
    attempt.pc = pc;
    attempt.dc = dc;
    const current = () => attempt.pc === pc && !attempt.ended;
    dc.onopen = () => { if (current()) this._push(attempt, () => this._dtlsUp(attempt, pc)); };
    dc.onmessage = (event) => {
      if (!current()) return;
      const data = typeof event.data === 'string' ? event.data : new Uint8Array(event.data);
      if (attempt.proofSeen) {
        attempt.channel._delivered(data);
        return;
      }
      attempt.proofSeen = true;
      this._push(attempt, () => this._checkProof(attempt, data));
    };
    dc.onclose = () => { if (current() && !attempt.closing) this._push(attempt, () => this._carryOut(attempt, attempt.negotiation.linkClosed())); };
    dc.onbufferedamountlow = () => attempt.wake();
    pc.onicecandidate = (event) => {
      if (!current()) return;
      const candidate = event.candidate && event.candidate.candidate ? {
        candidate: event.candidate.candidate, sdpMid: event.candidate.sdpMid, sdpMLineIndex: event.candidate.sdpMLineIndex,
      } : null;
      if (candidate === null) {
        if (attempt.gatheringDone) return;
        attempt.gatheringDone = true;
      } else {
        attempt.candidatesSent += 1;
      }
      this._push(attempt, async () => {
        await this._carryOut(attempt, attempt.negotiation.localCandidate(candidate));
        if (candidate === null) await this._noCandidates(attempt);
      });
    };
    pc.onconnectionstatechange = () => {
      if (!current() || pc.connectionState !== 'failed') return;
      const iceUp = ['connected', 'completed'].includes(pc.iceConnectionState) || pc.sctp?.transport.iceTransport.state === 'connected';
      this._push(attempt, () => this._carryOut(attempt, iceUp ? attempt.negotiation.dtlsFailed() : attempt.negotiation.iceFailed()));
    };
    return pc;
  }

  /**
   * Our gathering is complete without a single candidate (relay-only without TURN): ICE cannot
   * succeed, and the browser would wait; fail once connecting, as the Python SDK does.
   * @private @param {Attempt} attempt
   */
  async _noCandidates(attempt) {
    // only once the remote description is applied: an ANSWER already routed but not yet applied
    // (its work comes later in the chain) must not find the connection replaced by the relay
    const negotiation = attempt.negotiation;
    if (attempt.gatheringDone && attempt.candidatesSent === 0 && negotiation.state === 'connecting' && negotiation.remoteApplied) {
      await this._carryOut(attempt, attempt.negotiation.iceFailed());
    }
  }

  /**
   * The local description without candidates (they are trickled), noting our certificate's fingerprint.
   * @private
   * @param {Attempt} attempt
   * @param {RTCPeerConnection} pc
   * @returns {{type: string, sdp: string}}
   */
  _local(attempt, pc) {
    const local = /** @type {RTCSessionDescription} */ (pc.localDescription);
    const ours = supportedFingerprints(local.sdp).find((print) => print.algorithm === 'sha-256');
    attempt.localFingerprint = ours?.value ?? '';
    return { type: local.type, sdp: withoutCandidates(local.sdp) };
  }

  /** @private @param {Attempt} attempt */
  async _offer(attempt) {
    const pc = this._connection(attempt);
    await pc.setLocalDescription(await pc.createOffer());
    await this._carryOut(attempt, attempt.negotiation.localOffer(this._local(attempt, pc)));
  }

  /**
   * A new OFFER: ask the application (unless glare made it ours), then accept or refuse.
   * @private @param {Attempt} attempt
   */
  async _decide(attempt) {
    const negotiation = attempt.negotiation;
    if (this.iceServers === null && attempt.pc === null) { // fresh TURN credentials for the answer too
      await this._freshIceServers();
      attempt.iceServers = this.client.iceServers;
    }
    let accepted = true;
    let why = '';
    if (!negotiation.adopted) {
      if (this.RTCPeerConnection === null) {
        accepted = false;
        why = 'this agent has no WebRTC (RTCPeerConnection) and accepts no peer channels';
      } else if (!this._listening || this._closed) {
        accepted = false;
        why = 'this agent does not accept peer channels';
      } else if (this._accept !== null) {
        try {
          accepted = Boolean(await this._accept(negotiation.peerDid, negotiation.label));
        } catch (error) {
          console.error('aiconexus: the peer accept policy failed; refusing', error);
          accepted = false;
        }
        why = 'the agent refused the channel';
      }
    }
    if (accepted) {
      await this._carryOut(attempt, negotiation.accept());
      return;
    }
    await this._carryOut(attempt, negotiation.refuse(undefined, why));
    this._end(attempt, 'failed', why);
  }

  /**
   * @private
   * @param {Attempt} attempt
   * @param {Decision[]} decisions
   */
  async _carryOut(attempt, decisions) {
    for (const decision of decisions) {
      switch (decision.kind) {
        case 'signal':
          await this._signal(attempt, decision.type, decision.payload);
          break;
        case 'applyRemote':
          await this._apply(attempt, decision.description);
          break;
        case 'addCandidate':
          if (attempt.pc !== null) {
            try {
              if (decision.candidate === null) await attempt.pc.addIceCandidate();
              else await attempt.pc.addIceCandidate(decision.candidate);
            } catch (error) { // one bad candidate does not end the negotiation
              console.info(`aiconexus: a remote candidate was not usable: ${error instanceof Error ? error.message : error}`);
            }
          }
          break;
        case 'sendProof':
          if (attempt.dc !== null && this.client.key !== null) {
            const negotiation = attempt.negotiation;
            attempt.dc.send(await buildProof(this.client.key, negotiation.id, negotiation.peerDid, attempt.localFingerprint, attempt.peerCertificate));
          }
          break;
        case 'opened':
          this._opened(attempt, /** @type {'direct' | 'turn' | 'relay'} */ (decision.transport));
          break;
        case 'failed':
          this._end(attempt, 'failed', decision.error.message, decision.error);
          break;
        case 'closed':
          this._end(attempt, 'closed', decision.reason);
          break;
        case 'startRelay':
          await this._startRelay(attempt);
          break;
        case 'relayFrame':
          this._relayFrame(attempt, decision.frame);
          break;
        default:
          break;
      }
    }
  }

  /**
   * The data channel opened, so DTLS is up: the certificate's digests and the kind of route.
   * @private
   * @param {Attempt} attempt
   * @param {RTCPeerConnection} pc
   */
  async _dtlsUp(attempt, pc) {
    /** @type {Record<string, string>} */
    let digests = {};
    const transport = /** @type {any} */ (pc.sctp?.transport);
    const certificates = typeof transport?.getRemoteCertificates === 'function' ? transport.getRemoteCertificates() : [];
    if (certificates.length > 0) { // the certificate DTLS presented, checked here too
      for (const [algorithm, name] of [['sha-256', 'SHA-256'], ['sha-384', 'SHA-384'], ['sha-512', 'SHA-512']]) {
        digests[algorithm] = hexPairs(await crypto.subtle.digest(name, certificates[0]));
      }
    } else { // the browser enforced the signed SDP's fingerprint (RFC 8842 section 5)
      digests = Object.fromEntries(attempt.negotiation.remoteFingerprints.map((print) => [print.algorithm, print.value]));
    }
    attempt.peerCertificate = digests['sha-256']
      ?? attempt.negotiation.remoteFingerprints.find((print) => print.algorithm === 'sha-256')?.value ?? '';
    await this._carryOut(attempt, attempt.negotiation.connected(digests, { relayed: await relayed(pc) }));
  }

  /**
   * @private
   * @param {Attempt} attempt
   * @param {ChannelData} message
   */
  async _checkProof(attempt, message) {
    const negotiation = attempt.negotiation;
    const problem = await checkProof(message, {
      negotiationId: negotiation.id, peerDid: negotiation.peerDid, ownDid: /** @type {string} */ (this.client.did),
      peerFingerprint: attempt.peerCertificate, ownFingerprint: attempt.localFingerprint,
    });
    await this._carryOut(attempt, negotiation.proved(problem));
  }

  /**
   * @private
   * @param {Attempt} attempt
   * @param {{type: string, sdp: string}} description
   */
  async _apply(attempt, description) {
    const negotiation = attempt.negotiation;
    if (attempt.relay !== null) return; // switched to the relay meanwhile: nothing to apply it to
    const pc = attempt.pc ?? this._connection(attempt);
    await pc.setRemoteDescription(/** @type {RTCSessionDescriptionInit} */ (description));
    if (negotiation.role === 'callee') {
      await pc.setLocalDescription(await pc.createAnswer());
      await this._carryOut(attempt, negotiation.localAnswer(this._local(attempt, pc)));
    }
    await this._carryOut(attempt, negotiation.applied());
    await this._noCandidates(attempt);
  }

  /**
   * @private
   * @param {Attempt} attempt
   * @param {string} type
   * @param {Record<string, unknown>} payload
   * @param {boolean} [encrypt]
   */
  async _signal(attempt, type, payload, encrypt = false) {
    let messageId;
    try {
      messageId = await this.client.send(attempt.negotiation.peerDid, type, payload, { encrypt });
    } catch (error) {
      const failure = new PeerClosed(`the signaling to ${attempt.negotiation.peerDid} could not be sent: ${error instanceof Error ? error.message : error}`,
        { peerDid: attempt.negotiation.peerDid });
      if (attempt.negotiation.live) {
        attempt.negotiation.state = 'failed';
        this._end(attempt, 'failed', failure.message, failure);
      }
      throw failure;
    }
    this.signaling.sent(messageId, attempt.negotiation.id);
  }

  /**
   * ICE failed and both sides allow the fallback: drop the RTCPeerConnection, relay through the
   * gateway. Data frames go encrypted end to end when libsodium.js can be loaded (as the Python
   * SDK's), else signed in clear, which the protocol allows (a warning says so).
   * @private @param {Attempt} attempt
   */
  async _startRelay(attempt) {
    const pc = attempt.pc;
    attempt.pc = null;
    attempt.dc = null;
    pc?.close();
    attempt.relay = new RelayStream();
    try {
      await loadSodium();
    } catch (error) {
      attempt.encryptRelay = false;
      console.warn(`aiconexus: the relayed channel with ${attempt.negotiation.peerDid} is signed but not encrypted: ${error instanceof Error ? error.message : error}`);
    }
  }

  /**
   * @private
   * @param {Attempt} attempt
   * @param {'direct' | 'turn' | 'relay'} transport
   */
  _opened(attempt, transport) {
    if (transport === 'relay') {
      attempt.channel._opened(transport, { send: (data) => this._relaySend(attempt, data) });
    } else {
      attempt.channel._opened(transport, { send: (data) => this._dataSend(attempt, data) });
    }
    if (attempt.deadline !== null) clearTimeout(attempt.deadline);
    attempt.deadline = null;
    const milliseconds = performance.now() - attempt.started;
    attempt.channel.openedIn = milliseconds / 1000;
    if (attempt.waiter !== null) {
      attempt.waiter.resolve(attempt.channel);
      attempt.waiter = null;
      return;
    }
    if (this._handlers.length > 0) {
      for (const handler of [...this._handlers]) {
        try {
          Promise.resolve(handler(attempt.channel)).catch((error) => console.error('aiconexus: onPeer handler failed', error));
        } catch (error) {
          console.error('aiconexus: onPeer handler failed', error);
        }
      }
    } else {
      this._offerIncoming(attempt.channel);
    }
  }

  /** @private @param {PeerChannel | typeof END} item */
  _offerIncoming(item) {
    const taker = this._takers.shift();
    if (taker !== undefined) taker(item);
    else this._incoming.push(item);
  }

  /**
   * @private
   * @param {Attempt} attempt
   * @param {ChannelData} data
   */
  async _dataSend(attempt, data) {
    const dc = attempt.dc;
    while (dc !== null && dc.readyState === 'open' && dc.bufferedAmount > HIGH_WATER) {
      await new Promise((resolve) => attempt.waiting.push(() => resolve(undefined)));
    }
    if (dc === null || dc.readyState !== 'open' || attempt.channel.state !== 'open') {
      throw new PeerClosed(`the data channel to ${attempt.channel.peerDid} is ${dc?.readyState ?? 'closed'}`, { peerDid: attempt.channel.peerDid });
    }
    if (typeof data === 'string') dc.send(data);
    else dc.send(/** @type {Uint8Array<ArrayBuffer>} */ (data));
  }

  /**
   * One relayed message: numbered, within the window, through the gateway (paced by the client).
   * @private
   * @param {Attempt} attempt
   * @param {ChannelData} data
   */
  async _relaySend(attempt, data) {
    const relay = /** @type {RelayStream} */ (attempt.relay);
    // one frame number, one send, in call order: chained like the client's sends
    const previous = attempt.relaySending ?? Promise.resolve();
    const sending = previous.then(async () => {
      while (relay.credit <= 0) {
        if (attempt.channel.state !== 'open') throw new PeerClosed(`the channel to ${attempt.channel.peerDid} is ${attempt.channel.state}`, { peerDid: attempt.channel.peerDid });
        await new Promise((resolve) => attempt.waiting.push(() => resolve(undefined)));
      }
      if (attempt.channel.state !== 'open') throw new PeerClosed(`the channel to ${attempt.channel.peerDid} is ${attempt.channel.state}`, { peerDid: attempt.channel.peerDid });
      const frame = relay.data(data);
      await this._signal(attempt, 'ICE_CANDIDATE', { negotiation_id: attempt.negotiation.id, relay: frame }, attempt.encryptRelay);
    });
    attempt.relaySending = sending.catch(() => {});
    await sending;
  }

  /**
   * @private
   * @param {Attempt} attempt
   * @param {Record<string, unknown>} frame
   */
  _relayFrame(attempt, frame) {
    if (attempt.relay === null) return;
    let message;
    try {
      message = attempt.relay.receive(frame);
    } catch (error) {
      const reason = `relay broken: ${error instanceof Error ? error.message : error}`;
      console.warn(`aiconexus: relay frame refused on the channel with ${attempt.negotiation.peerDid}: ${reason}`);
      this._closeChannel(attempt.channel, reason).catch(() => {});
      return;
    }
    if (message === null) attempt.wake();
    else attempt.channel._delivered(message);
  }

  /** @private @param {PeerChannel} channel */
  _consumedOne(channel) {
    const attempt = this.attempts.get(channel.negotiationId);
    if (attempt === undefined || attempt.relay === null || channel.state !== 'open') return;
    const ack = attempt.relay.consumed();
    if (ack !== null) {
      this._push(attempt, () => this._signal(attempt, 'ICE_CANDIDATE', { negotiation_id: channel.negotiationId, relay: ack }));
    }
  }

  /**
   * @private
   * @param {PeerChannel} channel
   * @param {string} reason
   */
  async _closeChannel(channel, reason) {
    const attempt = this.attempts.get(channel.negotiationId);
    if (attempt === undefined) {
      channel._ended('closed', reason);
      return;
    }
    if (attempt.negotiation.state === 'open' && attempt.dc !== null) await drainAndClose(attempt);
    try {
      await this._carryOut(attempt, attempt.negotiation.close(reason));
    } catch { /* the close notice could not be sent: the channel closes anyway */ }
    this._end(attempt, 'closed', reason);
  }

  /**
   * Release the attempt: its connection, its timer; tell the channel and the waiter.
   * @private
   * @param {Attempt} attempt
   * @param {'closed' | 'failed'} state
   * @param {string} reason
   * @param {PeerError} [error]
   */
  _end(attempt, state, reason, error) {
    if (attempt.ended) return;
    attempt.ended = true;
    if (this.attempts.get(attempt.negotiation.id) === attempt) this.attempts.delete(attempt.negotiation.id);
    this.signaling.forget(attempt.negotiation);
    if (attempt.deadline !== null) clearTimeout(attempt.deadline);
    attempt.deadline = null;
    attempt.channel._ended(state, reason);
    attempt.wake();
    if (attempt.waiter !== null) {
      attempt.waiter.reject(error ?? new PeerClosed(reason, { peerDid: attempt.channel.peerDid }));
      attempt.waiter = null;
    }
    const pc = attempt.pc;
    attempt.pc = null;
    attempt.dc = null;
    try {
      pc?.close();
    } catch { /* closing must not fail the caller's close */ }
  }
}

/**
 * Close the data channel gracefully before the close notice goes out through the gateway: what
 * was sent is delivered first (the data channel's close waits for its buffer, and SCTP resets the
 * stream only after the peer received everything before it, RFC 6525), whereas the notice takes
 * another path and could overtake it. Bounded: 2 s for the buffer, 2 s for the close.
 * @param {Attempt} attempt
 */
async function drainAndClose(attempt) {
  const dc = /** @type {RTCDataChannel} */ (attempt.dc);
  attempt.closing = true;
  const bound = (/** @type {number} */ ms, /** @type {(done: () => void) => void} */ start) => new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    start(() => {
      clearTimeout(timer);
      resolve(undefined);
    });
  });
  if (dc.readyState === 'open' && dc.bufferedAmount > 0) {
    await bound(2000, (done) => {
      dc.bufferedAmountLowThreshold = 0;
      dc.addEventListener('bufferedamountlow', done, { once: true });
    });
  }
  if (dc.readyState === 'closed') return;
  await bound(2000, (done) => {
    dc.addEventListener('close', done, { once: true });
    dc.close();
  });
}

/**
 * Whether the selected candidate pair goes through a TURN server (either side's candidate).
 * @param {RTCPeerConnection} pc
 * @returns {Promise<boolean>}
 */
async function relayed(pc) {
  try {
    const stats = /** @type {Map<string, any>} */ (/** @type {unknown} */ (await pc.getStats()));
    /** @type {any} */
    let pair = null;
    stats.forEach((/** @type {any} */ report) => {
      if (report.type === 'transport' && report.selectedCandidatePairId) pair = stats.get(report.selectedCandidatePairId);
    });
    if (pair === null) {
      stats.forEach((/** @type {any} */ report) => {
        if (report.type === 'candidate-pair' && report.nominated && report.state === 'succeeded') pair = report;
      });
    }
    if (pair === null) return false;
    return [stats.get(pair.localCandidateId), stats.get(pair.remoteCandidateId)].some((candidate) => candidate?.candidateType === 'relay');
  } catch {
    return false;
  }
}
