/**
 * The agent side of ioap.v1 as a state machine: frames and events in, decisions out. No I/O.
 *
 * `GatewayClient` (the pump) owns the WebSocket and the timers; this `ClientSession` owns every fact
 * about the protocol: where the handshake is, the gateway's DID, the session id, the frames waiting
 * for a connection, the pacing bucket, the PINGs in flight, the reconnection attempt. It mirrors the
 * Python SDK's `client/session.py` (same states, same decisions). Time, randomness and ids are
 * passed in, so tests drive it without sockets. Signing and verifying are WebCrypto's, hence async.
 *
 *     state          event                                decision               next state
 *     IDLE           connecting()                         -                      CONNECTING
 *     CONNECTING     CHALLENGE (valid, expected DID)      send (REGISTER)        REGISTERING
 *     CONNECTING     a valid ERROR from the gateway       refused (GatewayError)  (see lost)
 *     CONNECTING     anything else                        fail                    (see lost)
 *     REGISTERING    REGISTERED (correlation = REGISTER)  registered             REGISTERED
 *     REGISTERING    ERROR                                refused (GatewayError)
 *     REGISTERED     valid routed message / ERROR         deliver
 *     REGISTERED     a mailbox message again (mailbox.js) send (ACK again) / null
 *     REGISTERED     PONG to our keepalive PING           null (consumed)
 *     REGISTERED     PONG to ping()                       pingAnswered
 *     REGISTERED     invalid (parse, DID, signature)      report
 *     any open       close()                              -                      CLOSING
 *     CONNECTING..   connectionLost / attemptFailed       reconnect              RECONNECTING
 *                    (reconnection on, loss not final)
 *     CONNECTING..   the same, otherwise                  finish                 CLOSED
 *     RECONNECTING   connecting()                         -                      CONNECTING
 * @module
 */

import { backoffDelay, FINAL_CLOSE_CODES, FINAL_REGISTRATION_ERRORS, reconnectPolicy, TokenBucket } from './backoff.js';
import { buildMessage, Message, newId, parseEnvelope, verifyEnvelope } from './envelope.js';
import { E2E, E2EError, isEncrypted } from './e2e.js';
import { Acknowledgements, acknowledged } from './mailbox.js';
import { ConnectionClosed, GatewayConnectionError, GatewayError, InvalidMessageError, ProtocolError, SendQueueFull } from './errors.js';

/** Pace at 90 % of the gateway's announced rate, so jitter never trips it. */
export const PACING_MARGIN = 0.9;

/** @enum {string} */
export const State = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting',
  REGISTERING: 'registering',
  REGISTERED: 'registered',
  RECONNECTING: 'reconnecting',
  CLOSING: 'closing',
  CLOSED: 'closed',
});

/**
 * What the pump must do about one event.
 * @typedef {{kind: 'send', text: string}
 *   | {kind: 'registered', sessionId: string, reconnected: boolean, attempt: number}
 *   | {kind: 'deliver', message: Message}
 *   | {kind: 'report', error: InvalidMessageError}
 *   | {kind: 'pingAnswered', pingId: string}
 *   | {kind: 'fail', error: GatewayConnectionError}
 *   | {kind: 'refused', error: GatewayError}
 *   | null} Decision
 */
/** @typedef {{kind: 'reconnect', attempt: number, delay: number}} Reconnect */
/** @typedef {{kind: 'finish', code: number | null, reason: string | null, unsent: number}} Finish */

/**
 * What the application chose for this client (fixed for its lifetime).
 * @typedef {object} SessionSettings
 * @property {Record<string, unknown> | null} [metadata]
 * @property {Record<string, unknown> | null} [card] the agent card, signed in REGISTER (directory.js; protocol section 21)
 * @property {boolean} [unlisted] routable, but never discovered (protocol section 21.4)
 * @property {string | null} [expectedGatewayDid]
 * @property {import('./backoff.js').FullPolicy | null} [reconnect]
 * @property {number} [sendQueueSize]
 * @property {boolean} [pace]
 * @property {boolean} [keepalive]
 * @property {number | null} [pingInterval] seconds without a frame from the gateway before a PING
 *   probes it, and for its answer before the gateway counts as gone (null: never)
 */

