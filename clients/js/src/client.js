/**
 * GatewayClient: an agent connected to an AIConexus Gateway, in a browser or in Node >= 20.
 *
 * The pump around `ClientSession`: it opens WebSockets, reads frames one at a time, writes what the
 * session decides, sleeps for pacing, keepalive and backoff, and calls the application's handlers.
 * The API has the Python SDK's shape (docs/sdk.md): connect, send, receive, async iteration,
 * onMessage, onInvalid, onConnectionChange, ping, close, waitClosed.
 * @module
 */

import { reconnectPolicy } from './backoff.js';
import { publicKeyFromDid } from './did.js';
import { checkTtl } from './mailbox.js';
import { checkCard, DIRECTORY_ANSWERS, discoveryPage, presenceEvent, requestPayload, WatchSet, watchStates } from './directory.js';
import { ROUTABLE_TYPES } from './envelope.js';
import { ConnectionClosed, GatewayConnectionError, GatewayError, TimeoutError } from './errors.js';
import { Inbox } from './inbox.js';
import { AgentKey } from './keys.js';
import { ClientSession, State } from './session.js';
import { Connection } from './websocket.js';
import { PeerManager } from './peer.js';

/** @typedef {import('./envelope.js').Message} Message */
/** @typedef {import('./directory.js').PresenceEvent} PresenceEvent */
/** @typedef {import('./errors.js').InvalidMessageError} InvalidMessageError */
/** @typedef {import('./backoff.js').ReconnectPolicy} ReconnectPolicy */
/** @typedef {import('./websocket.js').WebSocketConstructor} WebSocketConstructor */

/**
 * What onConnectionChange handlers are told: "disconnected" (code/reason of the loss),
 * "reconnecting" (attempt, delay in seconds before it), "reconnected" (the attempt that
 * succeeded), "closed" (final; reason says why).
 * @typedef {{state: 'disconnected' | 'reconnecting' | 'reconnected' | 'closed', code: number | null,
 *   reason: string | null, attempt: number, delay: number}} ConnectionEvent
 */

/**
 * @typedef {object} ClientOptions
 * @property {Record<string, unknown>} [metadata] sent in REGISTER, shown by GET /agents (at most 4096 canonical bytes)
 * @property {Record<string, unknown>} [card] this agent's card, signed in REGISTER, which other agents find with discover():
 *   {name, description, version, capabilities, ...} (docs/protocol.md section 21.1); checked at once (TypeError)
 * @property {boolean} [unlisted] routable as usual, but never returned by discover() (default false)
 * @property {string} [expectedGatewayDid] pin the gateway's DID (GET /health shows it)
 * @property {number} [connectTimeout] seconds for the WebSocket handshake and for registration, each (default 10)
 * @property {boolean} [keepalive] PING the gateway when nothing was sent for a third of agent_timeout (default true)
 * @property {number | null} [pingInterval] seconds without a frame from the gateway before a PING probes it, and
 *   for its answer before the connection counts as lost (default 20; null: never)
 * @property {boolean | ReconnectPolicy} [reconnect] come back by itself after a lost connection (default false)
 * @property {number} [sendQueueSize] messages send() may queue while reconnecting (default 1000)
 * @property {boolean} [pace] keep under 90 % of the rate limit REGISTERED announces (default true)
 * @property {number} [closeTimeout] seconds close() waits for the gateway's close frame (default 2)
 * @property {WebSocketConstructor} [WebSocket] the WebSocket class (default: the global one, else the ws package)
 * @property {typeof RTCPeerConnection | null} [RTCPeerConnection] WebRTC for peer channels (default: the global one, which
 *   browsers have and Node has not)
 * @property {import('./session.js').SessionClocks} [clocks] time, jitter and ids (tests)
 */

const CLOSED = Symbol('closed');

/**
 * @param {number} seconds
 * @returns {Promise<void>}
 */
function sleep(seconds) {
  return new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}

/**
 * Wait for `promise`, at most `seconds`; the timer is cleared either way (no timer is left to keep
 * Node running after close()).
 * @param {Promise<unknown>} promise
 * @param {number} seconds
 * @returns {Promise<void>}
 */
