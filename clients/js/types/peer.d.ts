/**
 * True when a TURN REST username (`<expiry>:<user>`) among `servers` expires before `by` (Unix seconds).
 * @param {IceServer[]} servers
 * @param {number} by
 * @returns {boolean}
 */
export function credentialsExpire(servers: IceServer[], by: number): boolean;
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
export const CALLEE_TIMEOUT: 30;
/** seconds before TURN credentials expire that fresh ones are asked for */
export const REFRESH_MARGIN: 60;
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
    constructor(peerDid: string, label: string, negotiationId: string, closer: (channel: PeerChannel, reason: string) => Promise<void>, consumed: (channel: PeerChannel) => void);
    /** the agent at the other end, whose signed SDP the DTLS certificate matched */
    peerDid: string;
    label: string;
    negotiationId: string;
    /** @type {'connecting' | 'open' | 'closed' | 'failed'} */
    state: "connecting" | "open" | "closed" | "failed";
    /** @type {'direct' | 'turn' | 'relay' | null} null until open */
    transport: "direct" | "turn" | "relay" | null;
    /** @type {string | null} */
    closeReason: string | null;
    /** @type {number | null} seconds from the start of the negotiation until the channel opened */
    openedIn: number | null;
    /** @type {{send: (data: ChannelData) => Promise<void>} | null} */
    link: {
        send: (data: ChannelData) => Promise<void>;
    } | null;
    /** @private */
    private _closer;
    /** @private */
    private _consumed;
    /** @private @type {Inbox<ChannelData | typeof END>} */
    private _inbox;
    /** @private @type {Array<(event: PeerEvent) => unknown>} */
    private _handlers;
    /** @private @type {Promise<void>} */
    private _done;
    /** @private */
    private _markDone;
    /**
     * Send one message (a string, or bytes as a Uint8Array / ArrayBuffer); PeerClosed when the
     * channel is not open. Waits while the data channel's buffer is full (or the relay window).
     * @param {ChannelData | ArrayBuffer} data
     * @returns {Promise<void>}
     */
    send(data: ChannelData | ArrayBuffer): Promise<void>;
    /**
     * The next message, in order (a string, or a Uint8Array for bytes); PeerClosed once the channel
     * ended and every message before the end was read; PeerError TIMEOUT after `timeout` seconds.
     * @param {{timeout?: number | null}} [options]
     * @returns {Promise<ChannelData>}
     */
    receive(options?: {
        timeout?: number | null;
    }): Promise<ChannelData>;
    /**
     * Close the channel; the peer sees it closed too. Idempotent.
     * @param {string} [reason]
     * @returns {Promise<void>}
     */
    close(reason?: string): Promise<void>;
    /** @returns {Promise<void>} resolves when the channel is closed or failed */
    waitClosed(): Promise<void>;
    /**
     * Call `handler({state, reason})` when the channel opens, closes or fails; returns a remover.
     * @param {(event: PeerEvent) => unknown} handler
     * @returns {() => void}
     */
    onEvent(handler: (event: PeerEvent) => unknown): () => void;
    /**
     * @param {'direct' | 'turn' | 'relay'} transport
     * @param {{send: (data: ChannelData) => Promise<void>}} link
     */
    _opened(transport: "direct" | "turn" | "relay", link: {
        send: (data: ChannelData) => Promise<void>;
    }): void;
    /** @param {ChannelData} data */
    _delivered(data: ChannelData): void;
    /**
     * The channel is over: receivers see the end after what was queued.
     * @param {'closed' | 'failed'} state
     * @param {string} reason
     */
    _ended(state: "closed" | "failed", reason: string): void;
    /** @private @param {ChannelData | typeof END} item */
    private _push;
    /** @private @param {PeerEvent} event */
    private _emit;
    /** @returns {AsyncIterator<ChannelData>} every message until the channel ends */
    [Symbol.asyncIterator](): AsyncIterator<ChannelData>;
}
/** Every peer channel of one GatewayClient. */
export class PeerManager {
    /**
     * @param {PeerClient} client
     * @param {{RTCPeerConnection?: typeof RTCPeerConnection | null}} [options]
     */
    constructor(client: PeerClient, options?: {
        RTCPeerConnection?: typeof RTCPeerConnection | null;
    });
    client: PeerClient;
    signaling: PeerSignaling;
    /** @type {Map<string, Attempt>} */
    attempts: Map<string, Attempt>;
    /** @type {typeof RTCPeerConnection | null} */
    RTCPeerConnection: typeof RTCPeerConnection | null;
    /** @type {IceServer[] | null} null: the gateway's (REGISTERED's ice_servers) */
    iceServers: IceServer[] | null;
    relayOnly: boolean;
    /** @private @type {Array<(channel: PeerChannel) => unknown>} */
    private _handlers;
    /** @private @type {((peerDid: string, label: string) => boolean | Promise<boolean>) | null} */
    private _accept;
    /** @private */
    private _listening;
    /** @private @type {Array<PeerChannel | typeof END>} */
    private _incoming;
    /** @private @type {Array<(item: PeerChannel | typeof END) => void>} */
    private _takers;
    /** @private */
    private _closed;
    /**
     * Open a channel to `peerDid`; resolves once it is open (and the peer's identity proved).
     * @param {string} peerDid
     * @param {ConnectPeerOptions} [options]
     * @returns {Promise<PeerChannel>}
     */
    connect(peerDid: string, options?: ConnectPeerOptions): Promise<PeerChannel>;
    /** @private The gateway's TURN credentials expire: ask for new ones a minute before. */
    private _freshIceServers;
    /**
     * Call `handler(channel)` for every channel another agent opens to this one (accepting them).
     * @param {(channel: PeerChannel) => unknown} handler
     * @returns {() => void} removes the handler
     */
    onPeer(handler: (channel: PeerChannel) => unknown): () => void;
    /**
     * Decide which OFFERs to accept: `policy(peerDid, label)` (plain or async) true accepts.
     * @param {(peerDid: string, label: string) => boolean | Promise<boolean>} policy
     */
    acceptPolicy(policy: (peerDid: string, label: string) => boolean | Promise<boolean>): void;
    /** @returns {AsyncIterableIterator<PeerChannel>} the channels other agents open, as they open */
    peers(): AsyncIterableIterator<PeerChannel>;
    /** @returns {PeerChannel[]} the channels open now */
    channels(): PeerChannel[];
    /**
     * The client closes: close every channel (telling the peers, within 2 s), end peers().
     * @returns {Promise<void>}
     */
    close(): Promise<void>;
    /**
     * Handle `message` when it belongs to a negotiation (true), else leave it (false).
     * @param {Message} message
     * @returns {boolean}
     */
    takes(message: Message): boolean;
    /** @private @param {Outcome} outcome */
    private _route;
    /** @private @param {Outcome} reply */
    private _reply;
    /**
     * @private
     * @param {Negotiation} negotiation
     * @param {number} timeout
     * @param {boolean | null} relayOnly
     * @param {IceServer[] | null} iceServers
     * @returns {Attempt}
     */
    private _attempt;
    /** @private @param {Attempt} attempt @param {number} timeout */
    private _arm;
    /**
     * Run `work` after the attempt's earlier work, unless the attempt ended meanwhile.
     * @private
     * @param {Attempt} attempt
     * @param {() => Promise<void>} work
     */
    private _push;
    /**
     * The RTCPeerConnection of an attempt, with its negotiated data channel (id 0, ordered).
     * @private
     * @param {Attempt} attempt
     * @returns {RTCPeerConnection}
     */
    private _connection;
    /**
     * Our gathering is complete without a single candidate (relay-only without TURN): ICE cannot
     * succeed, and the browser would wait; fail once connecting, as the Python SDK does.
     * @private @param {Attempt} attempt
     */
    private _noCandidates;
    /**
     * The local description without candidates (they are trickled), noting our certificate's fingerprint.
     * @private
     * @param {Attempt} attempt
     * @param {RTCPeerConnection} pc
     * @returns {{type: string, sdp: string}}
     */
    private _local;
    /** @private @param {Attempt} attempt */
    private _offer;
    /**
     * A new OFFER: ask the application (unless glare made it ours), then accept or refuse.
     * @private @param {Attempt} attempt
     */
    private _decide;
    /**
     * @private
     * @param {Attempt} attempt
     * @param {Decision[]} decisions
     */
    private _carryOut;
    /**
     * The data channel opened, so DTLS is up: the certificate's digests and the kind of route.
     * @private
     * @param {Attempt} attempt
     * @param {RTCPeerConnection} pc
     */
    private _dtlsUp;
    /**
     * @private
     * @param {Attempt} attempt
     * @param {ChannelData} message
     */
    private _checkProof;
    /**
     * @private
     * @param {Attempt} attempt
     * @param {{type: string, sdp: string}} description
     */
    private _apply;
    /**
     * @private
     * @param {Attempt} attempt
     * @param {string} type
     * @param {Record<string, unknown>} payload
     * @param {boolean} [encrypt]
     */
    private _signal;
    /**
     * ICE failed and both sides allow the fallback: drop the RTCPeerConnection, relay through the
     * gateway. Data frames go encrypted end to end when libsodium.js can be loaded (as the Python
     * SDK's), else signed in clear, which the protocol allows (a warning says so).
     * @private @param {Attempt} attempt
     */
    private _startRelay;
    /**
     * @private
     * @param {Attempt} attempt
     * @param {'direct' | 'turn' | 'relay'} transport
     */
    private _opened;
    /** @private @param {PeerChannel | typeof END} item */
    private _offerIncoming;
    /**
     * @private
     * @param {Attempt} attempt
     * @param {ChannelData} data
     */
    private _dataSend;
    /**
     * One relayed message: numbered, within the window, through the gateway (paced by the client).
     * @private
     * @param {Attempt} attempt
     * @param {ChannelData} data
     */
    private _relaySend;
    /**
     * @private
     * @param {Attempt} attempt
     * @param {Record<string, unknown>} frame
     */
    private _relayFrame;
    /** @private @param {PeerChannel} channel */
    private _consumedOne;
    /**
     * @private
     * @param {PeerChannel} channel
     * @param {string} reason
     */
    private _closeChannel;
    /**
     * Release the attempt: its connection, its timer; tell the channel and the waiter.
     * @private
     * @param {Attempt} attempt
     * @param {'closed' | 'failed'} state
     * @param {string} reason
     * @param {PeerError} [error]
     */
    private _end;
}
export type Negotiation = import("./peer-signaling.js").Negotiation;
export type Decision = import("./peer-signaling.js").Decision;
export type Outcome = import("./peer-signaling.js").Outcome;
export type Message = import("./envelope.js").Message;
export type IceServer = {
    urls: string | string[];
    username?: string;
    credential?: string;
};
export type ChannelData = string | Uint8Array;
export type ConnectPeerOptions = {
    /**
     * the data channel's label (default "default"; 0-128 characters)
     */
    label?: string | undefined;
    /**
     * seconds for the channel to open (default 20)
     */
    timeout?: number | undefined;
    /**
     * relay through the gateway when ICE fails (default false)
     */
    fallback?: boolean | undefined;
    /**
     * replace the gateway's ICE servers for this channel
     */
    iceServers?: IceServer[] | undefined;
    /**
     * TURN candidates only (iceTransportPolicy "relay")
     */
    relayOnly?: boolean | undefined;
};
/**
 * What a PeerManager needs of its client (GatewayClient has it).
 */
