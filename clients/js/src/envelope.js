/**
 * The ioap.v1 envelope (docs/protocol.md sections 2 and 5): parse and check received frames as
 * the gateway does, build and sign new ones, verify signatures over the RFC 8785 form.
 * @module
 */

import { canonicalBytes, CanonicalizationError } from './jcs.js';
import { base64DecodeStrict, base64Encode } from './encoding.js';
import { ProtocolError } from './errors.js';
import { verifySignature } from './keys.js';
import { parseStrict, StrictJSONError } from './strictjson.js';

export const PROTOCOL_VERSION = '1.0';
export const MAX_ID_LENGTH = 128;
/** Types an agent may address to another agent. */
export const ROUTABLE_TYPES = Object.freeze(['OFFER', 'ANSWER', 'ICE_CANDIDATE', 'INTENT', 'EXEC_REQUEST',
  'EXEC_RESPONSE', 'ERROR', 'PING', 'PONG']);
/** Types of the conversation between an agent and the gateway. */
export const CONTROL_TYPES = Object.freeze(['CHALLENGE', 'REGISTER', 'REGISTERED', 'UNREGISTER']);
/** The mailbox's conversation with the gateway (docs/protocol.md section 22). */
export const MAILBOX_TYPES = Object.freeze(['ACK', 'MAILBOX', 'QUEUED', 'RECEIPT']);
/** Discovery and presence (docs/protocol.md section 21): DISCOVER, WATCH, UNWATCH and the gateway's answers. */
export const DISCOVERY_TYPES = Object.freeze(['DISCOVER', 'DISCOVERED', 'WATCH', 'UNWATCH', 'WATCHING', 'PRESENCE']);
const ALL_TYPES = new Set([...ROUTABLE_TYPES, ...CONTROL_TYPES, ...MAILBOX_TYPES, ...DISCOVERY_TYPES]);
const REQUIRED = ['id', 'type', 'from', 'to', 'timestamp', 'version', 'payload', 'signature'];
const TIMESTAMP = /^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$/;
const VERSION = /^([0-9]{1,9})(\.[0-9]{1,9}){0,2}$/;
const BAD_SIGNATURE_TEXT = 'signature must be the canonical padded base64 (RFC 4648 section 4, '
  + 'alphabet A-Z a-z 0-9 + /) of a 64-byte Ed25519 signature';

/**
 * A received message that passed the field checks (its signature not yet verified).
 * @typedef {object} Envelope
 * @property {Record<string, unknown>} fields the object minus `signature`: what the signature covers
 * @property {string} id
 * @property {string} type
 * @property {string} sender the `from` DID
 * @property {string | null} recipient the `to` DID
 * @property {Record<string, unknown>} payload
 * @property {string | null} correlationId
 * @property {string} timestamp
 * @property {string} signature
 * @property {Uint8Array} signatureBytes
 */

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * @param {unknown} value
 * @returns {boolean}
 */
function isId(value) {
  return typeof value === 'string' && value.length > 0 && [...value].length <= MAX_ID_LENGTH;
}

/**
 * Check one frame's text as an ioap.v1 envelope, in the gateway's order (section 2.1);
 * ProtocolError saying why when it is not one.
 * @param {string} text
 * @returns {Envelope}
 */
export function parseEnvelope(text) {
  let value;
  try {
    value = parseStrict(text);
  } catch (error) {
    if (error instanceof StrictJSONError) throw new ProtocolError('MALFORMED_MESSAGE', error.message);
    throw error;
  }
  if (!isObject(value)) throw new ProtocolError('MALFORMED_MESSAGE', 'a message must be a JSON object');
  if (!isId(value.id)) {
    throw new ProtocolError('MALFORMED_MESSAGE', `'id' must be a string of 1-${MAX_ID_LENGTH} characters`);
  }
  for (const name of REQUIRED) {
    if (!Object.hasOwn(value, name)) throw new ProtocolError('MALFORMED_MESSAGE', `missing field '${name}'`);
  }
  const { signature, ...fields } = value;
  for (const name of ['type', 'from', 'timestamp', 'version']) {
    if (typeof fields[name] !== 'string') throw new ProtocolError('MALFORMED_MESSAGE', `'${name}' must be a string`);
  }
  if (!isObject(fields.payload)) throw new ProtocolError('MALFORMED_MESSAGE', "'payload' must be an object");
  if (typeof signature !== 'string') throw new ProtocolError('MALFORMED_MESSAGE', "'signature' must be a string");
  if (fields.to !== null && typeof fields.to !== 'string') {
    throw new ProtocolError('MALFORMED_MESSAGE', "'to' must be a DID string (null only in CHALLENGE)");
  }
  const correlationId = fields.correlation_id ?? null;
  if (correlationId !== null && !isId(correlationId)) {
    throw new ProtocolError('MALFORMED_MESSAGE', `'correlation_id' must be a string of 1-${MAX_ID_LENGTH} characters`);
  }
  const type = /** @type {string} */ (fields.type);
  if (!ALL_TYPES.has(type)) throw new ProtocolError('MALFORMED_MESSAGE', `unknown message type ${JSON.stringify(type.slice(0, 40))}`);
  const version = /** @type {string} */ (fields.version);
  const match = VERSION.exec(version);
  if (match === null) throw new ProtocolError('MALFORMED_MESSAGE', "'version' must look like '1.0'");
  if (match[1] !== '1') {
    throw new ProtocolError('UNSUPPORTED_VERSION', `protocol version ${JSON.stringify(version)} is not supported; `
      + `this client speaks ${PROTOCOL_VERSION}`, { supported: [PROTOCOL_VERSION] });
  }
  const timestamp = /** @type {string} */ (fields.timestamp);
  if (!TIMESTAMP.test(timestamp)) {
    throw new ProtocolError('MALFORMED_MESSAGE', "'timestamp' must be RFC 3339, e.g. 2026-11-26T10:00:00.123Z");
  }
  const signatureBytes = signature.length === 88 ? base64DecodeStrict(signature) : null;
  if (signatureBytes === null || signatureBytes.length !== 64) throw new ProtocolError('INVALID_SIGNATURE', BAD_SIGNATURE_TEXT);
  return {
    fields,
    id: /** @type {string} */ (fields.id),
    type,
    sender: /** @type {string} */ (fields.from),
    recipient: /** @type {string | null} */ (fields.to),
    payload: fields.payload,
    correlationId: /** @type {string | null} */ (correlationId),
    timestamp,
    signature,
    signatureBytes,
  };
}

