// An ordered inbox: items wait for a reader, or readers wait for items, each read with its own
// timeout. What GatewayClient.receive() and PeerChannel.receive() both need; no I/O.

/** @template T */
export class Inbox {
  constructor() {
    /** @type {T[]} items no reader has taken yet, oldest first */
    this.items = [];
    /** @private @type {((item: T) => void)[]} */
    this._readers = [];
  }

  /** Hand `item` to the oldest waiting reader, or keep it. @param {T} item */
  put(item) {
    const reader = this._readers.shift();
    if (reader !== undefined) reader(item);
    else this.items.push(item);
  }

  /** Put `item` back in front (an end marker that every later read must see too). @param {T} item */
  putBack(item) {
    this.items.unshift(item);
  }

  /**
   * The next item; rejects with `onTimeout()` after `timeout` seconds (null: no limit).
   * @param {number | null} timeout
   * @param {() => Error} onTimeout
   * @returns {Promise<T>}
   */
  async take(timeout, onTimeout) {
    if (this.items.length > 0) return /** @type {T} */ (this.items.shift());
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    try {
      return await new Promise((resolve, reject) => {
        this._readers.push(resolve);
        if (timeout !== null) {
          timer = setTimeout(() => {
            const index = this._readers.indexOf(resolve);
            if (index < 0) return;
            this._readers.splice(index, 1);
            reject(onTimeout());
          }, timeout * 1000);
        }
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
