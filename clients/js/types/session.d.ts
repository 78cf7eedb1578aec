/** Pace at 90 % of the gateway's announced rate, so jitter never trips it. */
export const PACING_MARGIN: 0.9;
export type State = string;
/** @enum {string} */
export const State: Readonly<{
    IDLE: "idle";
    CONNECTING: "connecting";
    REGISTERING: "registering";
    REGISTERED: "registered";
    RECONNECTING: "reconnecting";
    CLOSING: "closing";
    CLOSED: "closed";
}>;
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
    constructor(key: Signer, settings?: SessionSettings, clocks?: SessionClocks);
    key: Signer;
    settings: {
        metadata: Record<string, unknown> | null;
        card: Record<string, unknown> | null;
        unlisted: boolean;
        expectedGatewayDid: string | null;
        reconnect: import("./backoff.js").FullPolicy | null;
        sendQueueSize: number;
        pace: boolean;
        keepalive: boolean;
        pingInterval: number | null;
    };
    /** @type {string} */
    state: string;
    /** @type {string | null} */
    gatewayDid: string | null;
    /** @type {string | null} */
    sessionId: string | null;
    /** @type {number | null} */
    agentTimeout: number | null;
    /** @type {{messagesPerSecond: number, burst: number} | null} the limit REGISTERED announced */
    rateLimit: {
        messagesPerSecond: number;
        burst: number;
    } | null;
    /** @type {Record<string, unknown> | null} REGISTERED's whole payload (what later gateway versions add, too) */
    registration: Record<string, unknown> | null;
    invalidMessages: number;
    /** mailbox messages handed on (mailbox.js): repeats are dropped, ACKs sent once handled */
    acks: Acknowledgements;
    reconnects: number;
    attempt: number;
    /** @type {number | null} */
    closeCode: number | null;
    /** @type {string | null} */
    closeReason: string | null;
    /** @type {string[]} signed frames waiting for a connection, in order */
    outbox: string[];
    /** @private */
    private _wallClock;
    /** @private */
    private _jitter;
    /** @private */
    private _newId;
    /** @private @type {string | null} */
    private _registerId;
    /** @private @type {TokenBucket | null} */
    private _pacer;
    /** @private */
    private _lastSend;
    /** @private */
    private _lastReceive;
    /** @private @type {number | null} when the liveness PING still unanswered was sent */
    private _probeSentAt;
    /** @private @type {Set<string>} */
    private _keepaliveIds;
    /** @private @type {Set<string>} */
    private _pingIds;
    /** @private @type {number | null} */
    private _retryAfter;
    /** @private @type {Promise<E2E> | null} end-to-end encryption, made on first use (e2e.js) */
    private _e2e;
    get registered(): boolean;
    /** The connection was lost and the client is coming back (waiting, or re-registering). */
    get reconnecting(): boolean;
    /** The pump is opening a WebSocket (first connect() or a reconnection attempt). */
    connecting(): void;
    /**
     * The decision one received text frame calls for.
     * @param {string} text
     * @param {number} now seconds (monotonic)
     * @returns {Promise<Decision>}
     */
    receive(text: string, now: number): Promise<Decision>;
    /** @returns {Decision} a binary frame: the gateway never sends one */
    receiveBinary(): Decision;
    /**
     * The open connection ended (the gateway closed it, or it broke).
     * @param {number | null} code
     * @param {string | null} reason
     * @returns {Reconnect | Finish}
     */
    connectionLost(code: number | null, reason: string | null): Reconnect | Finish;
    /**
     * A reconnection attempt did not get to REGISTERED (refused, unreachable, broken).
     * @param {unknown} error
     * @returns {Reconnect | Finish}
     */
    attemptFailed(error: unknown): Reconnect | Finish;
    /** The first connect() failed; the caller sees the error and may call connect() again. */
    connectFailed(): void;
    /** @returns {number} the application closes: the number of queued frames dropped */
    close(): number;
    /**
     * Enter CLOSED (idempotent).
     * @param {number | null} [code]
     * @param {string | null} [reason]
     * @returns {Finish}
     */
    finish(code?: number | null, reason?: string | null): Finish;
    /** @private @returns {Finish} */
    private _finish;
    /** @private @returns {Reconnect | Finish} */
    private _nextAttempt;
    /**
     * @param {string} text
     * @returns {Promise<Decision>}
     * @private
     */
    private _challenge;
    /**
     * @param {string} text
     * @param {number} now
     * @returns {Promise<Decision>}
     * @private
     */
    private _registered;
    /**
     * @param {string} text
     * @returns {Promise<Decision>}
     * @private
     */
    private _routed;
    /**
     * The message in `text`, verified against its sender's DID (the gateway's messages against the
     * gateway DID of this session); InvalidMessageError saying why not.
     * @param {string} text
     * @returns {Promise<Message>}
     * @private
     */
    private _verified;
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
    send(to: string | null, type: string, payload: Record<string, unknown>, correlationId: string | null, now: number, extra?: Record<string, unknown>, encrypt?: boolean): Promise<{
        id: string;
        text: string | null;
    }>;
    /**
     * @returns {Promise<E2E>} this agent's end of end-to-end encryption (libsodium loaded on first use)
     * @private
     */
    private _encryption;
    /**
     * A PING for the gateway whose PONG becomes pingAnswered; `{ice_servers: true}` asks for fresh
     * ICE servers (docs/protocol.md section 19), which the PONG's `ice_servers` puts in `registration`.
     * @param {number} now seconds
     * @param {Record<string, unknown>} [payload]
     * @returns {Promise<{id: string, text: string}>}
     */
    ping(now: number, payload?: Record<string, unknown>): Promise<{
        id: string;
        text: string;
    }>;
    /**
     * The application is done with `message`: the ACK frame to write now, if it needs one.
     * @param {Message} message
     * @returns {Promise<string | null>}
     */
    handled(message: Message): Promise<string | null>;
    /**
     * @param {Message} message
     * @returns {Promise<string>}
     * @private
     */
    private _ack;
    /**
     * A MAILBOX request for the gateway (the agent's mailbox rules): its id and frame.
     * @param {Record<string, unknown>} payload
     * @returns {Promise<{id: string, text: string}>}
     */
    mailboxRequest(payload: Record<string, unknown>): Promise<{
        id: string;
        text: string;
    }>;
    /**
     * A request for the gateway (DISCOVER, WATCH, UNWATCH: directory.js): its id and frame.
     * @param {string} type
     * @param {Record<string, unknown>} payload
     * @returns {Promise<{id: string, text: string}>}
     */
    gatewayRequest(type: string, payload: Record<string, unknown>): Promise<{
        id: string;
        text: string;
    }>;
    /** @param {string} pingId ping() gave up waiting for this PONG */
    forgetPing(pingId: string): void;
    /** @returns {string | null} the oldest queued frame, when registered */
    nextQueued(): string | null;
    /** @param {number} now the frame nextQueued() returned was written */
    sentQueued(now: number): void;
    /**
     * Seconds to wait before the next frame keeps under the announced rate limit; 0: go (and the
     * token is taken, so call it once per frame, right before writing).
     * @param {number} now
     * @returns {number}
     */
    pace(now: number): number;
    /** @returns {number | null} how often to PING when idle (a third of agent_timeout), or null */
    get keepalivePeriod(): number | null;
    /**
     * Seconds until `keepalive` will have a PING to send; null: no keepalive (now).
     * @param {number} now
     * @returns {number | null}
     */
    keepaliveIn(now: number): number | null;
    /**
     * A PING for the gateway when nothing was sent for keepalivePeriod (AGENT_TIMEOUT).
     * @param {number} now
     * @returns {Promise<{kind: 'send', text: string} | null>}
     */
    keepalive(now: number): Promise<{
        kind: "send";
        text: string;
    } | null>;
    /**
     * Seconds until `liveness` has something to do; null: no liveness checks (now).
     * @param {number} now
     * @returns {number | null}
     */
    livenessIn(now: number): number | null;
    /**
     * Is the gateway still there? Browsers cannot send WebSocket pings, so when nothing arrived for
     * pingInterval seconds this PINGs the gateway (the PONG is consumed), and when that PING has no
     * answer after pingInterval more, the connection counts as gone (`dead`: drop it).
     * @param {number} now
     * @returns {Promise<{kind: 'send', text: string} | {kind: 'dead', reason: string} | null>}
     */
    liveness(now: number): Promise<{
        kind: "send";
        text: string;
    } | {
        kind: "dead";
        reason: string;
    } | null>;
}
export { reconnectPolicy };
/**
 * What the pump must do about one event.
 */