/**
 * @typedef {object} SessionClocks
 * @property {() => number} [wallClock] milliseconds since the epoch, for timestamps
 * @property {() => number} [jitter] a number in [0, 1], for the backoff
 * @property {() => string} [newId] message ids
 */

/**
 * @typedef {{did: string, sign(data: Uint8Array): Promise<Uint8Array>}} Signer
 */

export class ClientSession {
  /**
   * @param {Signer} key
   * @param {SessionSettings} [settings]
   * @param {SessionClocks} [clocks]
   */
  constructor(key, settings = {}, clocks = {}) {
    this.key = key;
    this.settings = {
      metadata: settings.metadata ?? null,
      card: settings.card ?? null,
      unlisted: settings.unlisted ?? false,
      expectedGatewayDid: settings.expectedGatewayDid ?? null,
      reconnect: settings.reconnect ?? null,
      sendQueueSize: settings.sendQueueSize ?? 1000,
      pace: settings.pace ?? true,
      keepalive: settings.keepalive ?? true,
      pingInterval: settings.pingInterval === undefined ? 20 : settings.pingInterval,
    };
    /** @type {string} */
    this.state = State.IDLE;
    /** @type {string | null} */
    this.gatewayDid = null;
    /** @type {string | null} */
    this.sessionId = null;
    /** @type {number | null} */
    this.agentTimeout = null;
    /** @type {{messagesPerSecond: number, burst: number} | null} the limit REGISTERED announced */
    this.rateLimit = null;
    /** @type {Record<string, unknown> | null} REGISTERED's whole payload (what later gateway versions add, too) */
    this.registration = null;
    this.invalidMessages = 0;
    /** mailbox messages handed on (mailbox.js): repeats are dropped, ACKs sent once handled */
    this.acks = new Acknowledgements();
    this.reconnects = 0;
    this.attempt = 0;
    /** @type {number | null} */
    this.closeCode = null;
    /** @type {string | null} */
    this.closeReason = null;
    /** @type {string[]} signed frames waiting for a connection, in order */
    this.outbox = [];
    /** @private */
    this._wallClock = clocks.wallClock ?? Date.now;
    /** @private */
    this._jitter = clocks.jitter ?? Math.random;
    /** @private */
    this._newId = clocks.newId ?? newId;
    /** @private @type {string | null} */
    this._registerId = null;
    /** @private @type {TokenBucket | null} */
    this._pacer = null;
    /** @private */
    this._lastSend = 0;
    /** @private */
    this._lastReceive = 0;
    /** @private @type {number | null} when the liveness PING still unanswered was sent */
    this._probeSentAt = null;
    /** @private @type {Set<string>} */
    this._keepaliveIds = new Set();
    /** @private @type {Set<string>} */
    this._pingIds = new Set();
    /** @private @type {number | null} */
    this._retryAfter = null;
    /** @private @type {Promise<E2E> | null} end-to-end encryption, made on first use (e2e.js) */
    this._e2e = null;
  }

  get registered() {
    return this.state === State.REGISTERED;
  }

  /** The connection was lost and the client is coming back (waiting, or re-registering). */
  get reconnecting() {
    return this.attempt > 0
      && (this.state === State.RECONNECTING || this.state === State.CONNECTING || this.state === State.REGISTERING);
  }

  // -- the connection's life ---------------------------------------------------------------------

  /** The pump is opening a WebSocket (first connect() or a reconnection attempt). */
  connecting() {
    if (this.state === State.CLOSING || this.state === State.CLOSED) {
      throw new ConnectionClosed(this.closeCode, 'this client was closed; make a new GatewayClient to connect again');
    }
    if (this.state !== State.IDLE && this.state !== State.RECONNECTING) {
      throw new Error(`connect() while ${this.state}: this client is already connected or connecting`);
    }
    this.state = State.CONNECTING;
    this.sessionId = null;
    this.registration = null;
    this._registerId = null;
    this.closeCode = this.closeReason = null;
  }