/**
 * The bytes a message's signature covers: the RFC 8785 form of its fields without `signature`.
 * @param {Record<string, unknown>} fields
 * @returns {Uint8Array}
 */
export function signingInput(fields) {
  if (Object.hasOwn(fields, 'signature')) {
    const { signature, ...rest } = fields; // eslint-disable-line no-unused-vars
    return canonicalBytes(rest);
  }
  return canonicalBytes(fields);
}

/**
 * Verify an envelope against the key inside `did` (its sender's, or the pinned gateway DID);
 * ProtocolError INVALID_SIGNATURE when it does not verify, INVALID_DID when `did` has no key.
 * @param {Envelope} envelope
 * @param {string} [did] defaults to the envelope's `from`
 * @returns {Promise<void>}
 */
export async function verifyEnvelope(envelope, did = envelope.sender) {
  let data;
  try {
    data = signingInput(envelope.fields);
  } catch (error) {
    if (error instanceof CanonicalizationError) {
      throw new ProtocolError('MALFORMED_MESSAGE', `message cannot be canonicalized: ${error.message}`);
    }
    throw error;
  }
  if (!(await verifySignature(did, envelope.signatureBytes, data))) {
    throw new ProtocolError('INVALID_SIGNATURE', "signature does not verify against the sender's key over "
      + "the RFC 8785 form of the message without 'signature'");
  }
}

/**
 * RFC 3339 UTC with milliseconds, e.g. 2026-11-26T10:00:00.123Z.
 * @param {number} milliseconds since the epoch
 * @returns {string}
 */
export function utcTimestamp(milliseconds) {
  return new Date(milliseconds).toISOString();
}

/** @returns {string} a random UUID (version 4) */
export function newId() {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The frame text of `fields` signed by `key` (fields must not hold `signature`).
 * @param {{did: string, sign(data: Uint8Array): Promise<Uint8Array>}} key
 * @param {Record<string, unknown>} fields
 * @returns {Promise<string>}
 */
export async function signFields(key, fields) {
  const signature = base64Encode(await key.sign(canonicalBytes(fields)));
  return JSON.stringify({ ...fields, signature });
}

/**
 * @typedef {object} BuildOptions
 * @property {string | null} [correlationId] the id of the message this one answers
 * @property {string} [id] the message id (default: a new UUID4)
 * @property {number} [now] the time in milliseconds since the epoch (default: Date.now())
 * @property {Record<string, unknown>} [extra] more top-level members (signed too)
 */

/**
 * A new signed message from `key`: its frame text (members in the order the gateway writes them)
 * and its id.
 * @param {{did: string, sign(data: Uint8Array): Promise<Uint8Array>}} key
 * @param {string} type
 * @param {string | null} to
 * @param {Record<string, unknown>} payload
 * @param {BuildOptions} [options]
 * @returns {Promise<{text: string, id: string}>}
 */
export async function buildMessage(key, type, to, payload, options = {}) {
  if (!isObject(payload)) throw new TypeError('payload must be a JSON object');
  const id = options.id ?? newId();
  /** @type {Record<string, unknown>} */
  const fields = {
    id,
    type,
    from: key.did,
    to,
    timestamp: utcTimestamp(options.now ?? Date.now()),
    version: PROTOCOL_VERSION,
    payload,
  };
  if (options.correlationId !== undefined && options.correlationId !== null) {
    fields.correlation_id = options.correlationId;
  }
  if (options.extra) Object.assign(fields, options.extra);
  return { text: await signFields(key, fields), id };
}

/** A verified message received from the gateway or another agent. */
export class Message {
  /**
   * @param {Envelope} envelope
   * @param {string} raw the frame exactly as received
   */
  constructor(envelope, raw) {
    this.id = envelope.id;
    this.type = envelope.type;
    /** the `from` DID, whose key verified the signature */
    this.sender = envelope.sender;
    /** the `to` DID (this agent) */
    this.recipient = envelope.recipient;
    this.payload = envelope.payload;
    this.correlationId = envelope.correlationId;
    /** the sender's RFC 3339 timestamp, as sent (not checked against any clock) */
    this.timestamp = envelope.timestamp;
    /** every top-level member as parsed (except `signature`) */
    this.fields = envelope.fields;
    /** the frame exactly as received */
    this.raw = raw;
    /** true when the payload came encrypted end to end and `payload` is its decryption (e2e.js) */
    this.encrypted = false;
  }

  /** @returns {string | null} the code of an ERROR message, else null */
  get errorCode() {
    return this.type === 'ERROR' ? String(this.payload.code) : null;
  }
}
