/**
 * One WebSocket connection to the gateway, read one frame at a time (`read()`), so the client
 * handles frames in order and awaits each one (verification is asynchronous in WebCrypto).
 *
 * Browsers and Node >= 22 have a global WebSocket; on Node 20 the `ws` package stands in (loaded
 * only then, so a browser page loads nothing else).
 * @module
 */

import { GatewayConnectionError } from './errors.js';

export const SUBPROTOCOL = 'ioap.v1';

/**
 * The WebSocket constructor shape this client needs (the browser's, Node 22's, or `ws`).
 * @typedef {new (url: string, protocols?: string | string[]) => WebSocket} WebSocketConstructor
 */

/** @type {Promise<WebSocketConstructor> | null} */
let fallback = null;

/**
 * The WebSocket constructor to use: `given`, else the global one, else the `ws` package.
 * @param {WebSocketConstructor | undefined} given
 * @returns {Promise<WebSocketConstructor>}
 */
export function webSocketClass(given) {
  if (given) return Promise.resolve(given);
  if (typeof globalThis.WebSocket === 'function') return Promise.resolve(globalThis.WebSocket);
  if (fallback === null) {
    const name = 'ws'; // a variable: bundlers and type checkers leave it alone
    fallback = import(name).then((module) => /** @type {WebSocketConstructor} */ (module.WebSocket ?? module.default))
      .catch(() => {
        fallback = null;
        throw new GatewayConnectionError('this JavaScript runtime has no WebSocket; on Node 20 install the '
          + "'ws' package (npm install ws), or pass the WebSocket option");
      });
  }
  return fallback;
}

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
  static async open(url, options) {
    const Socket = await webSocketClass(options.WebSocket);
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new Socket(url, SUBPROTOCOL);
    } catch (error) {
      throw new GatewayConnectionError(`cannot connect to ${url}: ${error instanceof Error ? error.message : error}`);
    }
    const connection = new Connection(ws);
    await connection._opened(url, options.timeout);
    return connection;
  }

  /** @param {WebSocket} ws */
  constructor(ws) {
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    /** @private @type {Frame[]} */
    this._frames = [];
    /** @private @type {((frame: Frame | null) => void) | null} */
    this._waiter = null;
    /** @private */
    this._ended = false;
    /** @type {number | null} */
    this.closeCode = null;
    /** @type {string | null} */
    this.closeReason = null;
    /** @private @type {{status: number, retryAfter: number | null, body: string} | null} a refused upgrade (ws only) */
    this._refusal = null;
    /** @type {Promise<void>} */
    this.closed = new Promise((resolve) => {
      ws.addEventListener('close', (event) => {
        if (!this._ended) { // else drop() already ended it, with its own code and reason
          this.closeCode = event.code;
          this.closeReason = event.reason;
        }
        this._ended = true;
        this._wake(null);
        resolve();
      });
    });
    ws.addEventListener('message', (event) => {
      const data = event.data;
      this._wake(typeof data === 'string' ? data : data instanceof ArrayBuffer ? data : new ArrayBuffer(0));
    });
    const node = /** @type {{on?: Function}} */ (/** @type {unknown} */ (ws));
    if (typeof node.on === 'function') { // the ws package: read why an upgrade was refused
      node.on.call(ws, 'unexpected-response', (/** @type {any} */ request, /** @type {any} */ response) => {
        /** @type {any[]} Node Buffers */
        const chunks = [];
        response.on('data', (/** @type {any} */ chunk) => chunks.push(chunk));
        response.on('end', () => {
          const retry = Number.parseFloat(response.headers['retry-after']);
          this._refusal = {
            status: response.statusCode,
            retryAfter: Number.isFinite(retry) ? retry : null,
            body: chunks.map((chunk) => chunk.toString('utf8')).join('').trim(),
          };
          /** @type {any} */ (ws).terminate(); // ends the refused handshake: 'close' follows
        });
      });
    }
  }

  /**
   * @param {string} url
   * @param {number} timeout seconds
   * @returns {Promise<void>}
   * @private
   */
  _opened(url, timeout) {
    return new Promise((resolve, reject) => {
      const ws = this.ws;
      const timer = setTimeout(() => {
        cleanup();
        this.abort();
        reject(new GatewayConnectionError(`cannot connect to ${url}: no WebSocket handshake within ${timeout} s (connectTimeout)`));
      }, timeout * 1000);
      const onOpen = () => {
        cleanup();
        resolve();
      };
      /** @param {Event} event */
      const onFail = (event) => {
        cleanup();
        const refusal = this._refusal;
        if (refusal) {
          reject(new GatewayConnectionError(`gateway at ${url} refused the WebSocket handshake: ${refusal.status} ${refusal.body}`,
            { status: refusal.status, retryAfter: refusal.retryAfter }));
          return;
        }
        const said = /** @type {{message?: unknown}} */ (event).message;
        reject(new GatewayConnectionError(`cannot connect to ${url}: the WebSocket did not open${
          typeof said === 'string' && said ? ` (${said})` : ''}; a browser does not show why: gateway down, `
          + 'wrong URL or port, TLS mismatch (ws:// vs wss://), or an HTTP refusal'));
      };
      const cleanup = () => {
        clearTimeout(timer);
        ws.removeEventListener('open', onOpen);
        ws.removeEventListener('close', onFail);
        ws.removeEventListener('error', onFail);
      };
      ws.addEventListener('open', onOpen);
      // 'error' or 'close', whichever comes first (Node 22's WebSocket may send no 'close' when it
      // cannot connect; the ws package stays quiet when nobody listens to 'error')
      ws.addEventListener('close', onFail);
      ws.addEventListener('error', onFail);
      ws.addEventListener('error', () => {}); // an unheard 'error' would throw in ws
    });
  }

  /**
   * @param {Frame | null} frame
   * @private
   */
  _wake(frame) {
    const waiter = this._waiter;
    if (waiter !== null) {
      this._waiter = null;
      waiter(frame);
    } else if (frame !== null) {
      this._frames.push(frame);
    }
  }

  /**
   * The next frame, or null once the connection has closed and every frame was read.
   * @returns {Promise<Frame | null>}
   */
  read() {
    const frame = this._frames.shift();
    if (frame !== undefined) return Promise.resolve(frame);
    if (this._ended) return Promise.resolve(null);
    return new Promise((resolve) => {
      this._waiter = resolve;
    });
  }

  get open() {
    return this.ws.readyState === 1;
  }

  /**
   * Write one text frame; false when the connection is not open (nothing was sent).
   * @param {string} text
   * @returns {boolean}
   */
  write(text) {
    if (this.ws.readyState !== 1) return false;
    this.ws.send(text);
    return true;
  }

  /**
   * Start the closing handshake.
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    if (this.ws.readyState === 0 || this.ws.readyState === 1) {
      try {
        this.ws.close(code, reason);
      } catch {
        this.ws.close();
      }
    }
  }

  /**
   * The peer is gone: end this connection now (read() returns null, `closed` resolves) with
   * `code` and `reason`, without waiting for a closing handshake that may never come.
   * @param {number} code
   * @param {string} reason
   */
  drop(code, reason) {
    this.abort();
    if (!this._ended) {
      this.closeCode = code;
      this.closeReason = reason;
      this._ended = true;
      this._wake(null);
    }
  }

  /** Drop the connection without waiting for the peer. */
  abort() {
    const ws = /** @type {{terminate?: () => void}} */ (/** @type {unknown} */ (this.ws));
    if (typeof ws.terminate === 'function') ws.terminate();
    else this.close(1000, '');
  }
}