  /**
   * The decision one received text frame calls for.
   * @param {string} text
   * @param {number} now seconds (monotonic)
   * @returns {Promise<Decision>}
   */
  async receive(text, now) {
    this._lastReceive = now; // any frame shows the gateway is there (liveness)
    if (this.state === State.CONNECTING) return this._challenge(text);
    if (this.state === State.REGISTERING) return this._registered(text, now);
    if (this.state === State.REGISTERED || this.state === State.CLOSING) return this._routed(text);
    return null;
  }

  /** @returns {Decision} a binary frame: the gateway never sends one */
  receiveBinary() {
    if (this.state === State.CONNECTING || this.state === State.REGISTERING) {
      return { kind: 'fail', error: new GatewayConnectionError('the gateway sent a binary frame') };
    }
    this.invalidMessages += 1;
    return { kind: 'report', error: new InvalidMessageError('binary frame', '') };
  }

  /**
   * The open connection ended (the gateway closed it, or it broke).
   * @param {number | null} code
   * @param {string | null} reason
   * @returns {Reconnect | Finish}
   */
  connectionLost(code, reason) {
    if (this.closeCode === null) {
      this.closeCode = code;
      this.closeReason = reason;
    }
    if (this.state === State.CLOSING || this.state === State.CLOSED || this.settings.reconnect === null
        || (this.closeCode !== null && FINAL_CLOSE_CODES.includes(this.closeCode))) {
      return this._finish();
    }
    this._keepaliveIds.clear();
    this._pingIds.clear();
    this._retryAfter = null;
    return this._nextAttempt();
  }

  /**
   * A reconnection attempt did not get to REGISTERED (refused, unreachable, broken).
   * @param {unknown} error
   * @returns {Reconnect | Finish}
   */
  attemptFailed(error) {
    if (this.state === State.CLOSING || this.state === State.CLOSED) return this._finish();
    if (error instanceof GatewayError && (FINAL_REGISTRATION_ERRORS.includes(error.code)
        || (error.closeCode !== null && FINAL_CLOSE_CODES.includes(error.closeCode)))) {
      this.closeCode = error.closeCode;
      this.closeReason = `registration refused: ${error.code}`;
      return this._finish();
    }
    this._retryAfter = error instanceof GatewayConnectionError ? error.retryAfter : null;
    return this._nextAttempt();
  }

  /** The first connect() failed; the caller sees the error and may call connect() again. */
  connectFailed() {
    if (this.state !== State.CLOSING && this.state !== State.CLOSED) this.state = State.IDLE;
  }

  /** @returns {number} the application closes: the number of queued frames dropped */
  close() {
    const unsent = this.outbox.length;
    this.outbox = [];
    if (this.state !== State.CLOSED) this.state = State.CLOSING;
    return unsent;
  }

  /**
   * Enter CLOSED (idempotent).
   * @param {number | null} [code]
   * @param {string | null} [reason]
   * @returns {Finish}
   */
  finish(code = null, reason = null) {
    if (this.closeCode === null && this.closeReason === null) {
      this.closeCode = code;
      this.closeReason = reason;
    }
    return this._finish();
  }

  /** @private @returns {Finish} */
  _finish() {
    const unsent = this.outbox.length;
    this.outbox = [];
    this.state = State.CLOSED;
    this.attempt = 0;
    this._pingIds.clear();
    this._keepaliveIds.clear();
    return { kind: 'finish', code: this.closeCode, reason: this.closeReason, unsent };
  }

  /** @private @returns {Reconnect | Finish} */
  _nextAttempt() {
    const policy = this.settings.reconnect;
    if (policy === null) return this._finish();
    if (policy.maxAttempts !== null && this.attempt >= policy.maxAttempts) {
      this.closeReason = `no connection after ${this.attempt} attempts`;
      return this._finish();
    }
    const delay = backoffDelay(policy, this.attempt, { retryAfter: this._retryAfter, jitter: this._jitter });
    this.attempt += 1;
    this.state = State.RECONNECTING;
    this.sessionId = null;
    return { kind: 'reconnect', attempt: this.attempt, delay };
  }

