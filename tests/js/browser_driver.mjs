// For tests/js/test_browser.py: open a page in the system's headless Chromium (never a downloaded
// browser) with playwright-core, run one scenario in it, print its result as one JSON line.
// usage: node browser_driver.mjs <page url> <scenario> '<json arguments>'
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../../clients/js/package.json', import.meta.url));
const { chromium } = require('playwright-core');

// WebRtcHideLocalIpsWithMdns off: Chromium would otherwise hide its host candidates behind random
// `.local` mDNS names, which aiortc cannot resolve (a page with camera or microphone permission
// gets real addresses anyway; tests and the example page have none)
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-features=WebRtcHideLocalIpsWithMdns'];

/** Scenarios run inside the page; `window.aiconexus` is the client module. */
const scenarios = {
  /** Register, exchange verified messages with the Python agent `peer`, answer its request. */
  async exchange({ gateway, peer }) {
    const { GatewayClient } = window.aiconexus;
    const client = new GatewayClient(gateway, undefined, { metadata: { name: 'browser' } });
    const invalid = [];
    client.onInvalid((error) => invalid.push(error.reason));
    await client.connect();
    const sentId = await client.send(peer, 'INTENT', { intent: 'hello', text: 'from the browser é😀', n: 0.5 });
    const reply = await client.receive({ timeout: 15 });
    const request = await client.receive({ timeout: 15 });
    await client.send(request.sender, 'EXEC_RESPONSE', { result: request.payload.params }, { correlationId: request.id });
    const rtt = await client.ping();
    const jwk = await client.key.toJwk();
    const restored = await window.aiconexus.AgentKey.fromJwk(JSON.parse(JSON.stringify(jwk)));
    const done = await client.receive({ timeout: 15 }); // the peer says it has the response
    await client.close();
    /** @param {any} m */
    const plain = (m) => ({ id: m.id, type: m.type, sender: m.sender, payload: m.payload, correlationId: m.correlationId });
    return {
      did: client.did, gatewayDid: client.gatewayDid, sessionId: client.sessionId, sentId, rtt, invalid,
      reply: plain(reply), request: plain(request), done: plain(done), restoredDid: restored.did,
      state: client.state, closeCode: client.closeCode, origin: location.origin, userAgent: navigator.userAgent,
    };
  },
  /** End-to-end encryption with the Python agent `peer`: send encrypted, read its encrypted answer. */
  async encrypted({ gateway, peer, secret }) {
    const { GatewayClient } = window.aiconexus;
    const client = new GatewayClient(gateway);
    const invalid = [];
    client.onInvalid((error) => invalid.push(error.reason));
    await client.connect();
    const sentId = await client.send(peer, 'EXEC_REQUEST', { method: 'echo', params: [secret, 'é😀'] }, { encrypt: true });
    const reply = await client.receive({ timeout: 15 });
    await client.close();
    return {
      did: client.did, sentId, invalid,
      reply: { id: reply.id, correlationId: reply.correlationId, encrypted: reply.encrypted, payload: reply.payload, raw: reply.raw },
    };
  },
  /** A page without the import map for libsodium.js: encrypting fails clearly, the rest works. */
  async noLibrary({ gateway, peer }) {
    const { GatewayClient } = window.aiconexus;
    const client = new GatewayClient(gateway);
    await client.connect();
    let error = null;
    try {
      await client.send(peer, 'INTENT', { n: 1 }, { encrypt: true });
    } catch (caught) {
      error = { name: caught.name, message: caught.message };
    }
    const plainId = await client.send(peer, 'INTENT', { n: 2 });
    await client.close();
    return { error, plainId };
  },
  /**
   * Peer channels with the Python aiortc agent `peer`: the page opens one (caller) and exchanges
   * `count` messages each way, text and bytes; then the agent opens one to the page (callee) and
   * the page echoes. `relay`: the agent makes ICE fail (relay-only without TURN), the page's
   * channel (with `fallback`) goes through the gateway, and the agent opens none.
   */
  async peer({ gateway, peer, count, relay, absent }) {
    const { GatewayClient } = window.aiconexus;
    const client = new GatewayClient(gateway);
    const invalid = [];
    client.onInvalid((error) => invalid.push(error.reason));
    await client.connect();
    const incoming = client.peers(); // accept the agent's channels
    await client.send(peer, 'INTENT', { did: client.did }); // tell the agent who we are
    const result = { did: client.did, invalid, iceServers: client.iceServers };
    const bytes = (n) => new Uint8Array([n & 255, n >> 8, 0, 255]);
    {
      const started = performance.now();
      const channel = await client.connectPeer(peer, { label: 'browser', timeout: 20, fallback: relay });
      result.openMs = performance.now() - started;
      result.caller = { state: channel.state, transport: channel.transport, peerDid: channel.peerDid, label: channel.label };
      const sending = (async () => {
        for (let n = 0; n < count; n++) await channel.send(n % 2 ? `page ${n}` : bytes(n));
      })();
      const got = [];
      for (let n = 0; n < count; n++) {
        const message = await channel.receive({ timeout: 15 });
        got.push(typeof message === 'string' ? message : [...message]);
      }
      await sending;
      result.fromAgent = got;
      await channel.close();
      result.callerClosed = channel.state;
    }
    if (relay) {
      await client.close();
      return result;
    }
    // refusals: the agent refuses the label "refused"; nobody has the DID `absent`
    const failure = async (did, options) => {
      try {
        await client.connectPeer(did, options);
        return null;
      } catch (error) {
        return { name: error.name, code: error.code, reasonCode: error.reasonCode ?? null };
      }
    };
    result.refused = await failure(peer, { label: 'refused', timeout: 10 });
    result.unknown = await failure(absent, { timeout: 10 });
    // glare: the page and the agent ask for a channel "glare" at the same moment; both get the same one
    await client.send(peer, 'INTENT', { glare: true });
    const glare = await client.connectPeer(peer, { label: 'glare', timeout: 20 });
    await glare.send('glare from the page');
    result.glare = { negotiationId: glare.negotiationId, got: await glare.receive({ timeout: 10 }), transport: glare.transport };
    await glare.close();
    // closing right after a burst: everything sent before close() arrives
    const burst = await client.connectPeer(peer, { label: 'burst', timeout: 20 });
    for (let n = 0; n < 500; n++) await burst.send(new Uint8Array(1000).fill(n & 255));
    await burst.close();
    // the agent opens a channel to the page: echo what it sends until it closes
    const theirs = await Promise.race([incoming.next().then((next) => next.value), new Promise((_resolve, reject) => {
      setTimeout(() => reject(new Error('no channel from the agent within 30 s')), 30_000);
    })]);
    result.callee = { state: theirs.state, transport: theirs.transport, peerDid: theirs.peerDid, label: theirs.label };
    let echoed = 0;
    for await (const message of theirs) {
      await theirs.send(typeof message === 'string' ? `echo ${message}` : message);
      echoed += 1;
    }
    result.echoed = echoed;
    result.calleeEnd = { state: theirs.state, reason: theirs.closeReason };
    await client.close();
    return result;
  },
  /** A channel to an agent whose signed SDP names another DTLS certificate than its own. */
  async tampered({ gateway, peer }) {
    const { GatewayClient } = window.aiconexus;
    const client = new GatewayClient(gateway);
    await client.connect();
    const started = performance.now();
    try {
      const channel = await client.connectPeer(peer, { timeout: 15 });
      return { opened: channel.transport };
    } catch (error) {
      return { name: error.name, code: error.code, message: error.message, seconds: (performance.now() - started) / 1000 };
    } finally {
      await client.close();
    }
  },
  /** A gateway that does not allow this page's origin: what the page can see. */
  async refused({ gateway }) {
    const raw = await new Promise((resolve) => {
      const ws = new WebSocket(gateway, 'ioap.v1');
      const frames = [];
      ws.onmessage = (event) => frames.push(event.data);
      ws.onclose = (event) => resolve({ code: event.code, reason: event.reason, frames });
    });
    const { GatewayClient } = window.aiconexus;
    const client = new GatewayClient(gateway);
    try {
      await client.connect();
      return { raw, connected: true };
    } catch (error) {
      return {
        raw, connected: false, error: error.name, code: error.code, closeCode: error.closeCode,
        closeReason: error.closeReason, details: error.details, message: error.message,
      };
    }
  },
};

