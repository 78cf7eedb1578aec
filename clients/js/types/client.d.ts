/**
 * The WebSocket URL for `text`: ws:// and wss:// as given, http(s):// as ws(s)://, `/ws` added when
 * there is no path; TypeError saying what is expected otherwise.
 * @param {string} text
 * @returns {string}
 */
export function gatewayUrlFor(text: string): string;
export class GatewayClient {
    /**
     * @param {string} [gatewayUrl] ws://HOST:PORT/ws (wss:// with TLS)
     * @param {AgentKey} [key] this agent's key; a new one is made by connect() when omitted
     * @param {ClientOptions} [options]
     */
    constructor(gatewayUrl?: string, key?: AgentKey, options?: ClientOptions);
    gatewayUrl: string;
    /** @type {AgentKey | null} */
    _key: AgentKey | null;
    connectTimeout: number;
    closeTimeout: number;
    _options: ClientOptions;
    _settings: {
        metadata: Record<string, unknown> | null;
        expectedGatewayDid: string | null;
        reconnect: import("./backoff.js").FullPolicy | null;
        sendQueueSize: number;
        pace: boolean;
        keepalive: boolean;
        pingInterval: number | null;
    };
    /** @type {ClientSession | null} */
    _session: ClientSession | null;
    /** @type {Connection | null} */
    _connection: Connection | null;
    /** @type {Array<Message | typeof CLOSED>} */
    _queue: Array<Message | typeof CLOSED>;
    /** @type {Array<(item: Message | typeof CLOSED) => void>} */
    _receivers: Array<(item: Message | typeof CLOSED) => void>;
    /** @type {Array<{handler: (message: Message) => unknown, types: Set<string> | null}>} */
    _handlers: Array<{
        handler: (message: Message) => unknown;
        types: Set<string> | null;
    }>;
    /** @type {Array<(error: InvalidMessageError) => unknown>} */
    _invalidHandlers: Array<(error: InvalidMessageError) => unknown>;
    /** @type {Array<(event: ConnectionEvent) => unknown>} */
    _connectionHandlers: Array<(event: ConnectionEvent) => unknown>;
    /** @type {Map<string, {resolve: () => void, reject: (error: Error) => void}>} */
    _pings: Map<string, {
        resolve: () => void;
        reject: (error: Error) => void;
    }>;
    /** @type {ReturnType<typeof setTimeout> | null} */
    _keepaliveTimer: ReturnType<typeof setTimeout> | null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    _livenessTimer: ReturnType<typeof setTimeout> | null;
    /** @type {{cancel: () => void} | null} */
    _reconnecting: {
        cancel: () => void;
    } | null;
    /** @type {Promise<void> | null} */
    _reading: Promise<void> | null;
    _flushing: boolean;
    /** @type {Promise<unknown>} the sends so far, chained: frames leave in call order */
    _sending: Promise<unknown>;
    /** @type {import('./session.js').Finish | null} */
    _finished: import("./session.js").Finish | null;
    /** @type {Promise<void>} */
    _done: Promise<void>;
    _markDone: () => void;
    /** @returns {string | null} this agent's DID (null before connect() when no key was given) */
    get did(): string | null;
    /** @returns {AgentKey | null} */
    get key(): AgentKey | null;
    /** @returns {string} idle, connecting, registering, registered, reconnecting, closing, closed */
    get state(): string;
    /** registered on an open connection */
    get connected(): boolean;
    /** the connection was lost and the client is coming back by itself */
    get reconnecting(): boolean;
    /** messages waiting in the send queue */
    get queued(): number;
    /** @returns {string | null} the DID that signed the CHALLENGE (and every gateway message) */
    get gatewayDid(): string | null;
    /** @returns {string | null} */
    get sessionId(): string | null;
    /** @returns {number | null} seconds, from REGISTERED */
    get agentTimeout(): number | null;
    /** @returns {{messagesPerSecond: number, burst: number} | null} the limit REGISTERED announced */
    get rateLimit(): {
        messagesPerSecond: number;
        burst: number;
    } | null;
    /** successful reconnections so far */
    get reconnects(): number;
    /** received frames that failed verification (and were dropped) */
    get invalidMessages(): number;
    /** @returns {number | null} how the connection ended (docs/protocol.md section 11) */
    get closeCode(): number | null;
    /** @returns {string | null} */
    get closeReason(): string | null;
    /**
     * Open the WebSocket and register (one attempt). GatewayConnectionError when the gateway cannot
     * be reached or breaks the handshake; GatewayError when it refuses the REGISTER (or the page's
     * origin: code 4403 in `closeCode`).
     * @returns {Promise<void>}
     */
    connect(): Promise<void>;
    /** @returns {ClientSession} */
    _sessionOrFail(): ClientSession;
    /**
     * One attempt: open a WebSocket, register on it, start reading and the keepalive.
     * @returns {Promise<import('./session.js').Decision>}
     */
    _open(): Promise<import("./session.js").Decision>;
    /**
     * Feed frames to the session until it registers, fails, or is refused.
     * @param {Connection} connection
     */
    _handshake(connection: Connection): Promise<{
        kind: "registered";
        sessionId: string;
        reconnected: boolean;
        attempt: number;
    }>;
    /**
     * Close the connection (UNREGISTER is not needed: the gateway removes a closed agent); messages
     * already on their way are still received, up to closeTimeout seconds.
     * @param {number} [code]
     * @param {string} [reason]
     * @returns {Promise<void>}
     */
    close(code?: number, reason?: string): Promise<void>;
    /** @returns {Promise<void>} resolves once the client is finished (closed, or gave up reconnecting) */
    waitClosed(): Promise<void>;
    /**
     * Call `handler(event)` on disconnection, reconnection and the final close; returns a function
     * that removes it.
     * @param {(event: ConnectionEvent) => unknown} handler
     * @returns {() => void}
     */
    onConnectionChange(handler: (event: ConnectionEvent) => unknown): () => void;
    /**
     * @param {ConnectionEvent['state']} state
     * @param {Partial<ConnectionEvent>} [fields]
     */
    _emit(state: ConnectionEvent["state"], fields?: Partial<ConnectionEvent>): void;
    /**
     * The registered connection ended: finish, or reconnect when the session says so.
     * @param {Connection} connection
     */
    _connectionLost(connection: Connection): void;
    /**
     * Come back after a lost connection: wait as the session says, then re-register.
     * @param {import('./session.js').Reconnect} first
     */
    _reconnect(first: import("./session.js").Reconnect): void;
    /**
     * The client is finished: release the socket, end receive(), tell handlers (once).
     * @param {import('./session.js').Finish} decision
     */
    _finish(decision: import("./session.js").Finish): void;
    _failPings(): void;
    /** @param {Connection} connection */
    _scheduleKeepalive(connection: Connection): void;
    _stopKeepalive(): void;
    /** @param {Connection} connection */
    _scheduleLiveness(connection: Connection): void;
    /**
     * Sign and send a message to the agent `to`; resolves to its id. While reconnecting the message
     * waits in the send queue (in order); SendQueueFull when that is full, ConnectionClosed when
     * there is no connection and none is coming; ProtocolError (INVALID_DID) at once when `to` is
     * not a valid did:key, TypeError for a type that cannot be sent to an agent.
     * @param {string} to
     * @param {string} type OFFER, ANSWER, ICE_CANDIDATE, INTENT, EXEC_REQUEST, EXEC_RESPONSE, ERROR, PING, PONG
     * @param {Record<string, unknown>} [payload]
     * @param {{correlationId?: string | null, extra?: Record<string, unknown>}} [options]
     * @returns {Promise<string>}
     */
    send(to: string, type: string, payload?: Record<string, unknown>, options?: {
        correlationId?: string | null;
        extra?: Record<string, unknown>;
    }): Promise<string>;
    /**
     * @param {string} to
     * @param {string} type
     * @param {Record<string, unknown>} payload
     * @param {{correlationId?: string | null, extra?: Record<string, unknown>}} options
     * @returns {Promise<string>}
     */
    _send(to: string, type: string, payload: Record<string, unknown>, options: {
        correlationId?: string | null;
        extra?: Record<string, unknown>;
    }): Promise<string>;
    /** Send the queued frames in order; stop (keeping the rest) if the connection drops. */
    _flushOutbox(): Promise<void>;
    /** Wait until the gateway's announced rate limit allows one more frame. */
    _paced(): Promise<void>;
    /**
     * Send a frame exactly as given (tests and tools; no signing, no checks).
     * @param {string} text
     */
    sendRaw(text: string): void;
    /**
     * PING the gateway; the round-trip time in seconds. TimeoutError after `timeout` seconds.
     * @param {{timeout?: number}} [options]
     * @returns {Promise<number>}
     */
    ping(options?: {
        timeout?: number;
    }): Promise<number>;
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
    onMessage(handler: (message: Message) => unknown, options?: {
        types?: string[];
    }): () => void;
    /**
     * The handlers that take `message`: those for its type, else those for every type.
     * @param {Message} message
     * @returns {Array<(message: Message) => unknown>}
     */
    _takers(message: Message): Array<(message: Message) => unknown>;
    /**
     * Call `handler(error)` for every received frame that failed verification (it is never
     * delivered); returns a function that removes it.
     * @param {(error: InvalidMessageError) => unknown} handler
     * @returns {() => void}
     */
    onInvalid(handler: (error: InvalidMessageError) => unknown): () => void;
    /**
     * The next verified message (gateway ERRORs included); ConnectionClosed once the connection is
     * over and every message before the end was read; TimeoutError after `timeout` seconds.
     * @param {{timeout?: number | null}} [options]
     * @returns {Promise<Message>}
     */
    receive(options?: {
        timeout?: number | null;
    }): Promise<Message>;
    /** @param {Message | typeof CLOSED} item */
    _push(item: Message | typeof CLOSED): void;
    /**
     * @param {Message} message
     * @returns {Promise<void>}
     */
    _callHandlers(message: Message): Promise<void>;
    /** @param {Connection} connection */
    _readLoop(connection: Connection): Promise<void>;
    /** @returns {AsyncIterator<Message>} every message until the connection is over */
    [Symbol.asyncIterator](): AsyncIterator<Message>;
}
export { GatewayError };
export type Message = import("./envelope.js").Message;
export type InvalidMessageError = import("./errors.js").InvalidMessageError;
export type ReconnectPolicy = import("./backoff.js").ReconnectPolicy;
export type WebSocketConstructor = import("./websocket.js").WebSocketConstructor;
/**
 * What onConnectionChange handlers are told: "disconnected" (code/reason of the loss),
 * "reconnecting" (attempt, delay in seconds before it), "reconnected" (the attempt that
 * succeeded), "closed" (final; reason says why).
 */
