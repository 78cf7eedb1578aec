/**
 * The agent's side of discovery and presence (docs/protocol.md section 21). No I/O. It mirrors the
 * Python SDK's `client/directory.py` and `cards.py`.
 *
 * `GatewayClient.discover()` and `watch()` send DISCOVER / WATCH / UNWATCH to the gateway; the
 * answers (DISCOVERED, WATCHING, or an ERROR with the request's id) are read here, and every
 * discovered card is checked against its agent's own signature on the REGISTER the gateway passes
 * along (`checkCardProof`) before the application sees it: a card the gateway altered or made up
 * is dropped and counted (`rejected`), so a card handed on is the agent's own words. PRESENCE
 * messages become `PresenceEvent`s.
 * @module
 */

import { base64DecodeStrict } from './encoding.js';
import { canonicalBytes, canonicalize } from './jcs.js';
import { verifySignature } from './keys.js';

/** The card's bounds (protocol section 21.1). */
export const MAX_CARD_BYTES = 4096;
export const MAX_CAPABILITIES = 32;
const STRINGS = /** @type {const} */ ([['name', 64], ['description', 1024], ['version', 32]]);
const CAPABILITY = /^[A-Za-z0-9._:/+-]{1,64}$/;
/** The gateway's answers to DISCOVER, WATCH and UNWATCH. */
export const DIRECTORY_ANSWERS = Object.freeze(['DISCOVERED', 'WATCHING', 'ERROR']);
/** DIDs per WATCH the gateway takes (protocol section 21.3). */
export const WATCH_BATCH = 100;

/**
 * An agent online now, with the card it signed (null when it registered without one).
 * @typedef {object} DiscoveredAgent
 * @property {string} did
 * @property {Record<string, unknown> | null} card
 * @property {string | null} name the card's name
 * @property {string[]} capabilities the card's capabilities ([] without a card)
 */

/**
 * One DISCOVERED answer.
 * @typedef {object} DiscoveryPage
 * @property {DiscoveredAgent[]} agents the entries whose card verified, in the gateway's order
 * @property {string | null} next pass it as `cursor` for the following page (null: the last page)
 * @property {string} scope 'instance' or 'cluster'
 * @property {number} rejected entries dropped because their card did not verify
 * @property {Array<{did: string | null, reason: string}>} problems why each was dropped
 */

/**
 * A watched agent came online, went offline, or was replaced by a new session.
 * @typedef {object} PresenceEvent
 * @property {string} did
 * @property {'online' | 'offline' | 'replaced'} event how it got there
 * @property {'online' | 'offline'} state where it is now (the truth)
 * @property {number} changes more than 1: the gateway coalesced that many changes into this event
 */

/**
 * What discover() looks for; every member optional (protocol section 21.2).
 * @typedef {object} DiscoveryQuery
 * @property {string} [capability] agents whose card lists it
 * @property {string} [namePrefix] agents whose card's name starts with it (case-insensitively)
 * @property {string[]} [dids] only these agents (1-100)
 * @property {number} [limit] 1-100 agents per page (the gateway's default: 20)
 * @property {string} [cursor] the `next` of the previous page
 */

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The card given to GatewayClient, checked as the gateway will (TypeError saying what is wrong,
 * rather than a refused registration later); a copy of it.
 * @param {unknown} card
 * @returns {Record<string, unknown>}
 */