  // -- handshake ---------------------------------------------------------------------------------

  /**
   * @param {string} text
   * @returns {Promise<Decision>}
   * @private
   */
  async _challenge(text) {
    let envelope;
    try {
      envelope = parseEnvelope(text);
    } catch (error) {
      return fail(`the gateway's first frame is not a valid message: ${messageOf(error)}`);
    }
    const expected = this.settings.expectedGatewayDid;
    if (expected && envelope.sender !== expected) {
      return fail(`the gateway is ${envelope.sender}, not the expected ${expected}`);
    }
    try {
      await verifyEnvelope(envelope);
    } catch (error) {
      return fail(`the ${envelope.type} does not verify (${codeOf(error)}: ${messageOf(error)})`);
    }
    if (envelope.type === 'ERROR') { // e.g. a browser page whose Origin the gateway does not allow
      this.gatewayDid = envelope.sender;
      return refused(envelope.payload);
    }
    if (envelope.type !== 'CHALLENGE') return fail(`expected CHALLENGE, got ${envelope.type}`);
    const nonce = envelope.payload.nonce;
    if (typeof nonce !== 'string') return fail('the CHALLENGE has no nonce');
    this.gatewayDid = envelope.sender;
    /** @type {Record<string, unknown>} */
    const payload = { nonce };
    if (this.settings.metadata && Object.keys(this.settings.metadata).length > 0) {
      payload.metadata = this.settings.metadata;
    }
    if (this.settings.card !== null) payload.card = this.settings.card;
    if (this.settings.unlisted) payload.unlisted = true;
    const { text: register, id } = await buildMessage(this.key, 'REGISTER', envelope.sender, payload,
      { id: this._newId(), now: this._wallClock() });
    this._registerId = id;
    this.state = State.REGISTERING;
    return { kind: 'send', text: register };
  }

  /**
   * @param {string} text
   * @param {number} now
   * @returns {Promise<Decision>}
   * @private
   */
  async _registered(text, now) {
    let reply;
    try {
      reply = await this._verified(text);
    } catch (error) {
      return fail(`invalid answer to REGISTER: ${messageOf(error)}`);
    }
    if (reply.type === 'ERROR' && reply.sender === this.gatewayDid) return refused(reply.payload);
    if (reply.type !== 'REGISTERED' || reply.correlationId !== this._registerId) {
      return fail(`expected REGISTERED, got ${reply.type}`);
    }
    const payload = reply.payload;
    this.registration = payload;
    this.sessionId = String(payload.session_id);
    this.agentTimeout = positive(payload.agent_timeout);
    this.rateLimit = announcedLimit(payload.rate_limit);
    this._pacer = this.settings.pace && this.rateLimit
      ? new TokenBucket(this.rateLimit.messagesPerSecond * PACING_MARGIN,
        Math.max(1, this.rateLimit.burst * PACING_MARGIN), now)
      : null;
    this._lastSend = now;
    this._lastReceive = now;
    this._probeSentAt = null;
    this.state = State.REGISTERED;
    const attempt = this.attempt;
    this.attempt = 0;
    if (attempt > 0) this.reconnects += 1;
    return { kind: 'registered', sessionId: this.sessionId, reconnected: attempt > 0, attempt };
  }

  // -- registered --------------------------------------------------------------------------------