export type Decision = {
    kind: "send";
    text: string;
} | {
    kind: "registered";
    sessionId: string;
    reconnected: boolean;
    attempt: number;
} | {
    kind: "deliver";
    message: Message;
} | {
    kind: "report";
    error: InvalidMessageError;
} | {
    kind: "pingAnswered";
    pingId: string;
} | {
    kind: "fail";
    error: GatewayConnectionError;
} | {
    kind: "refused";
    error: GatewayError;
} | null;
export type Reconnect = {
    kind: "reconnect";
    attempt: number;
    delay: number;
};
export type Finish = {
    kind: "finish";
    code: number | null;
    reason: string | null;
    unsent: number;
};
/**
 * What the application chose for this client (fixed for its lifetime).
 */
export type SessionSettings = {
    metadata?: Record<string, unknown> | null | undefined;
    /**
     * the agent card, signed in REGISTER (directory.js; protocol section 21)
     */
    card?: Record<string, unknown> | null | undefined;
    /**
     * routable, but never discovered (protocol section 21.4)
     */
    unlisted?: boolean | undefined;
    expectedGatewayDid?: string | null | undefined;
    reconnect?: import("./backoff.js").FullPolicy | null | undefined;
    sendQueueSize?: number | undefined;
    pace?: boolean | undefined;
    keepalive?: boolean | undefined;
    /**
     * seconds without a frame from the gateway before a PING
     * probes it, and for its answer before the gateway counts as gone (null: never)
     */
    pingInterval?: number | null | undefined;
};
export type SessionClocks = {
    /**
     * milliseconds since the epoch, for timestamps
     */
    wallClock?: (() => number) | undefined;
    /**
     * a number in [0, 1], for the backoff
     */
    jitter?: (() => number) | undefined;
    /**
     * message ids
     */
    newId?: (() => string) | undefined;
};
export type Signer = {
    did: string;
    sign(data: Uint8Array): Promise<Uint8Array>;
};
import { Acknowledgements } from './mailbox.js';
import { Message } from './envelope.js';
import { reconnectPolicy } from './backoff.js';
import { InvalidMessageError } from './errors.js';
import { GatewayConnectionError } from './errors.js';
import { GatewayError } from './errors.js';
