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
  constructor(code, message, details = {}) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.details = details;
  }
}

/** The gateway cannot be reached, refused the upgrade, or broke the handshake. */
export class GatewayConnectionError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number | null, retryAfter?: number | null}} [options]
   */
  constructor(message, options = {}) {
    super(message);
    this.name = 'GatewayConnectionError';
    /** HTTP status of a refused upgrade, when known (never in browsers: they do not show it) */
    this.status = options.status ?? null;
    /** seconds to wait before retrying, when the gateway said so */
    this.retryAfter = options.retryAfter ?? null;
  }
}

/** The gateway refused our REGISTER (or, for a browser, our Origin) with an ERROR. */
export class GatewayError extends Error {
  /**
   * @param {string} code e.g. 'AUTH_FAILED'
   * @param {string} message
   * @param {Record<string, unknown> | null} [details]
   * @param {number | null} [closeCode]
   */
  constructor(code, message, details = null, closeCode = null) {
    super(`${code}: ${message}`);
    this.name = 'GatewayError';
    this.code = code;
    this.gatewayMessage = message;
    this.details = details ?? {};
    /** the close code that followed the ERROR (4400, 4401, 4403...) */
    this.closeCode = closeCode;
    /** @type {string | null} the close frame's reason */
    this.closeReason = null;
  }
}

/** The connection is over and none is coming. */
export class ConnectionClosed extends Error {
  /**
   * @param {number | null} code
   * @param {string | null} reason
   */
  constructor(code, reason) {
    super(`connection closed (code ${code ?? 'none'}${reason ? `: ${reason}` : ''})`);
    this.name = 'ConnectionClosed';
    this.code = code;
    this.reason = reason;
  }
}

/** Reconnecting, and `sendQueueSize` messages already wait. */
export class SendQueueFull extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'SendQueueFull';
  }
}

/** A received frame failed verification; it was not delivered. Given to onInvalid handlers. */
export class InvalidMessageError extends Error {
  /**
   * @param {string} reason what failed, e.g. 'INVALID_SIGNATURE: ...'
   * @param {string} text the frame as received
   */
  constructor(reason, text) {
    super(reason);
    this.name = 'InvalidMessageError';
    this.reason = reason;
    this.text = text;
  }
}

/** A wait (receive, ping) ran out. */
export class TimeoutError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'TimeoutError';
  }
}