/**
 * clients/js/examples/browser.html as a person uses it: connect, read the DID, send to `peer`,
 * wait for the answer in the page's log.
 * @param {import('playwright-core').Page} page
 * @param {{gateway: string, peer: string}} argument
 */
async function examplePage(page, { gateway, peer }) {
  await page.fill('#url', gateway);
  await page.click('#connect');
  await page.waitForFunction(() => document.getElementById('did')?.textContent?.startsWith('did:key:'), null, { timeout: 20_000 });
  const did = await page.textContent('#did');
  await page.fill('#to', peer);
  await page.click('#send');
  await page.waitForFunction((from) => document.getElementById('log')?.textContent?.includes(`INTENT from ${from}`), peer, { timeout: 20_000 });
  const stored = await page.evaluate(() => localStorage.getItem('aiconexus-key'));
  return { did, log: await page.textContent('#log'), stored: stored !== null };
}

/**
 * examples/browser/index.html as a person uses it with examples/browser/python_peer.py: connect,
 * send a signed message, open a data channel, send on it, see the agent's channel to the page.
 * @param {import('playwright-core').Page} page
 * @param {{gateway: string, peer: string}} argument
 */
async function examplePeerPage(page, { gateway, peer }) {
  const logHas = (text) => page.waitForFunction((wanted) => document.getElementById('log')?.textContent?.includes(wanted), text, { timeout: 20_000 });
  await page.fill('#url', gateway);
  const prefilled = await page.inputValue('#peer');
  await page.click('#connect');
  await page.waitForFunction(() => document.getElementById('did')?.textContent?.startsWith('did:key:'), null, { timeout: 20_000 });
  await page.click('#send');
  await logHas(`INTENT from ${peer}`);
  await page.click('#open');
  await logHas('channel open in');
  await page.click('#channel-send');
  await logHas('channel: python got: hello from a browser');
  await logHas(`channel from ${peer} open`); // the agent opened one to the page too
  return { did: await page.textContent('#did'), prefilled, channel: await page.textContent('#channel'), log: await page.textContent('#log') };
}

const [pageUrl, name, argument] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'aiconexus-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
  headless: true,
  args: FLAGS,
  timeout: 60_000,
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  const console_ = [];
  page.on('console', (message) => console_.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => console_.push(`pageerror: ${error.message}`));
  await page.goto(pageUrl);
  let result;
  try {
    if (name === 'example') {
      result = await examplePage(page, JSON.parse(argument));
    } else if (name === 'examplePeer') {
      result = await examplePeerPage(page, JSON.parse(argument));
    } else {
      await page.waitForSelector('body[data-ready="yes"]', { timeout: 20_000 });
      result = await page.evaluate(scenarios[name], JSON.parse(argument));
    }
  } catch (error) {
    result = { failed: String(error) };
  }
  process.stdout.write(`${JSON.stringify({ result, console: console_ })}\n`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
