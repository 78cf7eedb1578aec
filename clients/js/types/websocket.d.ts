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
    /** @private @type {Frame[]} */
    private _frames;
    /** @private @type {((frame: Frame | null) => void) | null} */
    private _waiter;
    /** @private */
    private _ended;
    /** @type {number | null} */
    closeCode: number | null;
    /** @type {string | null} */
    closeReason: string | null;
    /** @private @type {{status: number, retryAfter: number | null, body: string} | null} a refused upgrade (ws only) */
    private _refusal;
    /** @type {Promise<void>} */
    closed: Promise<void>;
    /**
     * @param {string} url
     * @param {number} timeout seconds
     * @returns {Promise<void>}
     * @private
     */
    private _opened;
    /**
     * @param {Frame | null} frame
     * @private
     */
    private _wake;
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
