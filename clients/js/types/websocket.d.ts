/**
 * The WebSocket constructor to use: `given`, else the global one, else the `ws` package.
 * @param {WebSocketConstructor | undefined} given
 * @returns {Promise<WebSocketConstructor>}
 */
export function webSocketClass(given: WebSocketConstructor | undefined): Promise<WebSocketConstructor>;
export const SUBPROTOCOL: "ioap.v1";
/** A frame: its text, or the bytes of a binary frame. */
/** @typedef {string | ArrayBuffer} Frame */
export class Connection {
    /**
     * Open a WebSocket to `url` offering ioap.v1; GatewayConnectionError when it does not open
     * within `timeout` seconds or is refused.
     * @param {string} url
     * @param {{WebSocket?: WebSocketConstructor, timeout: number}} options
     * @returns {Promise<Connection>}
     */
    static open(url: string, options: {
        WebSocket?: WebSocketConstructor;
        timeout: number;
    }): Promise<Connection>;
    /** @param {WebSocket} ws */
    constructor(ws: WebSocket);
    ws: WebSocket;
    /** @type {Frame[]} */
    _frames: Frame[];
    /** @type {((frame: Frame | null) => void) | null} */
    _waiter: ((frame: Frame | null) => void) | null;
    _ended: boolean;
    /** @type {number | null} */
    closeCode: number | null;
    /** @type {string | null} */
    closeReason: string | null;
    /** @type {{status: number, retryAfter: number | null, body: string} | null} a refused upgrade (ws only) */
    _refusal: {
        status: number;
        retryAfter: number | null;
        body: string;
    } | null;
    /** @type {Promise<void>} */
    closed: Promise<void>;
    /**
     * @param {string} url
     * @param {number} timeout seconds
     * @returns {Promise<void>}
     */
    _opened(url: string, timeout: number): Promise<void>;
    /**
     * @param {Frame | null} frame
     */
    _wake(frame: Frame | null): void;
    /**
     * The next frame, or null once the connection has closed and every frame was read.
     * @returns {Promise<Frame | null>}
     */
    read(): Promise<Frame | null>;
    get open(): boolean;
    /**
     * Write one text frame; false when the connection is not open (nothing was sent).
     * @param {string} text
     * @returns {boolean}
     */
    write(text: string): boolean;
    /**
     * Start the closing handshake.
     * @param {number} [code]
     * @param {string} [reason]
     */
    close(code?: number, reason?: string): void;
    /**
     * The peer is gone: end this connection now (read() returns null, `closed` resolves) with
     * `code` and `reason`, without waiting for a closing handshake that may never come.
     * @param {number} code
     * @param {string} reason
     */
    drop(code: number, reason: string): void;
    /** Drop the connection without waiting for the peer. */
    abort(): void;
}
/**
 * The WebSocket constructor shape this client needs (the browser's, Node 22's, or `ws`).
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;
export type Frame = string | ArrayBuffer;