export type PeerClient = {
    did: string | null;
    gatewayDid: string | null;
    key: {
        did: string;
        sign: (data: Uint8Array) => Promise<Uint8Array>;
    } | null;
    iceServers: IceServer[];
    send: (to: string, type: string, payload: Record<string, unknown>, options?: {
        encrypt?: boolean;
    }) => Promise<string>;
    connected?: boolean | undefined;
    refreshIceServers?: (() => Promise<unknown>) | undefined;
};
/**
 * A change of a channel's state: `state` (open, closed, failed) and why.
 */
export type PeerEvent = {
    state: string;
    reason: string | null;
};
import { PeerSignaling } from './peer-signaling.js';
/** The I/O of one negotiation. */
declare class Attempt {
    /**
     * @param {Negotiation} negotiation
     * @param {PeerChannel} channel
     */
    constructor(negotiation: Negotiation, channel: PeerChannel);
    negotiation: import("./peer-signaling.js").Negotiation;
    channel: PeerChannel;
    /** @type {RTCPeerConnection | null} */
    pc: RTCPeerConnection | null;
    /** @type {RTCDataChannel | null} */
    dc: RTCDataChannel | null;
    /** @type {RelayStream | null} */
    relay: RelayStream | null;
    encryptRelay: boolean;
    /** @type {Array<() => void>} senders waiting for relay credit or buffer room */
    waiting: Array<() => void>;
    /** @type {Promise<void>} the work so far, chained */
    chain: Promise<void>;
    /** @type {{resolve: (channel: PeerChannel) => void, reject: (error: Error) => void} | null} */
    waiter: {
        resolve: (channel: PeerChannel) => void;
        reject: (error: Error) => void;
    } | null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    deadline: ReturnType<typeof setTimeout> | null;
    relayOnly: boolean;
    /** @type {IceServer[]} */
    iceServers: IceServer[];
    ended: boolean;
    candidatesSent: number;
    gatheringDone: boolean;
    proofSeen: boolean;
    peerCertificate: string;
    localFingerprint: string;
    started: number;
    closing: boolean;
    /** @type {Promise<void> | null} the relayed sends so far, chained */
    relaySending: Promise<void> | null;
    wake(): void;
}
import { RelayStream } from './peer-signaling.js';
export {};
