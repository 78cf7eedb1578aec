/**
 * The client's errors, named as in the Python SDK (docs/sdk.md, "Exceptions").
 * @module
 */
/** A frame or value breaks the protocol; `code` is the ioap.v1 error code (docs/protocol.md section 10). */
export class ProtocolError extends Error {
    /**
     * @param {string} code e.g. 'MALFORMED_MESSAGE', 'INVALID_DID', 'INVALID_SIGNATURE'
     * @param {string} message
     * @param {Record<string, unknown>} [details]
     */
    constructor(code: string, message: string, details?: Record<string, unknown>);
    code: string;
    details: Record<string, unknown>;
}
/** The gateway cannot be reached, refused the upgrade, or broke the handshake. */
export class GatewayConnectionError extends Error {
    /**
     * @param {string} message
     * @param {{status?: number | null, retryAfter?: number | null}} [options]
     */
    constructor(message: string, options?: {
        status?: number | null;
        retryAfter?: number | null;
    });
    /** HTTP status of a refused upgrade, when known (never in browsers: they do not show it) */
    status: number | null;
    /** seconds to wait before retrying, when the gateway said so */
    retryAfter: number | null;
}
/** The gateway refused our REGISTER (or, for a browser, our Origin) with an ERROR. */
export class GatewayError extends Error {
    /**
     * @param {string} code e.g. 'AUTH_FAILED'
     * @param {string} message
     * @param {Record<string, unknown> | null} [details]
     * @param {number | null} [closeCode]
     */
    constructor(code: string, message: string, details?: Record<string, unknown> | null, closeCode?: number | null);
    code: string;
    gatewayMessage: string;
    details: Record<string, unknown>;
    /** the close code that followed the ERROR (4400, 4401, 4403...) */
    closeCode: number | null;
    /** @type {string | null} the close frame's reason */
    closeReason: string | null;
}
/** The connection is over and none is coming. */
export class ConnectionClosed extends Error {
    /**
     * @param {number | null} code
     * @param {string | null} reason
     */
    constructor(code: number | null, reason: string | null);
    code: number | null;
    reason: string | null;
}
/** Reconnecting, and `sendQueueSize` messages already wait. */
export class SendQueueFull extends Error {
    /** @param {string} message */
    constructor(message: string);
}
/** A received frame failed verification; it was not delivered. Given to onInvalid handlers. */
export class InvalidMessageError extends Error {
    /**
     * @param {string} reason what failed, e.g. 'INVALID_SIGNATURE: ...'
     * @param {string} text the frame as received
     */
    constructor(reason: string, text: string);
    reason: string;
    text: string;
}
/** A wait (receive, ping) ran out. */
export class TimeoutError extends Error {
    /** @param {string} message */
    constructor(message: string);
}