async function waitAtMost(promise, seconds) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  try {
    await Promise.race([promise, new Promise((resolve) => { timer = setTimeout(resolve, seconds * 1000); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** @returns {number} monotonic seconds */
function monotonic() {
  return performance.now() / 1000;
}

/**
 * The WebSocket URL for `text`: ws:// and wss:// as given, http(s):// as ws(s)://, `/ws` added when
 * there is no path; TypeError saying what is expected otherwise.
 * @param {string} text
 * @returns {string}
 */
export function gatewayUrlFor(text) {
  if (typeof text !== 'string' || text.length === 0) throw new TypeError('the gateway URL must be a string like ws://127.0.0.1:8000/ws');
  let url;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `ws://${text}`);
  } catch {
    throw new TypeError(`not a URL: ${JSON.stringify(text)}; expected ws://HOST:PORT/ws`);
  }
  const schemes = { 'ws:': 'ws:', 'wss:': 'wss:', 'http:': 'ws:', 'https:': 'wss:' };
  const scheme = /** @type {Record<string, string>} */ (schemes)[url.protocol];
  if (!scheme) throw new TypeError(`unsupported scheme ${url.protocol} in ${JSON.stringify(text)}; expected ws:// or wss://`);
  if (!url.hostname) throw new TypeError(`no host in ${JSON.stringify(text)}; expected ws://HOST:PORT/ws`);
  if (url.hash) throw new TypeError(`a WebSocket URL has no #fragment: ${JSON.stringify(text)}`);
  if (['/health', '/agents', '/metrics'].includes(url.pathname)) {
    throw new TypeError(`${url.pathname} is an HTTP endpoint; the gateway's WebSocket is at /ws`);
  }
  const path = url.pathname === '/' || url.pathname === '' ? '/ws' : url.pathname;
  return `${scheme}//${url.host}${path}${url.search}`;
}

export class GatewayClient {
  /**
   * @param {string} [gatewayUrl] ws://HOST:PORT/ws (wss:// with TLS)
   * @param {AgentKey} [key] this agent's key; a new one is made by connect() when omitted
   * @param {ClientOptions} [options]
   */
  constructor(gatewayUrl = 'ws://127.0.0.1:8000/ws', key = undefined, options = {}) {
    this.gatewayUrl = gatewayUrlFor(gatewayUrl);
    if (key !== undefined && !(key instanceof AgentKey)) {
      throw new TypeError('key must be an AgentKey (AgentKey.generate(), fromSeed(), fromJwk()); a DID only names a key and cannot sign');
    }
    if (options.expectedGatewayDid) publicKeyFromDid(options.expectedGatewayDid);
    const card = options.card === undefined || options.card === null ? null : checkCard(options.card);
    if (options.unlisted !== undefined && typeof options.unlisted !== 'boolean') throw new TypeError('unlisted must be true or false');
    /** @private @type {AgentKey | null} */
    this._key = key ?? null;
    this.connectTimeout = options.connectTimeout ?? 10;
    this.closeTimeout = options.closeTimeout ?? 2;
    /** @private */
    this._options = options;
    const reconnect = options.reconnect === true ? reconnectPolicy()
      : options.reconnect ? reconnectPolicy(options.reconnect) : null;
    /** @private */
    this._settings = {
      metadata: options.metadata ?? null,
      card,
      unlisted: options.unlisted ?? false,
      expectedGatewayDid: options.expectedGatewayDid ?? null,
      reconnect,
      sendQueueSize: options.sendQueueSize ?? 1000,
      pace: options.pace ?? true,
      keepalive: options.keepalive ?? true,
      pingInterval: options.pingInterval === undefined ? 20 : options.pingInterval,
    };
    /** @private @type {ClientSession | null} */
    this._session = key ? new ClientSession(key, this._settings, options.clocks) : null;
    /** @private @type {Connection | null} */
    this._connection = null;
    /** @private @type {Inbox<Message | typeof CLOSED>} */
    this._inbox = new Inbox();
    /** @private @type {Array<{handler: (message: Message) => unknown, types: Set<string> | null}>} */
    this._handlers = [];
    /** @private @type {Array<(error: InvalidMessageError) => unknown>} */
    this._invalidHandlers = [];
    /** @private @type {Array<(event: ConnectionEvent) => unknown>} */
    this._connectionHandlers = [];
    /** @private @type {Map<string, {resolve: () => void, reject: (error: Error) => void}>} */
    this._pings = new Map();
    /** @private @type {Map<string, string>} the mailbox's receipts: status by message id */
    this._receipts = new Map();
    /** @private @type {Map<string, Array<(status: string) => void>>} */
    this._receiptWaiters = new Map();
    /** @private @type {Map<string, {resolve: (view: Record<string, unknown>) => void, reject: (error: Error) => void}>} */
    this._mailboxRequests = new Map();
    /** @private @type {Map<string, {resolve: (answer: Message) => void, reject: (error: Error) => void}>} DISCOVER, WATCH, UNWATCH */
    this._directoryRequests = new Map();
    /** @private the DIDs watched, watched again after a reconnection */
    this._watching = new WatchSet();
    /** @private @type {Array<(event: PresenceEvent) => unknown>} */
    this._presenceHandlers = [];
    /** @private @type {Array<PresenceEvent | typeof CLOSED>} events for presence(), newest kept */
    this._presenceQueue = [];
    /** @private @type {Array<(item: PresenceEvent | typeof CLOSED) => void>} */
    this._presenceReceivers = [];
    /** @private @type {ReturnType<typeof setTimeout> | null} */
    this._keepaliveTimer = null;
    /** @private @type {ReturnType<typeof setTimeout> | null} */
    this._livenessTimer = null;
    /** @private @type {{cancel: () => void} | null} */
    this._reconnecting = null;
    /** @private @type {Promise<void> | null} */
    this._reading = null;
    /** @private */
    this._flushing = false;
    /** @private @type {Promise<unknown>} the sends so far, chained: frames leave in call order */
    this._sending = Promise.resolve();
    /** @private @type {import('./session.js').Finish | null} */
    this._finished = null;
    /** @private @type {PeerManager | null} peer channels, made on first use (peer.js) */
    this._peers = null;
    /** @type {() => void} */
    let done = () => {};
    /** @private @type {Promise<void>} */
    this._done = new Promise((resolve) => {
      done = resolve;
    });
    /** @private */
    this._markDone = done;
  }

  // -- what the client knows ---------------------------------------------------------------------

  /** @returns {string | null} this agent's DID (null before connect() when no key was given) */
  get did() {
    return this._key?.did ?? null;
  }

  /** @returns {AgentKey | null} */
  get key() {
    return this._key;
  }

  /** @returns {string} idle, connecting, registering, registered, reconnecting, closing, closed */
  get state() {
    return this._session?.state ?? State.IDLE;
  }

  /** registered on an open connection */
  get connected() {
    return this.state === State.REGISTERED;
  }

  /** the connection was lost and the client is coming back by itself */
  get reconnecting() {
    return this._session?.reconnecting ?? false;
  }

  /** messages waiting in the send queue */
  get queued() {
    return this._session?.outbox.length ?? 0;
  }

  /** @returns {string | null} the DID that signed the CHALLENGE (and every gateway message) */
  get gatewayDid() {
    return this._session?.gatewayDid ?? null;
  }

  /** @returns {string | null} */
  get sessionId() {
    return this._session?.sessionId ?? null;
  }

  /** @returns {number | null} seconds, from REGISTERED */
  get agentTimeout() {
    return this._session?.agentTimeout ?? null;
  }

  /**
   * REGISTERED's whole payload: `did`, `session_id`, `agent_timeout`, `ping_interval`, `rate_limit`,
   * and what later gateways announce there (the ICE servers of peer channels, for one).
   * @returns {Record<string, unknown> | null}
   */
  get registration() {
    return this._session?.registration ?? null;
  }

  /**
   * The ICE servers REGISTERED announced (`ice_servers`, RTCIceServer-shaped: `urls`, `username`,
   * `credential`), for peer channels; [] when the gateway announced none.
   * @returns {import('./peer.js').IceServer[]}
   */
  get iceServers() {
    const announced = this.registration?.ice_servers;
    if (!Array.isArray(announced)) return [];
    return announced.filter((server) => typeof server === 'object' && server !== null
      && (typeof server.urls === 'string' || (Array.isArray(server.urls) && server.urls.every((/** @type {unknown} */ url) => typeof url === 'string'))))
      .map((server) => ({ ...server }));
  }

  /** @returns {{messagesPerSecond: number, burst: number} | null} the limit REGISTERED announced */
  get rateLimit() {
    return this._session?.rateLimit ?? null;
  }

  /** successful reconnections so far */
  get reconnects() {
    return this._session?.reconnects ?? 0;
  }

  /** mailbox messages received again (after a reconnection) and not handed on twice */
  get duplicates() {
    return this._session?.acks.duplicates ?? 0;
  }

  /** received frames that failed verification (and were dropped) */
  get invalidMessages() {
    return this._session?.invalidMessages ?? 0;
  }

  /** @returns {number | null} how the connection ended (docs/protocol.md section 11) */
  get closeCode() {
    return this._session?.closeCode ?? null;
  }

  /** @returns {string | null} */
  get closeReason() {
    return this._session?.closeReason ?? null;
  }

  // -- life cycle --------------------------------------------------------------------------------

  /**
   * Open the WebSocket and register (one attempt). GatewayConnectionError when the gateway cannot
   * be reached or breaks the handshake; GatewayError when it refuses the REGISTER (or the page's
   * origin: code 4403 in `closeCode`).
   * @returns {Promise<void>}
   */
  async connect() {
    if (this._session === null) {
      this._key = await AgentKey.generate();
      this._session = new ClientSession(this._key, this._settings, this._options.clocks);
    }
    try {
      await this._open();
    } catch (error) {
      this._session.connectFailed();
      throw error;
    }
  }

  /** @private @returns {ClientSession} */
  _sessionOrFail() {
    if (this._session === null) throw new ConnectionClosed(null, 'not connected: call connect() first');
    return this._session;
  }

  /**
   * One attempt: open a WebSocket, register on it, start reading and the keepalive.
   * @returns {Promise<import('./session.js').Decision>}
   * @private
   */
  async _open() {
    const session = this._sessionOrFail();
    session.connecting();
    const connection = await Connection.open(this.gatewayUrl, {
      WebSocket: this._options.WebSocket, timeout: this.connectTimeout,
    });
    if (session.state !== State.CONNECTING) { // close() was called while the WebSocket opened
      connection.abort();
      throw new ConnectionClosed(session.closeCode, session.closeReason ?? 'closed while connecting');
    }
    this._connection = connection;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const timeout = new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new GatewayConnectionError(
        `no registration at ${this.gatewayUrl} within ${this.connectTimeout} s (connectTimeout)`)), this.connectTimeout * 1000);
    });
    let registered;
    try {
      registered = await Promise.race([this._handshake(connection), timeout]);
    } catch (error) {
      connection.abort();
      if (this._connection === connection) this._connection = null;
      throw error;
    } finally {
      clearTimeout(timer);
    }
    this._reading = this._readLoop(connection);
    this._scheduleKeepalive(connection);
    this._scheduleLiveness(connection);
    return registered;
  }

  /**
   * Feed frames to the session until it registers, fails, or is refused.
   * @param {Connection} connection
   * @private
   */
  async _handshake(connection) {
    const session = this._sessionOrFail();
    for (;;) {
      const frame = await connection.read();
      if (frame === null) {
        throw new GatewayConnectionError(`the gateway closed the connection during the handshake (code ${connection.closeCode}`
          + `${connection.closeReason ? `, ${connection.closeReason}` : ''})`);
      }
      const decision = typeof frame === 'string' ? await session.receive(frame, monotonic()) : session.receiveBinary();
      if (decision === null) continue;
      if (decision.kind === 'registered') return decision;
      if (decision.kind === 'send') {
        if (!connection.write(decision.text)) throw new ConnectionClosed(connection.closeCode, connection.closeReason);
      } else if (decision.kind === 'fail') {
        throw decision.error;
      } else if (decision.kind === 'refused') {
        await readUntilClosed(connection, this.closeTimeout);
        decision.error.closeCode = connection.closeCode ?? decision.error.closeCode;
        decision.error.closeReason = connection.closeReason;
        throw decision.error;
      }
    }
  }

  /**
   * Close the connection (UNREGISTER is not needed: the gateway removes a closed agent); messages
   * already on their way are still received, up to closeTimeout seconds.
   * @param {number} [code]
   * @param {string} [reason]
   * @returns {Promise<void>}
   */
  async close(code = 1000, reason = 'client closing') {
    const session = this._session;
    if (session === null) {
      this._finish({ kind: 'finish', code: null, reason: 'closed before connecting', unsent: 0 });
      return;
    }
    if (this._peers !== null) await this._peers.close(); // tell the peers while the connection is up
    const unsent = session.close();
    if (unsent) console.warn(`aiconexus: closing with ${unsent} queued messages unsent`);
    this._reconnecting?.cancel();
    const connection = this._connection;
    const reading = this._reading;
    if (connection !== null && reading !== null && connection.open) {
      connection.close(code, reason);
      await waitAtMost(reading, this.closeTimeout);
    }
    this._stopKeepalive();
    connection?.abort();
    this._finish(session.finish(connection?.closeCode ?? null, connection?.closeReason ?? null));
  }

  /** @returns {Promise<void>} resolves once the client is finished (closed, or gave up reconnecting) */
  waitClosed() {
    return this._done;
  }

  /**
   * Call `handler(event)` on disconnection, reconnection and the final close; returns a function
   * that removes it.
   * @param {(event: ConnectionEvent) => unknown} handler
   * @returns {() => void}
   */
  onConnectionChange(handler) {
    this._connectionHandlers.push(handler);
    return () => remove(this._connectionHandlers, handler);
  }

  /**
   * @param {ConnectionEvent['state']} state
   * @param {Partial<ConnectionEvent>} [fields]
   * @private
   */
  _emit(state, fields = {}) {
    /** @type {ConnectionEvent} */
    const event = { state, code: null, reason: null, attempt: 0, delay: 0, ...fields };
    for (const handler of [...this._connectionHandlers]) {
      try {
        Promise.resolve(handler(event)).catch((error) => console.error('aiconexus: onConnectionChange handler failed', error));
      } catch (error) {
        console.error('aiconexus: onConnectionChange handler failed', error);
      }
    }
  }

  /**
   * The registered connection ended: finish, or reconnect when the session says so.
   * @param {Connection} connection
   * @private
   */
  _connectionLost(connection) {
    const session = this._sessionOrFail();
    const decision = session.connectionLost(connection.closeCode, connection.closeReason);
    connection.abort();
    this._failPings();
    this._stopKeepalive();
    if (decision.kind === 'finish') {
      this._finish(decision);
      return;
    }
    this._emit('disconnected', { code: this.closeCode, reason: this.closeReason });
    this._reconnect(decision);
  }

  /**
   * Come back after a lost connection: wait as the session says, then re-register.
   * @param {import('./session.js').Reconnect} first
   * @private
   */
  _reconnect(first) {
    let cancelled = false;
    /** @type {() => void} */
    let wake = () => {};
    this._reconnecting = {
      cancel: () => {
        cancelled = true;
        wake();
      },
    };
    const session = this._sessionOrFail();
    const run = async () => {
      let decision = first;
      for (;;) {
        this._emit('reconnecting', { attempt: decision.attempt, delay: decision.delay });
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, decision.delay * 1000);
          wake = () => {
            clearTimeout(timer);
            resolve(undefined);
          };
        });
        if (cancelled) return;
        try {
          await this._open();
        } catch (error) {
          if (cancelled) return;
          const following = session.attemptFailed(error);
          if (following.kind === 'finish') {
            console.warn(`aiconexus: giving up reconnecting to ${this.gatewayUrl}: ${following.reason}`);
            this._finish(following);
            return;
          }
          decision = following;
          continue;
        }
        this._reconnecting = null;
        this._emit('reconnected', { attempt: decision.attempt });
        await this._flushOutbox();
        await this._watchAgain();
        return;
      }
    };
    run().catch((error) => console.error('aiconexus: reconnection failed', error));
  }

  /**
   * The client is finished: release the socket, end receive(), tell handlers (once).
   * @param {import('./session.js').Finish} decision
   * @private
   */
  _finish(decision) {
    if (this._finished !== null) return;
    this._finished = decision;
    if (decision.unsent) console.warn(`aiconexus: finished with ${decision.unsent} queued messages unsent`);
    this._connection?.abort();
    this._failPings();
    this._stopKeepalive();
    this._emit('closed', { code: decision.code, reason: decision.reason });
    this._push(CLOSED);
    this._closeDirectory();
    this._markDone();
  }

  /** @private */
  _failPings() {
    for (const pending of this._pings.values()) pending.reject(new ConnectionClosed(this.closeCode, this.closeReason));
    this._pings.clear();
  }

  // -- keepalive ---------------------------------------------------------------------------------

  /** @private @param {Connection} connection */
  _scheduleKeepalive(connection) {
    this._stopKeepalive();
    const wait = this._session?.keepaliveIn(monotonic()) ?? null;
    if (wait === null) return;
    this._keepaliveTimer = setTimeout(async () => {
      this._keepaliveTimer = null;
      if (this._connection !== connection || !connection.open) return;
      const decision = await this._sessionOrFail().keepalive(monotonic());
      if (decision !== null) connection.write(decision.text);
      if (this._connection === connection) this._scheduleKeepalive(connection);
    }, wait * 1000 + 1);
  }

  /** @private */
  _stopKeepalive() {
    if (this._keepaliveTimer !== null) clearTimeout(this._keepaliveTimer);
    this._keepaliveTimer = null;
    if (this._livenessTimer !== null) clearTimeout(this._livenessTimer);
    this._livenessTimer = null;
  }

  /** @private @param {Connection} connection */
  _scheduleLiveness(connection) {
    if (this._livenessTimer !== null) clearTimeout(this._livenessTimer);
    this._livenessTimer = null;
    const wait = this._session?.livenessIn(monotonic()) ?? null;
    if (wait === null) return;
    this._livenessTimer = setTimeout(async () => {
      this._livenessTimer = null;
      if (this._connection !== connection || !connection.open) return;
      const decision = await this._sessionOrFail().liveness(monotonic());
      if (decision?.kind === 'send') {
        connection.write(decision.text);
      } else if (decision?.kind === 'dead') {
        console.warn(`aiconexus: ${decision.reason}; dropping the connection`);
        connection.drop(1006, decision.reason); // 1006: gone without a closing handshake
        return;
      }
      if (this._connection === connection) this._scheduleLiveness(connection);
    }, wait * 1000 + 1);
  }

  // -- sending -----------------------------------------------------------------------------------

  /**
   * Sign and send a message to the agent `to`; resolves to its id. While reconnecting the message
   * waits in the send queue (in order); SendQueueFull when that is full, ConnectionClosed when
   * there is no connection and none is coming; ProtocolError (INVALID_DID) at once when `to` is
   * not a valid did:key, TypeError for a type that cannot be sent to an agent.
   * @param {string} to
   * @param {string} type OFFER, ANSWER, ICE_CANDIDATE, INTENT, EXEC_REQUEST, EXEC_RESPONSE, ERROR, PING, PONG
   * @param {Record<string, unknown>} [payload]
   * With `ttl` (seconds, at most the gateway's MAILBOX_MAX_TTL) the message may wait in the gateway's
   * mailbox for a recipient that is offline: the gateway answers QUEUED, then a RECEIPT (DELIVERED or
   * EXPIRED) follows; `await client.receipt(id)` waits for it (docs/protocol.md section 22).
   * @param {{correlationId?: string | null, extra?: Record<string, unknown>, encrypt?: boolean, ttl?: number}} [options]
   * @returns {Promise<string>}
   */
  send(to, type, payload = {}, options = {}) {
    try {
      publicKeyFromDid(to);
      if (options.ttl !== undefined) options = { ...options, extra: { ...options.extra, ttl: checkTtl(options.ttl) } };
    } catch (error) {
      return Promise.reject(error);
    }
    if (!ROUTABLE_TYPES.includes(type)) {
      return Promise.reject(new TypeError(`${JSON.stringify(type)} cannot be sent to an agent; routable types: ${ROUTABLE_TYPES.join(', ')}`));
    }
    // one at a time, in call order: signing is asynchronous, and sends that are not awaited one by
    // one must still leave in the order they were made
    const sent = this._sending.then(() => this._send(to, type, payload, options));
    this._sending = sent.catch(() => {});
    return sent;
  }

  /**
   * @param {string} to
   * @param {string} type
   * @param {Record<string, unknown>} payload
   * @param {{correlationId?: string | null, extra?: Record<string, unknown>, encrypt?: boolean}} options
   * @returns {Promise<string>}
   * @private
   */
  async _send(to, type, payload, options) {
    const session = this._sessionOrFail();
    if (this.connected && this.queued === 0) await this._paced();
    const { id, text } = await session.send(to, type, payload, options.correlationId ?? null, monotonic(), options.extra,
      options.encrypt ?? false);
    if (text !== null) {
      const connection = this._connection;
      if (connection === null || !connection.write(text)) throw new ConnectionClosed(this.closeCode, this.closeReason);
    } else if (this.connected) {
      await this._flushOutbox();
    }
    return id;
  }

  /** @private Send the queued frames in order; stop (keeping the rest) if the connection drops. */
  async _flushOutbox() {
    if (this._flushing) return;
    this._flushing = true;
    try {
      const session = this._sessionOrFail();
      while (session.nextQueued() !== null) {
        await this._paced();
        const text = session.nextQueued();
        const connection = this._connection;
        if (text === null || connection === null || !connection.write(text)) return;
        session.sentQueued(monotonic());
      }
    } finally {
      this._flushing = false;
    }
  }

  /** @private Wait until the gateway's announced rate limit allows one more frame. */
  async _paced() {
    const session = this._sessionOrFail();
    for (let wait = session.pace(monotonic()); wait > 0; wait = session.pace(monotonic())) await sleep(wait);
  }

  /**
   * Send a frame exactly as given (tests and tools; no signing, no checks).
   * @param {string} text
   */
  sendRaw(text) {
    const connection = this._connection;
    if (connection === null || !connection.write(text)) throw new ConnectionClosed(this.closeCode, this.closeReason ?? 'not connected');
  }

  /**
   * PING the gateway; the round-trip time in seconds. TimeoutError after `timeout` seconds.
   * @param {{timeout?: number, payload?: Record<string, unknown>}} [options]
   * @returns {Promise<number>}
   */
  async ping(options = {}) {
    const timeout = options.timeout ?? 5;
    const session = this._sessionOrFail();
    await this._paced();
    const { id, text } = await session.ping(monotonic(), options.payload);
    const connection = this._connection;
    const started = performance.now();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    try {
      await new Promise((resolve, reject) => {
        this._pings.set(id, { resolve: () => resolve(undefined), reject });
        timer = setTimeout(() => reject(new TimeoutError(`no PONG within ${timeout} s`)), timeout * 1000);
        if (connection === null || !connection.write(text)) reject(new ConnectionClosed(this.closeCode, this.closeReason));
      });
    } finally {
      clearTimeout(timer);
      this._pings.delete(id);
      session.forgetPing(id);
    }
    return (performance.now() - started) / 1000;
  }

  // -- peer channels (docs/protocol.md section 19; peer.js) --------------------------------------

  /** @private @returns {PeerManager} */
  _peerManager() {
    if (this._peers === null) {
      if (this._key === null) throw new ConnectionClosed(null, 'not connected: call connect() first');
      this._peers = new PeerManager(this, { RTCPeerConnection: this._options.RTCPeerConnection });
    }
    return this._peers;
  }

  /**
   * Open a WebRTC data channel to the agent `did` (ordered, reliable, authenticated by both DIDs);
   * resolves once it is open. Rejects with a PeerError: PeerRefused, PeerTimeout, PeerUnknownAgent,
   * PeerICEFailed, PeerIdentityError (docs/protocol.md section 19), or a PeerError saying that this
   * runtime has no RTCPeerConnection (Node). `fallback: true` relays through the gateway when ICE fails.
   * @param {string} did
   * @param {import('./peer.js').ConnectPeerOptions} [options]
   * @returns {Promise<import('./peer.js').PeerChannel>}
   */
  connectPeer(did, options = {}) {
    try {
      publicKeyFromDid(did);
      return this._peerManager().connect(did, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Accept the channels other agents open to this one: `handler(channel)` gets each, open.
   * Without onPeer or peers(), OFFERs are refused (PEER_REFUSED).
   * @param {(channel: import('./peer.js').PeerChannel) => unknown} handler
   * @returns {() => void} removes the handler
   */
  onPeer(handler) {
    return this._peerManager().onPeer(handler);
  }

  /** @returns {AsyncIterableIterator<import('./peer.js').PeerChannel>} the channels other agents open, accepted */
  peers() {
    return this._peerManager().peers();
  }

  /**
   * Accept only the OFFERs for which `policy(peerDid, label)` (plain or async) is true.
   * @param {(peerDid: string, label: string) => boolean | Promise<boolean>} policy
   */
  acceptPeers(policy) {
    this._peerManager().acceptPolicy(policy);
  }

  /**
   * Settings for every later peer channel: `iceServers` replaces the gateway's (null: the gateway's
   * again), `relayOnly` uses TURN candidates only.
   * @param {{iceServers?: import('./peer.js').IceServer[] | null, relayOnly?: boolean}} settings
   */
  configurePeers(settings) {
    const manager = this._peerManager();
    if (settings.iceServers !== undefined) manager.iceServers = settings.iceServers;
    if (settings.relayOnly !== undefined) manager.relayOnly = settings.relayOnly;
  }

  /**
   * Ask the gateway for fresh ICE servers (new TURN credentials: PING `{ice_servers: true}`);
   * resolves to `iceServers`. connectPeer does it by itself a minute before credentials expire.
   * @param {{timeout?: number}} [options]
   * @returns {Promise<import('./peer.js').IceServer[]>}
   */
  async refreshIceServers(options = {}) {
    await this.ping({ timeout: options.timeout ?? 5, payload: { ice_servers: true } });
    return this.iceServers;
  }

  /** @returns {import('./peer.js').PeerChannel[]} the peer channels open now */
  get channels() {
    return this._peers?.channels() ?? [];
  }

  // -- receiving ---------------------------------------------------------------------------------

  /**
   * Call `handler(message)` (plain or async) for every verified message, or with `types` only for
   * messages of those types; returns a function that removes it. Messages a handler takes do not
   * go to receive(): with a handler for every type, receive() refuses; with handlers for some
   * types (e.g. a WebRTC helper taking OFFER, ANSWER and ICE_CANDIDATE), the other messages still
   * come out of receive(). An async handler is awaited before the next frame is handled (order
   * and back-pressure).
   * @param {(message: Message) => unknown} handler
   * @param {{types?: string[]}} [options]
   * @returns {() => void}
   */
  onMessage(handler, options = {}) {
    const entry = { handler, types: options.types ? new Set(options.types) : null };
    this._handlers.push(entry);
    // messages that were waiting for receive() go to the handler that now takes them, in order
    const inbox = this._inbox;
    const waiting = inbox.items.filter((item) => item !== CLOSED && this._takers(item).length > 0);
    inbox.items = inbox.items.filter((item) => !waiting.includes(item));
    for (const item of waiting) {
      const message = /** @type {Message} */ (item);
      this._callHandlers(message).then(() => this._handled(message));
    }
    return () => remove(this._handlers, entry);
  }

  /**
   * The handlers that take `message`: those for its type, else those for every type.
   * @param {Message} message
   * @returns {Array<(message: Message) => unknown>}
   * @private
   */
  _takers(message) {
    const typed = this._handlers.filter((entry) => entry.types !== null && entry.types.has(message.type));
    const entries = typed.length > 0 ? typed : this._handlers.filter((entry) => entry.types === null);
    return entries.map((entry) => entry.handler);
  }

  /**
   * Call `handler(error)` for every received frame that failed verification (it is never
   * delivered); returns a function that removes it.
   * @param {(error: InvalidMessageError) => unknown} handler
   * @returns {() => void}
   */
  onInvalid(handler) {
    this._invalidHandlers.push(handler);
    return () => remove(this._invalidHandlers, handler);
  }

  /**
   * The next verified message (gateway ERRORs included); ConnectionClosed once the connection is
   * over and every message before the end was read; TimeoutError after `timeout` seconds.
   * @param {{timeout?: number | null}} [options]
   * @returns {Promise<Message>}
   */
  async receive(options = {}) {
    if (this._handlers.some((entry) => entry.types === null)) {
      throw new Error('this client hands every message to its onMessage handlers; use receive() (or async '
        + 'iteration) or handlers, not both (waitClosed() waits for the end)');
    }
    const timeout = options.timeout ?? null;
    const item = await this._inbox.take(timeout, () => new TimeoutError(`no message within ${timeout} s`));
    if (item === CLOSED) {
      this._inbox.putBack(CLOSED); // every later receive() sees the end too
      throw new ConnectionClosed(this.closeCode, this.closeReason);
    }
    await this._handled(/** @type {Message} */ (item)); // the application has it: acknowledged
    return /** @type {Message} */ (item);
  }

  // -- the mailbox (mailbox.js; docs/protocol.md section 22) --------------------------------------

  /**
   * What became of the message `messageId` sent with a ttl: 'DELIVERED' (its recipient acknowledged
   * it) or 'EXPIRED' (its time to live ran out first). Waits for the RECEIPT (TimeoutError after
   * `timeout` seconds); one that already came is answered at once. The RECEIPT also reaches
   * onMessage / receive() as a message.
   * @param {string} messageId
   * @param {{timeout?: number | null}} [options]
   * @returns {Promise<string>}
   */
  async receipt(messageId, options = {}) {
    const known = this._receipts.get(messageId);
    if (known !== undefined) return known;
    const timeout = options.timeout ?? null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    /** @type {(status: string) => void} */
    let waiter = () => {};
    try {
      return await new Promise((resolve, reject) => {
        waiter = resolve;
        const waiters = this._receiptWaiters.get(messageId) ?? [];
        waiters.push(waiter);
        this._receiptWaiters.set(messageId, waiters);
        if (timeout !== null) timer = setTimeout(() => reject(new TimeoutError(`no RECEIPT within ${timeout} s`)), timeout * 1000);
      });
    } finally {
      clearTimeout(timer);
      const waiters = this._receiptWaiters.get(messageId);
      if (waiters !== undefined) {
        remove(waiters, waiter);
        if (waiters.length === 0) this._receiptWaiters.delete(messageId);
      }
    }
  }

  /**
   * This agent's mailbox at the gateway: `enabled: false` refuses every stored message (senders get
   * MAILBOX_REFUSED), `blocked` the DIDs whose messages it refuses (replacing the list); a rule left
   * out stays as it is. Resolves to the mailbox as the gateway reports it ({enabled, blocked,
   * messages, bytes, receipts}); GatewayError when the gateway refuses (MAILBOX_REFUSED: no mailbox).
   * @param {{enabled?: boolean, blocked?: string[], timeout?: number}} [options]
   * @returns {Promise<Record<string, unknown>>}
   */
  async mailbox(options = {}) {
    /** @type {Record<string, unknown>} */
    const payload = {};
    if (options.enabled !== undefined) payload.enabled = Boolean(options.enabled);
    if (options.blocked !== undefined) {
      for (const did of options.blocked) publicKeyFromDid(did);
      payload.blocked = [...options.blocked];
    }
    const session = this._sessionOrFail();
    await this._paced();
    const { id, text } = await session.mailboxRequest(payload);
    const connection = this._connection;
    const timeout = options.timeout ?? 5;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    try {
      return await new Promise((resolve, reject) => {
        this._mailboxRequests.set(id, { resolve, reject });
        timer = setTimeout(() => reject(new TimeoutError(`no MAILBOX answer within ${timeout} s`)), timeout * 1000);
        if (connection === null || !connection.write(text)) reject(new ConnectionClosed(this.closeCode, this.closeReason));
      });
    } finally {
      clearTimeout(timer);
      this._mailboxRequests.delete(id);
    }
  }

  /**
   * A message from the gateway the mailbox consumes: a RECEIPT is recorded (and acknowledged), a
   * MAILBOX answer (or ERROR) to mailbox() resolves it; true when it is not delivered further.
   * @param {Message} message
   * @returns {Promise<boolean>}
   * @private
   */
  async _fromMailbox(message) {
    if (message.sender !== this.gatewayDid) return false;
    if (message.type === 'RECEIPT') {
      const { id, status } = /** @type {{id?: unknown, status?: unknown}} */ (message.payload);
      if (typeof id === 'string' && typeof status === 'string') {
        this._receipts.set(id, status);
        if (this._receipts.size > RECEIPT_MEMORY) this._receipts.delete(/** @type {string} */ (this._receipts.keys().next().value));
        for (const resolve of this._receiptWaiters.get(id) ?? []) resolve(status);
        this._receiptWaiters.delete(id);
      }
      await this._handled(message); // the client keeps it for receipt(): acknowledged now
      return false;
    }
    const request = message.correlationId === null ? undefined : this._mailboxRequests.get(message.correlationId);
    if (request === undefined || (message.type !== 'MAILBOX' && message.type !== 'ERROR')) return false;
    if (message.type === 'MAILBOX') {
      request.resolve({ ...message.payload });
    } else {
      const payload = /** @type {{code?: unknown, message?: unknown, details?: unknown}} */ (message.payload);
      request.reject(new GatewayError(String(payload.code), String(payload.message),
        /** @type {Record<string, unknown> | null} */ (typeof payload.details === 'object' ? payload.details : null)));
    }
    return true;
  }

  // -- discovery and presence (directory.js; docs/protocol.md section 21) ------------------------

  /**
   * One page of the agents online now that match (all of) the filters given (a string: a
   * capability), each card checked against its agent's signature on its REGISTER: an entry that
   * does not verify is dropped and counted in `rejected` (with the reason in `problems`). `next`
   * is the `cursor` of the following page (null: the last). GatewayError when the gateway refuses
   * the query (MALFORMED_MESSAGE says what is wrong; RATE_LIMITED: over DISCOVERY_RATE per second).
   * @param {import('./directory.js').DiscoveryQuery | string} [query]
   * @param {{timeout?: number}} [options] seconds for the answer (default 10)
   * @returns {Promise<import('./directory.js').DiscoveryPage>}
   */
  async discover(query = {}, options = {}) {
    const payload = requestPayload(typeof query === 'string' ? { capability: query } : query);
    const answer = await this._ask('DISCOVER', payload, options.timeout ?? 10);
    const page = await discoveryPage(answer.payload);
    if (page.rejected > 0) {
      console.warn(`aiconexus: dropped ${page.rejected} discovered agents whose card did not verify: `
        + page.problems.map((problem) => `${problem.did}: ${problem.reason}`).join('; '));
    }
    return page;
  }

  /**
   * Every matching agent, page after page.
   * @param {Omit<import('./directory.js').DiscoveryQuery, 'limit' | 'cursor'> | string} [query]
   * @param {{timeout?: number}} [options]
   * @returns {AsyncGenerator<import('./directory.js').DiscoveredAgent>}
   */
  async* discoverAll(query = {}, options = {}) {
    const base = typeof query === 'string' ? { capability: query } : query;
    /** @type {string | undefined} */
    let cursor;
    for (;;) {
      const page = await this.discover({ ...base, limit: 100, cursor }, options);
      yield* page.agents;
      if (page.next === null) return;
      cursor = page.next;
    }
  }

  /**
   * Watch these agents' presence: their state now ({did: 'online' | 'offline'}); from then on a
   * PresenceEvent for each change (onPresence, presence()). Watched again by itself after a
   * reconnection. GatewayError over the gateway's WATCH_LIMIT.
   * @param {string[]} dids
   * @param {{timeout?: number}} [options]
   * @returns {Promise<Record<string, 'online' | 'offline'>>}
   */
  async watch(dids, options = {}) {
    if (!Array.isArray(dids)) throw new TypeError('watch() takes a list of DIDs');
    for (const did of dids) publicKeyFromDid(did);
    const answer = await this._ask('WATCH', { dids: [...dids] }, options.timeout ?? 10);
    this._watching.add(dids);
    return watchStates(answer.payload);
  }

  /**
   * Stop watching these agents.
   * @param {string[]} dids
   * @param {{timeout?: number}} [options]
   * @returns {Promise<void>}
   */
  async unwatch(dids, options = {}) {
    if (!Array.isArray(dids)) throw new TypeError('unwatch() takes a list of DIDs');
    this._watching.remove(dids);
    await this._ask('UNWATCH', { dids: [...dids] }, options.timeout ?? 10);
  }

  /** @returns {string[]} the DIDs this client watches */
  get watching() {
    return [...this._watching.dids];
  }

  /**
   * Call `handler(event)` (plain or async) for each PresenceEvent of a watched agent (then
   * presence() gets none); returns a function that removes it.
   * @param {(event: PresenceEvent) => unknown} handler
   * @returns {() => void}
   */
  onPresence(handler) {
    this._presenceHandlers.push(handler);
    return () => remove(this._presenceHandlers, handler);
  }

  /** @returns {AsyncGenerator<PresenceEvent>} the PresenceEvents of watched agents as they come; ends when the client is closed */
  async* presence() {
    for (;;) {
      const queued = this._presenceQueue.shift();
      /** @type {PresenceEvent | typeof CLOSED} */
      const item = queued !== undefined ? queued
        : await new Promise((resolve) => { this._presenceReceivers.push(resolve); });
      if (item === CLOSED) {
        this._presenceQueue.unshift(CLOSED); // every later presence() ends too
        return;
      }
      yield item;
    }
  }

  /**
   * Send a request to the gateway; its answer, or GatewayError for an ERROR answer.
   * @param {string} type
   * @param {Record<string, unknown>} payload
   * @param {number} timeout
   * @returns {Promise<Message>}
   * @private
   */
  async _ask(type, payload, timeout) {
    const session = this._sessionOrFail();
    if (!this.connected) throw new ConnectionClosed(this.closeCode, this.closeReason ?? 'not connected');
    await this._paced();
    const { id, text } = await session.gatewayRequest(type, payload);
    const connection = this._connection;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    /** @type {Message} */
    let answer;
    try {
      answer = await new Promise((resolve, reject) => {
        this._directoryRequests.set(id, { resolve, reject });
        timer = setTimeout(() => reject(new TimeoutError(`no answer to ${type} within ${timeout} s`)), timeout * 1000);
        if (connection === null || !connection.write(text)) reject(new ConnectionClosed(this.closeCode, this.closeReason));
      });
    } finally {
      clearTimeout(timer);
      this._directoryRequests.delete(id);
    }
    if (answer.type === 'ERROR') {
      const error = /** @type {{code?: unknown, message?: unknown, details?: unknown}} */ (answer.payload);
      throw new GatewayError(String(error.code), String(error.message),
        /** @type {Record<string, unknown> | null} */ (typeof error.details === 'object' ? error.details : null));
    }
    return answer;
  }

  /**
   * A message from the gateway that discovery consumes: the answer to a request, or PRESENCE;
   * true when it is not delivered further.
   * @param {Message} message
   * @returns {Promise<boolean>}
   * @private
   */
  async _fromDirectory(message) {
    if (message.type === 'PRESENCE') {
      const event = presenceEvent(message.payload);
      if (event === null) {
        console.warn(`aiconexus: dropped a malformed PRESENCE message: ${JSON.stringify(message.payload)}`);
      } else if (this._presenceHandlers.length > 0) {
        for (const handler of [...this._presenceHandlers]) {
          try {
            await handler(event);
          } catch (error) {
            console.error('aiconexus: onPresence handler failed', error);
          }
        }
      } else {
        this._queuePresence(event);
      }
      return true;
    }
    const request = message.correlationId === null ? undefined : this._directoryRequests.get(message.correlationId);
    if (request === undefined || !DIRECTORY_ANSWERS.includes(message.type)) return false;
    request.resolve(message);
    return true;
  }

  /**
   * @param {PresenceEvent} event
   * @private
   */
  _queuePresence(event) {
    const receiver = this._presenceReceivers.shift();
    if (receiver !== undefined) {
      receiver(event);
      return;
    }
    if (this._presenceQueue.length >= PRESENCE_MEMORY) this._presenceQueue.shift(); // nobody reads: keep the newest
    this._presenceQueue.push(event);
  }

  /** @private After a reconnection the new session watches nothing: watch the same DIDs again. */
  async _watchAgain() {
    for (const dids of this._watching.batches()) {
      try {
        await this._ask('WATCH', { dids }, 10);
      } catch (error) { // the application sees the connection events
        console.warn(`aiconexus: could not watch ${dids.length} DIDs again after reconnecting: ${error instanceof Error ? error.message : error}`);
      }
    }
  }

  /** @private The client is finished: pending requests fail, presence() ends. */
  _closeDirectory() {
    for (const request of this._directoryRequests.values()) request.reject(new ConnectionClosed(this.closeCode, this.closeReason));
    this._directoryRequests.clear();
    for (const receiver of this._presenceReceivers.splice(0)) receiver(CLOSED);
    this._presenceQueue.push(CLOSED);
  }

  /**
   * The application is done with `message`: acknowledge it if the gateway keeps it (when the
   * connection is gone, the gateway sends it again and it is acknowledged then).
   * @param {Message} message
   * @private
   */
  async _handled(message) {
    const text = await this._session?.handled(message);
    if (text) {
      await this._paced(); // under the announced rate limit, like every frame: a burst of waiting
      this._connection?.write(text); // messages is acknowledged at the pace the gateway takes
    }
  }

  /** @returns {AsyncIterator<Message>} every message until the connection is over */
  async* [Symbol.asyncIterator]() {
    for (;;) {
      try {
        yield await this.receive();
      } catch (error) {
        if (error instanceof ConnectionClosed) return;
        throw error;
      }
    }
  }

  /** @private @param {Message | typeof CLOSED} item */
  _push(item) {
    this._inbox.put(item);
  }

  /**
   * @param {Message} message
   * @returns {Promise<void>}
   * @private
   */
  async _callHandlers(message) {
    for (const handler of this._takers(message)) {
      try {
        await handler(message);
      } catch (error) {
        console.error('aiconexus: onMessage handler failed', error);
      }
    }
  }

  /** @private @param {Connection} connection */
  async _readLoop(connection) {
    const session = this._sessionOrFail();
    try {
      for (;;) {
        const frame = await connection.read();
        if (frame === null) break;
        const decision = typeof frame === 'string' ? await session.receive(frame, monotonic()) : session.receiveBinary();
        if (decision === null) continue;
        if (decision.kind === 'deliver') {
          if (await this._fromMailbox(decision.message)) continue;
          if (decision.message.sender === this.gatewayDid && await this._fromDirectory(decision.message)) continue;
          if (this._peers !== null && this._peers.takes(decision.message)) { // a peer channel's signal
            await this._handled(decision.message);
            continue;
          }
          if (this._takers(decision.message).length > 0) {
            await this._callHandlers(decision.message);
            await this._handled(decision.message);
          } else {
            this._push(decision.message); // acknowledged when receive() returns it
          }
        } else if (decision.kind === 'send') { // a mailbox message again: acknowledged again
          connection.write(decision.text);
        } else if (decision.kind === 'pingAnswered') {
          this._pings.get(decision.pingId)?.resolve();
        } else if (decision.kind === 'report') {
          console.warn(`aiconexus: dropped an invalid message: ${decision.error.reason}`);
          for (const handler of [...this._invalidHandlers]) {
            try {
              await handler(decision.error);
            } catch (error) {
              console.error('aiconexus: onInvalid handler failed', error);
            }
          }
        }
      }
    } finally {
      if (this._connection === connection) this._connectionLost(connection);
    }
  }
}

/**
 * Read (and drop) frames until the gateway's close frame arrives, at most `timeout` seconds.
 * @param {Connection} connection
 * @param {number} timeout
 */
async function readUntilClosed(connection, timeout) {
  const deadline = monotonic() + timeout;
  const drain = (async () => {
    while ((await connection.read()) !== null) { /* drop */ }
  })();
  await waitAtMost(drain, Math.max(0, deadline - monotonic()));
}

/**
 * @template T
 * @param {T[]} list
 * @param {T} item
 * @returns {boolean}
 */
function remove(list, item) {
  const index = list.indexOf(item);
  if (index < 0) return false;
  list.splice(index, 1);
  return true;
}

/** Receipt statuses kept for receipt() calls made after they came. */
const RECEIPT_MEMORY = 10000;
/** PresenceEvents kept for presence() while nobody reads it (the newest). */
const PRESENCE_MEMORY = 1000;

export { GatewayError };
