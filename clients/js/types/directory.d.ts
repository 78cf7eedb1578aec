/**
 * The card given to GatewayClient, checked as the gateway will (TypeError saying what is wrong,
 * rather than a refused registration later); a copy of it.
 * @param {unknown} card
 * @returns {Record<string, unknown>}
 */
export function checkCard(card: unknown): Record<string, unknown>;
/**
 * A DISCOVER payload with the members given (the gateway checks their values and says what is
 * wrong; only their types are checked here).
 * @param {DiscoveryQuery} [query]
 * @returns {Record<string, unknown>}
 */
export function requestPayload(query?: DiscoveryQuery): Record<string, unknown>;
/**
 * Check that `register` (a DISCOVERED entry's signed REGISTER) is `did`'s and holds `card`, as
 * protocol section 21.2 says; the reason when it is not, null when it is.
 * @param {string} did
 * @param {unknown} card
 * @param {unknown} register
 * @returns {Promise<string | null>}
 */
export function checkCardProof(did: string, card: unknown, register: unknown): Promise<string | null>;
/**
 * A DISCOVERED answer's payload as a page, every card checked against its agent's signature.
 * @param {Record<string, unknown>} payload
 * @returns {Promise<DiscoveryPage>}
 */
export function discoveryPage(payload: Record<string, unknown>): Promise<DiscoveryPage>;
/**
 * A WATCHING answer's payload: DID -> 'online' / 'offline'.
 * @param {Record<string, unknown>} payload
 * @returns {Record<string, 'online' | 'offline'>}
 */
export function watchStates(payload: Record<string, unknown>): Record<string, "online" | "offline">;
/**
 * A PRESENCE message's payload as an event; null when it is not well formed.
 * @param {Record<string, unknown>} payload
 * @returns {PresenceEvent | null}
 */
export function presenceEvent(payload: Record<string, unknown>): PresenceEvent | null;
/** The card's bounds (protocol section 21.1). */
export const MAX_CARD_BYTES: 4096;
export const MAX_CAPABILITIES: 32;
/** The gateway's answers to DISCOVER, WATCH and UNWATCH. */
export const DIRECTORY_ANSWERS: readonly string[];
/** DIDs per WATCH the gateway takes (protocol section 21.3). */
export const WATCH_BATCH: 100;
/** The DIDs the application watches, in the order first watched, so a reconnected client can watch them again. */
export class WatchSet {
    /** @type {Set<string>} */
    dids: Set<string>;
    /** @param {string[]} dids now watched */
    add(dids: string[]): void;
    /** @param {string[]} dids no longer watched */
    remove(dids: string[]): void;
    /** @returns {string[][]} the watched DIDs in WATCHes of at most WATCH_BATCH */
    batches(): string[][];
}
/**
 * An agent online now, with the card it signed (null when it registered without one).
 */
export type DiscoveredAgent = {
    did: string;
    card: Record<string, unknown> | null;
    /**
     * the card's name
     */
    name: string | null;
    /**
     * the card's capabilities ([] without a card)
     */
    capabilities: string[];
};
/**
 * One DISCOVERED answer.
 */
export type DiscoveryPage = {
    /**
     * the entries whose card verified, in the gateway's order
     */
    agents: DiscoveredAgent[];
    /**
     * pass it as `cursor` for the following page (null: the last page)
     */
    next: string | null;
    /**
     * 'instance' or 'cluster'
     */
    scope: string;
    /**
     * entries dropped because their card did not verify
     */
    rejected: number;
    /**
     * why each was dropped
     */
    problems: Array<{
        did: string | null;
        reason: string;
    }>;
};
/**
 * A watched agent came online, went offline, or was replaced by a new session.
 */
export type PresenceEvent = {
    did: string;
    /**
     * how it got there
     */
    event: "online" | "offline" | "replaced";
    /**
     * where it is now (the truth)
     */
    state: "online" | "offline";
    /**
     * more than 1: the gateway coalesced that many changes into this event
     */
    changes: number;
};
/**
 * What discover() looks for; every member optional (protocol section 21.2).
 */
export type DiscoveryQuery = {
    /**
     * agents whose card lists it
     */
    capability?: string | undefined;
    /**
     * agents whose card's name starts with it (case-insensitively)
     */
    namePrefix?: string | undefined;
    /**
     * only these agents (1-100)
     */
    dids?: string[] | undefined;
    /**
     * 1-100 agents per page (the gateway's default: 20)
     */
    limit?: number | undefined;
    /**
     * the `next` of the previous page
     */
    cursor?: string | undefined;
};
