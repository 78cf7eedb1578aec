/** @template T */
export class Inbox<T> {
    /** @type {T[]} items no reader has taken yet, oldest first */
    items: T[];
    /** @private @type {((item: T) => void)[]} */
    private _readers;
    /** Hand `item` to the oldest waiting reader, or keep it. @param {T} item */
    put(item: T): void;
    /** Put `item` back in front (an end marker that every later read must see too). @param {T} item */
    putBack(item: T): void;
    /**
     * The next item; rejects with `onTimeout()` after `timeout` seconds (null: no limit).
     * @param {number | null} timeout
     * @param {() => Error} onTimeout
     * @returns {Promise<T>}
     */
    take(timeout: number | null, onTimeout: () => Error): Promise<T>;
}