  /**
   * @param {string} text
   * @returns {Promise<Decision>}
   * @private
   */
  async _routed(text) {
    let message;
    try {
      message = await this._verified(text);
    } catch (error) {
      this.invalidMessages += 1;
      return { kind: 'report', error: /** @type {InvalidMessageError} */ (error) };
    }
    if (message.sender !== this.gatewayDid && isEncrypted(message.payload)) {
      try {
        const e2e = await this._encryption();
        message.payload = e2e.open(message.sender, message.recipient, message.type, message.id, message.payload);
        message.encrypted = true;
      } catch (error) {
        this.invalidMessages += 1;
        const reason = error instanceof E2EError ? error.message : `E2E_UNAVAILABLE: ${messageOf(error)}`;
        return { kind: 'report', error: new InvalidMessageError(reason, text) };
      }
    }
    if (acknowledged(message.sender, message.type, 'ttl' in message.fields, this.gatewayDid)) {
      const seen = this.acks.arrived(message.sender, message.id);
      if (seen !== 'new') return seen === 'done' ? { kind: 'send', text: await this._ack(message) } : null;
    }
    if (message.type === 'PONG' && message.sender === this.gatewayDid && Array.isArray(message.payload.ice_servers)) {
      this.registration = { ...this.registration, ice_servers: message.payload.ice_servers }; // fresh TURN credentials
    }
    if (message.type === 'PONG' && message.sender === this.gatewayDid && message.correlationId !== null) {
      if (this._keepaliveIds.delete(message.correlationId)) return null;
      if (this._pingIds.delete(message.correlationId)) return { kind: 'pingAnswered', pingId: message.correlationId };
    }
    return { kind: 'deliver', message };
  }

  /**
   * The message in `text`, verified against its sender's DID (the gateway's messages against the
   * gateway DID of this session); InvalidMessageError saying why not.
   * @param {string} text
   * @returns {Promise<Message>}
   * @private
   */
  async _verified(text) {
    try {
      const envelope = parseEnvelope(text);
      await verifyEnvelope(envelope);
      return new Message(envelope, text);
    } catch (error) {
      if (error instanceof ProtocolError) throw new InvalidMessageError(`${error.code}: ${error.message}`, text);
      throw new InvalidMessageError(`${codeOf(error)}: ${messageOf(error)}`, text);
    }
  }

  // -- sending -----------------------------------------------------------------------------------

  /**
   * Sign a message: its id, and the frame to write now, or null when it waits in the queue.
   * SendQueueFull when the queue is full, ConnectionClosed when no connection is coming.
   * @param {string | null} to
   * @param {string} type
   * @param {Record<string, unknown>} payload
   * @param {string | null} correlationId
   * @param {number} now seconds
   * @param {Record<string, unknown>} [extra] more top-level members
   * @param {boolean} [encrypt] encrypt the payload for `to` (e2e.js; docs/protocol.md section 20)
   * @returns {Promise<{id: string, text: string | null}>}
   */
  async send(to, type, payload, correlationId, now, extra, encrypt = false) {
    const direct = this.state === State.REGISTERED && this.outbox.length === 0;
    if (!direct && !(this.reconnecting || this.state === State.REGISTERED)) {
      throw new ConnectionClosed(this.closeCode, this.closeReason ?? 'not connected');
    }
    if (!direct && this.outbox.length >= this.settings.sendQueueSize) {
      throw new SendQueueFull(`disconnected, and ${this.outbox.length} messages already wait to be sent (sendQueueSize)`);
    }
    const messageId = this._newId();
    if (encrypt) {
      if (to === null || to === this.gatewayDid) {
        throw new TypeError('only messages to another agent can be encrypted; the gateway reads the messages addressed to it');
      }
      payload = (await this._encryption()).seal(to, type, messageId, payload);
    }
    const { text, id } = await buildMessage(this.key, type, to, payload,
      { correlationId, id: messageId, now: this._wallClock(), extra });
    if (this.state === State.REGISTERED && this.outbox.length === 0 && direct) {
      this._lastSend = now;
      return { id, text };
    }
    if (!(this.reconnecting || this.state === State.REGISTERED)) { // ended while signing
      throw new ConnectionClosed(this.closeCode, this.closeReason ?? 'not connected');
    }
    this.outbox.push(text);
    return { id, text: null };
  }

  /**
   * @returns {Promise<E2E>} this agent's end of end-to-end encryption (libsodium loaded on first use)
   * @private
   */
  _encryption() {
    const made = this._e2e ?? E2E.forKey(this.key);
    if (this._e2e === null) {
      this._e2e = made;
      made.catch(() => { this._e2e = null; }); // a failed load is tried again next time
    }
    return made;
  }

