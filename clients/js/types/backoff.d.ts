/**
 * Reconnection policy and pacing, as pure functions (the Python SDK's `backoff.py`,
 * `client/reconnect.py` and `ratelimit.TokenBucket`). Time and randomness are passed in.
 * @module
 */
/**
 * How the client reconnects after it lost its connection. The n-th wait (n from 0) is uniformly
 * random between half and all of min(maxDelay, initialDelay * multiplier ** n) ("equal jitter").
 * @typedef {object} ReconnectPolicy
 * @property {number} [initialDelay] seconds, default 0.5
 * @property {number} [maxDelay] seconds, default 30
 * @property {number} [multiplier] default 2
 * @property {number | null} [maxAttempts] default null: keep trying until close()
 */
/** @typedef {{initialDelay: number, maxDelay: number, multiplier: number, maxAttempts: number | null}} FullPolicy */
/**
 * The policy with its defaults filled in; RangeError for nonsensical values.
 * @param {ReconnectPolicy} [policy]
 * @returns {FullPolicy}
 */
export function reconnectPolicy(policy?: ReconnectPolicy): FullPolicy;
/**
 * Seconds to wait before attempt `attempt` (0 for the first retry): equal jitter.
 * @param {number} attempt
 * @param {{base: number, cap: number, multiplier?: number, jitter: () => number}} options
 * @returns {number}
 */
export function backoff(attempt: number, { base, cap, multiplier, jitter }: {
    base: number;
    cap: number;
    multiplier?: number;
    jitter: () => number;
}): number;
/**
 * Seconds before reconnection attempt `attempt` (0 for the first): the policy's backoff, or the
 * gateway's Retry-After when that is longer (but not beyond maxDelay, unless the backoff is).
 * @param {FullPolicy} policy
 * @param {number} attempt
 * @param {{retryAfter?: number | null, jitter?: () => number}} [options]
 * @returns {number}
 */
export function backoffDelay(policy: FullPolicy, attempt: number, options?: {
    retryAfter?: number | null;
    jitter?: () => number;
}): number;
/**
 * Close codes after which reconnecting cannot help (docs/sdk.md, "Reconnection"): 1000 (UNREGISTER,
 * ping timeout), 4400/4401 (our handshake is wrong), 4403 (the page's origin is not allowed),
 * 4409 (another connection took the DID).
 */
export const FINAL_CLOSE_CODES: readonly number[];
/** ERROR codes during registration that the next attempt would get again. */
export const FINAL_REGISTRATION_ERRORS: readonly string[];
/** `rate` tokens per second, at most `burst` saved up; one token per frame. */
export class TokenBucket {
    /**
     * @param {number} rate
     * @param {number} burst
     * @param {number} now seconds
     */
    constructor(rate: number, burst: number, now: number);
    rate: number;
    burst: number;
    tokens: number;
    stamp: number;
    /**
     * Take one token: 0 when granted, else the seconds until one will be available.
     * @param {number} now seconds
     * @returns {number}
     */
    take(now: number): number;
}
/**
 * How the client reconnects after it lost its connection. The n-th wait (n from 0) is uniformly
 * random between half and all of min(maxDelay, initialDelay * multiplier ** n) ("equal jitter").
 */
export type ReconnectPolicy = {
    /**
     * seconds, default 0.5
     */
    initialDelay?: number | undefined;
    /**
     * seconds, default 30
     */
    maxDelay?: number | undefined;
    /**
     * default 2
     */
    multiplier?: number | undefined;
    /**
     * default null: keep trying until close()
     */
    maxAttempts?: number | null | undefined;
};
export type FullPolicy = {
    initialDelay: number;
    maxDelay: number;
    multiplier: number;
    maxAttempts: number | null;
};