export type ConnectionEvent = {
    state: "disconnected" | "reconnecting" | "reconnected" | "closed";
    code: number | null;
    reason: string | null;
    attempt: number;
    delay: number;
};
export type ClientOptions = {
    /**
     * sent in REGISTER, shown by GET /agents (at most 4096 canonical bytes)
     */
    metadata?: Record<string, unknown> | undefined;
    /**
     * pin the gateway's DID (GET /health shows it)
     */
    expectedGatewayDid?: string | undefined;
    /**
     * seconds for the WebSocket handshake and for registration, each (default 10)
     */
    connectTimeout?: number | undefined;
    /**
     * PING the gateway when nothing was sent for a third of agent_timeout (default true)
     */
    keepalive?: boolean | undefined;
    /**
     * seconds without a frame from the gateway before a PING probes it, and
     * for its answer before the connection counts as lost (default 20; null: never)
     */
    pingInterval?: number | null | undefined;
    /**
     * come back by itself after a lost connection (default false)
     */
    reconnect?: boolean | import("./backoff.js").ReconnectPolicy | undefined;
    /**
     * messages send() may queue while reconnecting (default 1000)
     */
    sendQueueSize?: number | undefined;
    /**
     * keep under 90 % of the rate limit REGISTERED announces (default true)
     */
    pace?: boolean | undefined;
    /**
     * seconds close() waits for the gateway's close frame (default 2)
     */
    closeTimeout?: number | undefined;
    /**
     * the WebSocket class (default: the global one, else the ws package)
     */
    WebSocket?: import("./websocket.js").WebSocketConstructor | undefined;
    /**
     * time, jitter and ids (tests)
     */
    clocks?: import("./session.js").SessionClocks | undefined;
};
import { AgentKey } from './keys.js';
import { ClientSession } from './session.js';
import { Connection } from './websocket.js';
/** @typedef {import('./envelope.js').Message} Message */
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
 * @property {import('./session.js').SessionClocks} [clocks] time, jitter and ids (tests)
 */
declare const CLOSED: unique symbol;
import { GatewayError } from './errors.js';