  /**
   * A PING for the gateway whose PONG becomes pingAnswered; `{ice_servers: true}` asks for fresh
   * ICE servers (docs/protocol.md section 19), which the PONG's `ice_servers` puts in `registration`.
   * @param {number} now seconds
   * @param {Record<string, unknown>} [payload]
   * @returns {Promise<{id: string, text: string}>}
   */
  async ping(now, payload = {}) {
    if (this.state !== State.REGISTERED || this.gatewayDid === null) {
      throw new ConnectionClosed(this.closeCode, this.closeReason ?? 'not connected');
    }
    const { text, id } = await buildMessage(this.key, 'PING', this.gatewayDid, payload,
      { id: this._newId(), now: this._wallClock() });
    this._pingIds.add(id);
    this._lastSend = now;
    return { id, text };
  }

  /**
   * The application is done with `message`: the ACK frame to write now, if it needs one.
   * @param {Message} message
   * @returns {Promise<string | null>}
   */
  async handled(message) {
    if (!acknowledged(message.sender, message.type, 'ttl' in message.fields, this.gatewayDid)) return null;
    if (!this.acks.finished(message.sender, message.id)) return null;
    return this._ack(message);
  }

  /**
   * @param {Message} message
   * @returns {Promise<string>}
   * @private
   */
  async _ack(message) {
    const { text } = await buildMessage(this.key, 'ACK', this.gatewayDid, { from: message.sender, id: message.id },
      { id: this._newId(), now: this._wallClock() });
    return text;
  }

  /**
   * A MAILBOX request for the gateway (the agent's mailbox rules): its id and frame.
   * @param {Record<string, unknown>} payload
   * @returns {Promise<{id: string, text: string}>}
   */
  async mailboxRequest(payload) {
    if (this.state !== State.REGISTERED || this.gatewayDid === null) {
      throw new ConnectionClosed(this.closeCode, this.closeReason ?? 'not connected');
    }
    return buildMessage(this.key, 'MAILBOX', this.gatewayDid, payload, { id: this._newId(), now: this._wallClock() });
  }

  /**
   * A request for the gateway (DISCOVER, WATCH, UNWATCH: directory.js): its id and frame.
   * @param {string} type
   * @param {Record<string, unknown>} payload
   * @returns {Promise<{id: string, text: string}>}
   */
  async gatewayRequest(type, payload) {
    if (this.state !== State.REGISTERED || this.gatewayDid === null) {
      throw new ConnectionClosed(this.closeCode, this.closeReason ?? 'not connected');
    }
    return buildMessage(this.key, type, this.gatewayDid, payload, { id: this._newId(), now: this._wallClock() });
  }

  /** @param {string} pingId ping() gave up waiting for this PONG */
  forgetPing(pingId) {
    this._pingIds.delete(pingId);
  }

  /** @returns {string | null} the oldest queued frame, when registered */
  nextQueued() {
    return this.state === State.REGISTERED && this.outbox.length > 0 ? this.outbox[0] : null;
  }

  /** @param {number} now the frame nextQueued() returned was written */
  sentQueued(now) {
    this.outbox.shift();
    this._lastSend = now;
  }

  /**
   * Seconds to wait before the next frame keeps under the announced rate limit; 0: go (and the
   * token is taken, so call it once per frame, right before writing).
   * @param {number} now
   * @returns {number}
   */
  pace(now) {
    return this._pacer !== null ? this._pacer.take(now) : 0;
  }

  /** @returns {number | null} how often to PING when idle (a third of agent_timeout), or null */
  get keepalivePeriod() {
    if (!this.settings.keepalive || !this.agentTimeout) return null;
    return this.agentTimeout / 3;
  }

  /**
   * Seconds until `keepalive` will have a PING to send; null: no keepalive (now).
   * @param {number} now
   * @returns {number | null}
   */
  keepaliveIn(now) {
    const period = this.keepalivePeriod;
    if (period === null || this.state !== State.REGISTERED) return null;
    return Math.max(0, this._lastSend + period - now);
  }