export function checkCard(card) {
  if (!isObject(card)) throw new TypeError("card: 'card' must be an object");
  for (const [member, limit] of STRINGS) {
    const text = card[member];
    if (text === undefined && member !== 'name') continue;
    if (typeof text !== 'string' || text.length === 0 || [...text].length > limit) {
      throw new TypeError(`card: card.${member} must be a string of 1-${limit} characters`);
    }
  }
  const capabilities = card.capabilities ?? [];
  if (!Array.isArray(capabilities) || capabilities.length > MAX_CAPABILITIES) {
    throw new TypeError(`card: card.capabilities must be a list of at most ${MAX_CAPABILITIES} strings`);
  }
  capabilities.forEach((capability, index) => {
    if (typeof capability !== 'string' || !CAPABILITY.test(capability)) {
      throw new TypeError(`card: card.capabilities[${index}] must be 1-64 characters of A-Z a-z 0-9 . _ : / + -`);
    }
  });
  if (new Set(capabilities).size !== capabilities.length) {
    throw new TypeError('card: card.capabilities must not repeat a capability');
  }
  let size;
  try {
    size = canonicalBytes(card).length;
  } catch (error) {
    throw new TypeError(`card: not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (size > MAX_CARD_BYTES) throw new TypeError(`card: 'card' is ${size} bytes; at most ${MAX_CARD_BYTES}`);
  return JSON.parse(JSON.stringify(card));
}

/**
 * A DISCOVER payload with the members given (the gateway checks their values and says what is
 * wrong; only their types are checked here).
 * @param {DiscoveryQuery} [query]
 * @returns {Record<string, unknown>}
 */
export function requestPayload(query = {}) {
  if (!isObject(query)) throw new TypeError('the query must be an object: {capability, namePrefix, dids, limit, cursor}');
  const known = new Set(['capability', 'namePrefix', 'dids', 'limit', 'cursor', 'timeout']);
  for (const name of Object.keys(query)) {
    if (!known.has(name)) throw new TypeError(`unknown query member ${JSON.stringify(name)}; expected capability, namePrefix, dids, limit, cursor`);
  }
  /** @type {Record<string, unknown>} */
  const payload = {};
  for (const [name, wire] of [['capability', 'capability'], ['namePrefix', 'name_prefix'], ['cursor', 'cursor']]) {
    const value = /** @type {Record<string, unknown>} */ (query)[name];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
    payload[wire] = value;
  }
  if (query.dids !== undefined && query.dids !== null) {
    if (!Array.isArray(query.dids)) throw new TypeError('dids must be a list of DIDs');
    payload.dids = [...query.dids];
  }
  if (query.limit !== undefined && query.limit !== null) {
    if (!Number.isInteger(query.limit)) throw new TypeError('limit must be a whole number (1-100)');
    payload.limit = query.limit;
  }
  return payload;
}

/**
 * Check that `register` (a DISCOVERED entry's signed REGISTER) is `did`'s and holds `card`, as
 * protocol section 21.2 says; the reason when it is not, null when it is.
 * @param {string} did
 * @param {unknown} card
 * @param {unknown} register
 * @returns {Promise<string | null>}
 */
export async function checkCardProof(did, card, register) {
  if (!isObject(register)) return 'no REGISTER to prove the card';
  const { signature, ...fields } = register;
  if (typeof signature !== 'string' || fields.type !== 'REGISTER' || fields.from !== did || !isObject(fields.payload)) {
    return "the card's proof is not a REGISTER signed by the agent";
  }
  try {
    if (canonicalize(fields.payload.card) !== canonicalize(card)) return 'the card is not the one its agent signed';
  } catch {
    return 'the card is not the one its agent signed';
  }
  for (const member of ['id', 'to', 'timestamp', 'version']) {
    if (!Object.hasOwn(fields, member)) fields[member] = null;
  }
  const bytes = signature.length === 88 ? base64DecodeStrict(signature) : null;
  if (bytes === null || bytes.length !== 64) return "the REGISTER's signature is malformed";
  try {
    if (await verifySignature(did, bytes, canonicalBytes(fields))) return null;
  } catch (error) {
    return `the REGISTER cannot be checked: ${error instanceof Error ? error.message : String(error)}`;
  }
  return "the REGISTER's signature does not verify against the agent's DID";
}

/**
 * @param {string} did
 * @param {Record<string, unknown> | null} card
 * @returns {DiscoveredAgent}
 */
function discovered(did, card) {
  const capabilities = card !== null && Array.isArray(card.capabilities) ? card.capabilities.map(String) : [];
  return { did, card, name: card === null ? null : String(card.name), capabilities };
}

/**
 * A DISCOVERED answer's payload as a page, every card checked against its agent's signature.
 * @param {Record<string, unknown>} payload
 * @returns {Promise<DiscoveryPage>}
 */
export async function discoveryPage(payload) {
  /** @type {DiscoveredAgent[]} */
  const agents = [];
  /** @type {Array<{did: string | null, reason: string}>} */
  const problems = [];
  const entries = Array.isArray(payload.agents) ? payload.agents : [];
  for (const entry of entries) {
    if (!isObject(entry) || typeof entry.did !== 'string') {
      problems.push({ did: null, reason: 'an entry without a DID' });
      continue;
    }
    const { did, card, register } = entry;
    if (card === null || card === undefined) {
      agents.push(discovered(did, null));
      continue;
    }
    const reason = isObject(card) ? await checkCardProof(did, card, register) : 'the card is not an object';
    if (reason === null) agents.push(discovered(did, /** @type {Record<string, unknown>} */ (card)));
    else problems.push({ did, reason });
  }
  return {
    agents,
    next: typeof payload.next === 'string' ? payload.next : null,
    scope: typeof payload.scope === 'string' ? payload.scope : 'instance',
    rejected: problems.length,
    problems,
  };
}

/**
 * A WATCHING answer's payload: DID -> 'online' / 'offline'.
 * @param {Record<string, unknown>} payload
 * @returns {Record<string, 'online' | 'offline'>}
 */
export function watchStates(payload) {
  /** @type {Record<string, 'online' | 'offline'>} */
  const states = {};
  for (const entry of Array.isArray(payload.agents) ? payload.agents : []) {
    if (isObject(entry) && typeof entry.did === 'string') states[entry.did] = entry.state === 'online' ? 'online' : 'offline';
  }
  return states;
}

/**
 * A PRESENCE message's payload as an event; null when it is not well formed.
 * @param {Record<string, unknown>} payload
 * @returns {PresenceEvent | null}
 */
export function presenceEvent(payload) {
  const { did, event, changes } = payload;
  if (typeof did !== 'string' || (event !== 'online' && event !== 'offline' && event !== 'replaced')) return null;
  return {
    did,
    event,
    state: event === 'offline' ? 'offline' : 'online',
    changes: typeof changes === 'number' && Number.isInteger(changes) && changes > 0 ? changes : 1,
  };
}

/** The DIDs the application watches, in the order first watched, so a reconnected client can watch them again. */
export class WatchSet {
  constructor() {
    /** @type {Set<string>} */
    this.dids = new Set();
  }

  /** @param {string[]} dids now watched */
  add(dids) {
    for (const did of dids) this.dids.add(did);
  }

  /** @param {string[]} dids no longer watched */
  remove(dids) {
    for (const did of dids) this.dids.delete(did);
  }

  /** @returns {string[][]} the watched DIDs in WATCHes of at most WATCH_BATCH */
  batches() {
    const all = [...this.dids];
    /** @type {string[][]} */
    const batches = [];
    for (let start = 0; start < all.length; start += WATCH_BATCH) batches.push(all.slice(start, start + WATCH_BATCH));
    return batches;
  }
}
