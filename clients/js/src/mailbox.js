/**
 * The agent's side of the gateway's mailbox (docs/protocol.md section 22). No I/O. It mirrors the
 * Python SDK's `client/mailbox.py`.
 *
 * A message that waited in a mailbox (any message from an agent carrying a `ttl`) and every
 * RECEIPT from the gateway stay with the gateway until this agent acknowledges them (ACK), so each
 * may arrive more than once: again after a reconnection when the ACK did not get through. This
 * module remembers which ones were handed to the application and which of those it has finished
 * with, so the application sees each once, and the ACK is sent only when it is done with it (its
 * onMessage handlers returned, or receive() returned it).
 * @module
 */

/** (sender, id) pairs remembered for duplicate suppression. */
export const ACK_MEMORY = 10000;

/**
 * @typedef {'new' | 'handling' | 'done'} Seen
 * new: hand it to the application; handling: a repeat while the application still has the first
 * (drop it); done: a repeat of one already finished (drop it, acknowledge it again).
 */

/**
 * Whether a received message is one the gateway keeps until it is acknowledged.
 * @param {string} sender
 * @param {string} type
 * @param {boolean} hasTtl
 * @param {string | null} gatewayDid
 * @returns {boolean}
 */
export function acknowledged(sender, type, hasTtl, gatewayDid) {
  if (sender === gatewayDid) return type === 'RECEIPT';
  return hasTtl;
}

/**
 * A `ttl` for send(): whole seconds from 1 (the gateway bounds it by MAILBOX_MAX_TTL).
 * @param {unknown} ttl
 * @returns {number}
 */
export function checkTtl(ttl) {
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > 2147483647) {
    throw new TypeError(`ttl must be a whole number of seconds from 1, not ${JSON.stringify(ttl)}`);
  }
  return ttl;
}

/** The acknowledged messages this agent received lately, by (sender, id). */
export class Acknowledgements {
  /** @param {number} [memory] */
  constructor(memory = ACK_MEMORY) {
    /** @type {Map<string, boolean>} key -> finished, oldest first @private */
    this._seen = new Map();
    /** @private */
    this._memory = memory;
    /** repeats dropped */
    this.duplicates = 0;
  }

  /**
   * @param {string} sender
   * @param {string} messageId
   * @returns {Seen}
   */
  arrived(sender, messageId) {
    const key = `${sender} ${messageId}`;
    const finished = this._seen.get(key);
    if (finished === undefined) {
      this._seen.set(key, false);
      if (this._seen.size > this._memory) this._seen.delete(/** @type {string} */ (this._seen.keys().next().value));
      return 'new';
    }
    this.duplicates += 1;
    this._seen.delete(key);
    this._seen.set(key, finished); // the newest again
    return finished ? 'done' : 'handling';
  }

  /**
   * The application is done with it: true when an ACK is now due (once).
   * @param {string} sender
   * @param {string} messageId
   * @returns {boolean}
   */
  finished(sender, messageId) {
    const key = `${sender} ${messageId}`;
    if (this._seen.get(key) !== false) return false;
    this._seen.set(key, true);
    return true;
  }
}