  /**
   * A PING for the gateway when nothing was sent for keepalivePeriod (AGENT_TIMEOUT).
   * @param {number} now
   * @returns {Promise<{kind: 'send', text: string} | null>}
   */
  async keepalive(now) {
    const period = this.keepalivePeriod;
    if (period === null || this.state !== State.REGISTERED || this.gatewayDid === null
        || now - this._lastSend < period) {
      return null;
    }
    this._lastSend = now;
    const { text, id } = await buildMessage(this.key, 'PING', this.gatewayDid, {},
      { id: this._newId(), now: this._wallClock() });
    this._keepaliveIds.add(id);
    return { kind: 'send', text };
  }

  /**
   * Seconds until `liveness` has something to do; null: no liveness checks (now).
   * @param {number} now
   * @returns {number | null}
   */
  livenessIn(now) {
    const interval = this.settings.pingInterval;
    if (!interval || this.state !== State.REGISTERED) return null;
    const since = this._probeSentAt !== null && this._lastReceive < this._probeSentAt ? this._probeSentAt : this._lastReceive;
    return Math.max(0, since + interval - now);
  }

  /**
   * Is the gateway still there? Browsers cannot send WebSocket pings, so when nothing arrived for
   * pingInterval seconds this PINGs the gateway (the PONG is consumed), and when that PING has no
   * answer after pingInterval more, the connection counts as gone (`dead`: drop it).
   * @param {number} now
   * @returns {Promise<{kind: 'send', text: string} | {kind: 'dead', reason: string} | null>}
   */
  async liveness(now) {
    const interval = this.settings.pingInterval;
    if (!interval || this.state !== State.REGISTERED || this.gatewayDid === null) return null;
    if (this._probeSentAt !== null) {
      if (this._lastReceive >= this._probeSentAt) {
        this._probeSentAt = null; // answered (or something else came): alive
      } else if (now - this._probeSentAt >= interval) {
        this._probeSentAt = null;
        return { kind: 'dead', reason: `the gateway did not answer a PING within ${interval} s` };
      } else {
        return null;
      }
    }
    if (now - this._lastReceive < interval) return null;
    this._probeSentAt = now;
    this._lastSend = now;
    const { text, id } = await buildMessage(this.key, 'PING', this.gatewayDid, {},
      { id: this._newId(), now: this._wallClock() });
    this._keepaliveIds.add(id);
    return { kind: 'send', text };
  }
}

/**
 * @param {string} message
 * @returns {Decision}
 */
function fail(message) {
  return { kind: 'fail', error: new GatewayConnectionError(message) };
}

/**
 * @param {Record<string, unknown>} payload an ERROR's payload
 * @returns {Decision}
 */
function refused(payload) {
  const details = payload.details;
  const closeCode = typeof details === 'object' && details !== null && typeof (/** @type {any} */ (details).close_code) === 'number'
    ? /** @type {number} */ (/** @type {any} */ (details).close_code) : null;
  return {
    kind: 'refused',
    error: new GatewayError(String(payload.code), String(payload.message),
      typeof details === 'object' && details !== null && !Array.isArray(details) ? /** @type {Record<string, unknown>} */ (details) : null,
      closeCode),
  };
}

/**
 * @param {unknown} value
 * @returns {number | null} a JSON number above zero, else null
 */
function positive(value) {
  return typeof value === 'number' && value > 0 ? value : null;
}

/**
 * @param {unknown} announced REGISTERED's rate_limit
 * @returns {{messagesPerSecond: number, burst: number} | null}
 */
function announcedLimit(announced) {
  if (typeof announced !== 'object' || announced === null) return null;
  const record = /** @type {Record<string, unknown>} */ (announced);
  const rate = positive(record.messages_per_second);
  const burst = positive(record.burst);
  return rate !== null && burst !== null ? { messagesPerSecond: rate, burst } : null;
}

/**
 * @param {unknown} error
 * @returns {string}
 */
function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}

/**
 * @param {unknown} error
 * @returns {string}
 */
function codeOf(error) {
  return error instanceof ProtocolError ? error.code : error instanceof Error ? error.name : 'ERROR';
}

export { reconnectPolicy };
