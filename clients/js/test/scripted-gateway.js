// A WebSocket whose peer is a gateway scripted by the test, signing its messages with its own key:
// CHALLENGE, REGISTERED, then what the test pushes or `answer` returns. For the client's tests.
import { AgentKey, buildMessage, GatewayClient } from '../src/index.js';

export const GATEWAY = await AgentKey.generate();

export class ScriptedGateway extends EventTarget {
  /** @type {ScriptedGateway | null} */
  static last = null;
  /** @type {(message: any) => [string, Record<string, unknown>] | null} answers the client's requests */
  static answer = () => null;

  /** @param {string} url @param {string} protocol */
  constructor(url, protocol) {
    super();
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    this.binaryType = 'blob';
    /** @type {any[]} what the client sent */
    this.received = [];
    /** @type {Array<{type: string, resolve: (message: any) => void}>} */
    this.waiters = [];
    /** @type {string | null} */
    this.agent = null;
    ScriptedGateway.last = this;
    setTimeout(async () => {
      this.readyState = 1;
      this.dispatchEvent(new Event('open'));
      await this.push('CHALLENGE', { nonce: 'n0' }, null);
    }, 0);
  }

  /**
   * Send a message from the gateway.
   * @param {string} type
   * @param {Record<string, unknown>} payload
   * @param {string | null} [correlationId]
   * @returns {Promise<string>} its id
   */
  async push(type, payload, correlationId = null) {
    const { text, id } = await buildMessage(GATEWAY, type, this.agent, payload, { correlationId });
    this.deliver(text);
    return id;
  }

  /** @param {string} text a frame, as the gateway writes it */
  deliver(text) {
    this.dispatchEvent(new MessageEvent('message', { data: text }));
  }

  /**
   * The next message of `type` the client sends (or the first already sent and not yet taken).
   * @param {string} type
   * @returns {Promise<any>}
   */
  next(type) {
    const index = this.received.findIndex((message) => message.type === type && !message.taken);
    if (index >= 0) {
      this.received[index].taken = true;
      return Promise.resolve(this.received[index]);
    }
    return new Promise((resolve) => this.waiters.push({ type, resolve }));
  }

  /** @param {string} text */
  send(text) {
    const message = JSON.parse(text);
    this.received.push(message);
    const waiter = this.waiters.find((entry) => entry.type === message.type);
    if (waiter) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      message.taken = true;
      waiter.resolve(message);
    }
    if (message.type === 'REGISTER') {
      this.agent = message.from;
      this.push('REGISTERED', { session_id: 's1', agent_timeout: 300 }, message.id);
      return;
    }
    const answer = ScriptedGateway.answer(message);
    if (answer !== null) this.push(answer[0], answer[1], message.id);
  }

  close(code = 1000, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.dispatchEvent(Object.assign(new Event('close'), { code, reason })), 0);
  }
}

/**
 * A client connected to a new ScriptedGateway (no keepalive, no liveness PINGs).
 * @param {Record<string, unknown>} [options]
 */
export async function connected(options = {}) {
  const client = new GatewayClient('ws://gateway.test/ws', await AgentKey.generate(), {
    WebSocket: /** @type {any} */ (ScriptedGateway), keepalive: false, pingInterval: null, ...options,
  });
  await client.connect();
  return { client, gateway: /** @type {ScriptedGateway} */ (ScriptedGateway.last) };
}
