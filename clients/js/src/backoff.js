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
export function reconnectPolicy(policy = {}) {
  const full = {
    initialDelay: policy.initialDelay ?? 0.5,
    maxDelay: policy.maxDelay ?? 30,
    multiplier: policy.multiplier ?? 2,
    maxAttempts: policy.maxAttempts ?? null,
  };
  if (!(full.initialDelay > 0 && full.initialDelay <= full.maxDelay && Number.isFinite(full.maxDelay))
      || !(full.multiplier >= 1)) {
    throw new RangeError('need 0 < initialDelay <= maxDelay (finite) and multiplier >= 1');
  }
  if (full.maxAttempts !== null && !(Number.isInteger(full.maxAttempts) && full.maxAttempts >= 1)) {
    throw new RangeError('maxAttempts must be a whole number of at least 1 (or null)');
  }
  return full;
}

/**
 * Seconds to wait before attempt `attempt` (0 for the first retry): equal jitter.
 * @param {number} attempt
 * @param {{base: number, cap: number, multiplier?: number, jitter: () => number}} options
 * @returns {number}
 */
export function backoff(attempt, { base, cap, multiplier = 2, jitter }) {
  if (!(attempt >= 0)) throw new RangeError(`attempt must be 0 or more, got ${attempt}`);
  const ceiling = Math.min(cap, base * multiplier ** attempt); // Infinity ** past the cap: the cap
  const spread = jitter();
  if (!(spread >= 0 && spread <= 1)) throw new RangeError(`the jitter source must return a number in [0, 1], got ${spread}`);
  return ceiling / 2 + (spread * ceiling) / 2;
}

/**
 * Seconds before reconnection attempt `attempt` (0 for the first): the policy's backoff, or the
 * gateway's Retry-After when that is longer (but not beyond maxDelay, unless the backoff is).
 * @param {FullPolicy} policy
 * @param {number} attempt
 * @param {{retryAfter?: number | null, jitter?: () => number}} [options]
 * @returns {number}
 */
export function backoffDelay(policy, attempt, options = {}) {
  const delay = backoff(attempt, {
    base: policy.initialDelay, cap: policy.maxDelay, multiplier: policy.multiplier,
    jitter: options.jitter ?? Math.random,
  });
  const retryAfter = options.retryAfter;
  if (retryAfter !== undefined && retryAfter !== null && retryAfter > delay) {
    return Math.min(retryAfter, Math.max(policy.maxDelay, delay));
  }
  return delay;
}

/**
 * Close codes after which reconnecting cannot help (docs/sdk.md, "Reconnection"): 1000 (UNREGISTER,
 * ping timeout), 4400/4401 (our handshake is wrong), 4403 (the page's origin is not allowed),
 * 4409 (another connection took the DID).
 */
export const FINAL_CLOSE_CODES = Object.freeze([1000, 4400, 4401, 4403, 4409]);
/** ERROR codes during registration that the next attempt would get again. */
export const FINAL_REGISTRATION_ERRORS = Object.freeze(['AUTH_FAILED', 'INVALID_DID', 'INVALID_SIGNATURE',
  'MALFORMED_MESSAGE', 'UNSUPPORTED_VERSION']);

/** `rate` tokens per second, at most `burst` saved up; one token per frame. */
export class TokenBucket {
  /**
   * @param {number} rate
   * @param {number} burst
   * @param {number} now seconds
   */
  constructor(rate, burst, now) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError('a token bucket needs rate > 0 and burst >= 1');
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.stamp = now;
  }

  /**
   * Take one token: 0 when granted, else the seconds until one will be available.
   * @param {number} now seconds
   * @returns {number}
   */
  take(now) {
    const elapsed = now - this.stamp;
    let tokens = this.tokens;
    if (elapsed > 0) {
      tokens = Math.min(this.burst, tokens + elapsed * this.rate);
      this.stamp = now;
    }
    if (tokens >= 1) {
      this.tokens = tokens - 1;
      return 0;
    }
    this.tokens = tokens;
    return (1 - tokens) / this.rate;
  }
}
