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
    /** @private @type {AgentKey | null} */
    private _key;
    connectTimeout: number;
    closeTimeout: number;
    /** @private */
    private _options;
    /** @private */
    private _settings;
    /** @private @type {ClientSession | null} */
    private _session;
    /** @private @type {Connection | null} */
    private _connection;
    /** @private @type {Inbox<Message | typeof CLOSED>} */
    private _inbox;
    /** @private @type {Array<{handler: (message: Message) => unknown, types: Set<string> | null}>} */
    private _handlers;
    /** @private @type {Array<(error: InvalidMessageError) => unknown>} */
    private _invalidHandlers;
    /** @private @type {Array<(event: ConnectionEvent) => unknown>} */
    private _connectionHandlers;
    /** @private @type {Map<string, {resolve: () => void, reject: (error: Error) => void}>} */
    private _pings;
    /** @private @type {Map<string, string>} the mailbox's receipts: status by message id */
    private _receipts;
    /** @private @type {Map<string, Array<(status: string) => void>>} */
    private _receiptWaiters;
    /** @private @type {Map<string, {resolve: (view: Record<string, unknown>) => void, reject: (error: Error) => void}>} */
    private _mailboxRequests;
    /** @private @type {Map<string, {resolve: (answer: Message) => void, reject: (error: Error) => void}>} DISCOVER, WATCH, UNWATCH */
    private _directoryRequests;
    /** @private the DIDs watched, watched again after a reconnection */
    private _watching;
    /** @private @type {Array<(event: PresenceEvent) => unknown>} */
    private _presenceHandlers;
    /** @private @type {Array<PresenceEvent | typeof CLOSED>} events for presence(), newest kept */
    private _presenceQueue;
    /** @private @type {Array<(item: PresenceEvent | typeof CLOSED) => void>} */
    private _presenceReceivers;
    /** @private @type {ReturnType<typeof setTimeout> | null} */
    private _keepaliveTimer;
    /** @private @type {ReturnType<typeof setTimeout> | null} */
    private _livenessTimer;
    /** @private @type {{cancel: () => void} | null} */
    private _reconnecting;
    /** @private @type {Promise<void> | null} */
    private _reading;
    /** @private */
    private _flushing;
    /** @private @type {Promise<unknown>} the sends so far, chained: frames leave in call order */
    private _sending;
    /** @private @type {import('./session.js').Finish | null} */
    private _finished;
    /** @private @type {PeerManager | null} peer channels, made on first use (peer.js) */
    private _peers;
    /** @private @type {Promise<void>} */
    private _done;
    /** @private */
    private _markDone;
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
    /**
     * REGISTERED's whole payload: `did`, `session_id`, `agent_timeout`, `ping_interval`, `rate_limit`,
     * and what later gateways announce there (the ICE servers of peer channels, for one).
     * @returns {Record<string, unknown> | null}
     */
    get registration(): Record<string, unknown> | null;
    /**
     * The ICE servers REGISTERED announced (`ice_servers`, RTCIceServer-shaped: `urls`, `username`,
     * `credential`), for peer channels; [] when the gateway announced none.
     * @returns {import('./peer.js').IceServer[]}
     */
    get iceServers(): import("./peer.js").IceServer[];
    /** @returns {{messagesPerSecond: number, burst: number} | null} the limit REGISTERED announced */
    get rateLimit(): {
        messagesPerSecond: number;
        burst: number;
    } | null;
    /** successful reconnections so far */
    get reconnects(): number;
    /** mailbox messages received again (after a reconnection) and not handed on twice */
    get duplicates(): number;
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
    /** @private @returns {ClientSession} */
    private _sessionOrFail;
    /**
     * One attempt: open a WebSocket, register on it, start reading and the keepalive.
     * @returns {Promise<import('./session.js').Decision>}
     * @private
     */
    private _open;
    /**
     * Feed frames to the session until it registers, fails, or is refused.
     * @param {Connection} connection
     * @private
     */
    private _handshake;
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
     * @private
     */
    private _emit;
    /**
     * The registered connection ended: finish, or reconnect when the session says so.
     * @param {Connection} connection
     * @private
     */
    private _connectionLost;
    /**
     * Come back after a lost connection: wait as the session says, then re-register.
     * @param {import('./session.js').Reconnect} first
     * @private
     */
    private _reconnect;
    /**
     * The client is finished: release the socket, end receive(), tell handlers (once).
     * @param {import('./session.js').Finish} decision
     * @private
     */
    private _finish;
    /** @private */
    private _failPings;
    /** @private @param {Connection} connection */
    private _scheduleKeepalive;
    /** @private */
    private _stopKeepalive;
    /** @private @param {Connection} connection */
    private _scheduleLiveness;
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
    send(to: string, type: string, payload?: Record<string, unknown>, options?: {
        correlationId?: string | null;
        extra?: Record<string, unknown>;
        encrypt?: boolean;
        ttl?: number;
    }): Promise<string>;
    /**
     * @param {string} to
     * @param {string} type
     * @param {Record<string, unknown>} payload
     * @param {{correlationId?: string | null, extra?: Record<string, unknown>, encrypt?: boolean}} options
     * @returns {Promise<string>}
     * @private
     */
    private _send;
    /** @private Send the queued frames in order; stop (keeping the rest) if the connection drops. */
    private _flushOutbox;
    /** @private Wait until the gateway's announced rate limit allows one more frame. */
    private _paced;
    /**
     * Send a frame exactly as given (tests and tools; no signing, no checks).
     * @param {string} text
     */
    sendRaw(text: string): void;
    /**
     * PING the gateway; the round-trip time in seconds. TimeoutError after `timeout` seconds.
     * @param {{timeout?: number, payload?: Record<string, unknown>}} [options]
     * @returns {Promise<number>}
     */
    ping(options?: {
        timeout?: number;
        payload?: Record<string, unknown>;
    }): Promise<number>;
    /** @private @returns {PeerManager} */
    private _peerManager;
    /**
     * Open a WebRTC data channel to the agent `did` (ordered, reliable, authenticated by both DIDs);
     * resolves once it is open. Rejects with a PeerError: PeerRefused, PeerTimeout, PeerUnknownAgent,
     * PeerICEFailed, PeerIdentityError (docs/protocol.md section 19), or a PeerError saying that this
     * runtime has no RTCPeerConnection (Node). `fallback: true` relays through the gateway when ICE fails.
     * @param {string} did
     * @param {import('./peer.js').ConnectPeerOptions} [options]
     * @returns {Promise<import('./peer.js').PeerChannel>}
     */
    connectPeer(did: string, options?: import("./peer.js").ConnectPeerOptions): Promise<import("./peer.js").PeerChannel>;
    /**
     * Accept the channels other agents open to this one: `handler(channel)` gets each, open.
     * Without onPeer or peers(), OFFERs are refused (PEER_REFUSED).
     * @param {(channel: import('./peer.js').PeerChannel) => unknown} handler
     * @returns {() => void} removes the handler
     */
    onPeer(handler: (channel: import("./peer.js").PeerChannel) => unknown): () => void;
    /** @returns {AsyncIterableIterator<import('./peer.js').PeerChannel>} the channels other agents open, accepted */
    peers(): AsyncIterableIterator<import("./peer.js").PeerChannel>;
    /**
     * Accept only the OFFERs for which `policy(peerDid, label)` (plain or async) is true.
     * @param {(peerDid: string, label: string) => boolean | Promise<boolean>} policy
     */
    acceptPeers(policy: (peerDid: string, label: string) => boolean | Promise<boolean>): void;
    /**
     * Settings for every later peer channel: `iceServers` replaces the gateway's (null: the gateway's
     * again), `relayOnly` uses TURN candidates only.
     * @param {{iceServers?: import('./peer.js').IceServer[] | null, relayOnly?: boolean}} settings
     */
    configurePeers(settings: {
        iceServers?: import("./peer.js").IceServer[] | null;
        relayOnly?: boolean;
    }): void;
    /**
     * Ask the gateway for fresh ICE servers (new TURN credentials: PING `{ice_servers: true}`);
     * resolves to `iceServers`. connectPeer does it by itself a minute before credentials expire.
     * @param {{timeout?: number}} [options]
     * @returns {Promise<import('./peer.js').IceServer[]>}
     */
    refreshIceServers(options?: {
        timeout?: number;
    }): Promise<import("./peer.js").IceServer[]>;
    /** @returns {import('./peer.js').PeerChannel[]} the peer channels open now */
    get channels(): import("./peer.js").PeerChannel[];
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
     * @private
     */
    private _takers;
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
    /**
     * What became of the message `messageId` sent with a ttl: 'DELIVERED' (its recipient acknowledged
     * it) or 'EXPIRED' (its time to live ran out first). Waits for the RECEIPT (TimeoutError after
     * `timeout` seconds); one that already came is answered at once. The RECEIPT also reaches
     * onMessage / receive() as a message.
     * @param {string} messageId
     * @param {{timeout?: number | null}} [options]
     * @returns {Promise<string>}
     */
    receipt(messageId: string, options?: {
        timeout?: number | null;
    }): Promise<string>;
    /**
     * This agent's mailbox at the gateway: `enabled: false` refuses every stored message (senders get
     * MAILBOX_REFUSED), `blocked` the DIDs whose messages it refuses (replacing the list); a rule left
     * out stays as it is. Resolves to the mailbox as the gateway reports it ({enabled, blocked,
     * messages, bytes, receipts}); GatewayError when the gateway refuses (MAILBOX_REFUSED: no mailbox).
     * @param {{enabled?: boolean, blocked?: string[], timeout?: number}} [options]
     * @returns {Promise<Record<string, unknown>>}
     */
    mailbox(options?: {
        enabled?: boolean;
        blocked?: string[];
        timeout?: number;
    }): Promise<Record<string, unknown>>;
    /**
     * A message from the gateway the mailbox consumes: a RECEIPT is recorded (and acknowledged), a
     * MAILBOX answer (or ERROR) to mailbox() resolves it; true when it is not delivered further.
     * @param {Message} message
     * @returns {Promise<boolean>}
     * @private
     */
    private _fromMailbox;
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
    discover(query?: import("./directory.js").DiscoveryQuery | string, options?: {
        timeout?: number;
    }): Promise<import("./directory.js").DiscoveryPage>;
    /**
     * Every matching agent, page after page.
     * @param {Omit<import('./directory.js').DiscoveryQuery, 'limit' | 'cursor'> | string} [query]
     * @param {{timeout?: number}} [options]
     * @returns {AsyncGenerator<import('./directory.js').DiscoveredAgent>}
     */
    discoverAll(query?: Omit<import("./directory.js").DiscoveryQuery, "limit" | "cursor"> | string, options?: {
        timeout?: number;
    }): AsyncGenerator<import("./directory.js").DiscoveredAgent>;
    /**
     * Watch these agents' presence: their state now ({did: 'online' | 'offline'}); from then on a
     * PresenceEvent for each change (onPresence, presence()). Watched again by itself after a
     * reconnection. GatewayError over the gateway's WATCH_LIMIT.
     * @param {string[]} dids
     * @param {{timeout?: number}} [options]
     * @returns {Promise<Record<string, 'online' | 'offline'>>}
     */
    watch(dids: string[], options?: {
        timeout?: number;
    }): Promise<Record<string, "online" | "offline">>;
    /**
     * Stop watching these agents.
     * @param {string[]} dids
     * @param {{timeout?: number}} [options]
     * @returns {Promise<void>}
     */
    unwatch(dids: string[], options?: {
        timeout?: number;
    }): Promise<void>;
    /** @returns {string[]} the DIDs this client watches */
    get watching(): string[];
    /**
     * Call `handler(event)` (plain or async) for each PresenceEvent of a watched agent (then
     * presence() gets none); returns a function that removes it.
     * @param {(event: PresenceEvent) => unknown} handler
     * @returns {() => void}
     */
    onPresence(handler: (event: PresenceEvent) => unknown): () => void;
    /** @returns {AsyncGenerator<PresenceEvent>} the PresenceEvents of watched agents as they come; ends when the client is closed */
    presence(): AsyncGenerator<PresenceEvent>;
    /**
     * Send a request to the gateway; its answer, or GatewayError for an ERROR answer.
     * @param {string} type
     * @param {Record<string, unknown>} payload
     * @param {number} timeout
     * @returns {Promise<Message>}
     * @private
     */
    private _ask;
    /**
     * A message from the gateway that discovery consumes: the answer to a request, or PRESENCE;
     * true when it is not delivered further.
     * @param {Message} message
     * @returns {Promise<boolean>}
     * @private
     */
    private _fromDirectory;
    /**
     * @param {PresenceEvent} event
     * @private
     */
    private _queuePresence;
    /** @private After a reconnection the new session watches nothing: watch the same DIDs again. */
    private _watchAgain;
    /** @private The client is finished: pending requests fail, presence() ends. */
    private _closeDirectory;
    /**
     * The application is done with `message`: acknowledge it if the gateway keeps it (when the
     * connection is gone, the gateway sends it again and it is acknowledged then).
     * @param {Message} message
     * @private
     */
    private _handled;
    /** @private @param {Message | typeof CLOSED} item */
    private _push;
    /**
     * @param {Message} message
     * @returns {Promise<void>}
     * @private
     */
    private _callHandlers;
    /** @private @param {Connection} connection */
    private _readLoop;
    /** @returns {AsyncIterator<Message>} every message until the connection is over */
    [Symbol.asyncIterator](): AsyncIterator<Message>;
}
export { GatewayError };
export type Message = import("./envelope.js").Message;
export type PresenceEvent = import("./directory.js").PresenceEvent;
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
     * this agent's card, signed in REGISTER, which other agents find with discover():
     * {name, description, version, capabilities, ...} (docs/protocol.md section 21.1); checked at once (TypeError)
     */
    card?: Record<string, unknown> | undefined;
    /**
     * routable as usual, but never returned by discover() (default false)
     */
    unlisted?: boolean | undefined;
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
     * WebRTC for peer channels (default: the global one, which
     * browsers have and Node has not)
     */
    RTCPeerConnection?: {
        new (configuration?: RTCConfiguration): RTCPeerConnection;
        prototype: RTCPeerConnection;
        generateCertificate(keygenAlgorithm: AlgorithmIdentifier): Promise<RTCCertificate>;
    } | null | undefined;
    /**
     * time, jitter and ids (tests)
     */
    clocks?: import("./session.js").SessionClocks | undefined;
};
import { AgentKey } from './keys.js';
import { GatewayError } from './errors.js';
