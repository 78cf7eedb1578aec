/**
 * Check one frame's text as an ioap.v1 envelope, in the gateway's order (section 2.1);
 * ProtocolError saying why when it is not one.
 * @param {string} text
 * @returns {Envelope}
 */
export function parseEnvelope(text: string): Envelope;
/**
 * The bytes a message's signature covers: the RFC 8785 form of its fields without `signature`.
 * @param {Record<string, unknown>} fields
 * @returns {Uint8Array}
 */
export function signingInput(fields: Record<string, unknown>): Uint8Array;
/**
 * Verify an envelope against the key inside `did` (its sender's, or the pinned gateway DID);
 * ProtocolError INVALID_SIGNATURE when it does not verify, INVALID_DID when `did` has no key.
 * @param {Envelope} envelope
 * @param {string} [did] defaults to the envelope's `from`
 * @returns {Promise<void>}
 */
export function verifyEnvelope(envelope: Envelope, did?: string): Promise<void>;
/**
 * RFC 3339 UTC with milliseconds, e.g. 2026-11-26T10:00:00.123Z.
 * @param {number} milliseconds since the epoch
 * @returns {string}
 */
export function utcTimestamp(milliseconds: number): string;
/** @returns {string} a random UUID (version 4) */
export function newId(): string;
/**
 * The frame text of `fields` signed by `key` (fields must not hold `signature`).
 * @param {{did: string, sign(data: Uint8Array): Promise<Uint8Array>}} key
 * @param {Record<string, unknown>} fields
 * @returns {Promise<string>}
 */
export function signFields(key: {
    did: string;
    sign(data: Uint8Array): Promise<Uint8Array>;
}, fields: Record<string, unknown>): Promise<string>;
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
export function buildMessage(key: {
    did: string;
    sign(data: Uint8Array): Promise<Uint8Array>;
}, type: string, to: string | null, payload: Record<string, unknown>, options?: BuildOptions): Promise<{
    text: string;
    id: string;
}>;
export const PROTOCOL_VERSION: "1.0";
export const MAX_ID_LENGTH: 128;
/** Types an agent may address to another agent. */
export const ROUTABLE_TYPES: readonly string[];
/** Types of the conversation between an agent and the gateway. */
export const CONTROL_TYPES: readonly string[];
/** The mailbox's conversation with the gateway (docs/protocol.md section 22). */
export const MAILBOX_TYPES: readonly string[];
/** Discovery and presence (docs/protocol.md section 21): DISCOVER, WATCH, UNWATCH and the gateway's answers. */
export const DISCOVERY_TYPES: readonly string[];
/** A verified message received from the gateway or another agent. */
export class Message {
    /**
     * @param {Envelope} envelope
     * @param {string} raw the frame exactly as received
     */
    constructor(envelope: Envelope, raw: string);
    id: string;
    type: string;
    /** the `from` DID, whose key verified the signature */
    sender: string;
    /** the `to` DID (this agent) */
    recipient: string | null;
    payload: Record<string, unknown>;
    correlationId: string | null;
    /** the sender's RFC 3339 timestamp, as sent (not checked against any clock) */
    timestamp: string;
    /** every top-level member as parsed (except `signature`) */
    fields: Record<string, unknown>;
    /** the frame exactly as received */
    raw: string;
    /** true when the payload came encrypted end to end and `payload` is its decryption (e2e.js) */
    encrypted: boolean;
    /** @returns {string | null} the code of an ERROR message, else null */
    get errorCode(): string | null;
}
/**
 * A received message that passed the field checks (its signature not yet verified).
 */
export type Envelope = {
    /**
     * the object minus `signature`: what the signature covers
     */
    fields: Record<string, unknown>;
    id: string;
    type: string;
    /**
     * the `from` DID
     */
    sender: string;
    /**
     * the `to` DID
     */
    recipient: string | null;
    payload: Record<string, unknown>;
    correlationId: string | null;
    timestamp: string;
    signature: string;
    signatureBytes: Uint8Array;
};
export type BuildOptions = {
    /**
     * the id of the message this one answers
     */
    correlationId?: string | null | undefined;
    /**
     * the message id (default: a new UUID4)
     */
    id?: string | undefined;
    /**
     * the time in milliseconds since the epoch (default: Date.now())
     */
    now?: number | undefined;
    /**
     * more top-level members (signed too)
     */
    extra?: Record<string, unknown> | undefined;
};
