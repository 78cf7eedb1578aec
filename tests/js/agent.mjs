// A Node agent for the Python tests: the JavaScript client (clients/js) driven by JSON lines.
//
// stdin, one command a line:   {"op": "connect", "url": ..., "seed": "<hex>"?, "options": {...}}
//                              {"op": "send", "to": ..., "type": ..., "payload": {...}, "correlationId": ..., "encrypt": bool}
//                              {"op": "sendMany" | "sendAll", "to": ..., "count": n}
//                              {"op": "receive", "timeout": seconds}
//                              {"op": "receipt", "id": ...} | {"op": "mailbox", "rules": {...}}   (send takes "ttl")
//                              {"op": "discover", "query": {...}} | {"op": "watch" | "unwatch", "dids": [...]}
//                              {"op": "ping"} | {"op": "raw", "text": ...} | {"op": "close"} | {"op": "state"}
// stdout, one JSON line per answer ({"ok": true, ...} or {"ok": false, "error": name, "message", ...})
// and per event ({"event": "invalid" | "connection" | "presence", ...}), in the order they happen
// (a presence event: {"event": "presence", "did", "change": online/offline/replaced, "state", "changes"},
// read from client.presence()).
import { createInterface } from 'node:readline';

import { AgentKey, GatewayClient } from '../../clients/js/src/index.js';

/** @param {Record<string, unknown>} record */
function emit(record) {
  process.stdout.write(`${JSON.stringify(record)}\n`);
}

/** @type {GatewayClient | null} */
let client = null;

/** @param {unknown} error */
function failure(error) {
  const e = /** @type {any} */ (error);
  return {
    ok: false, error: e?.name ?? 'Error', message: String(e?.message ?? e), code: e?.code ?? null,
    closeCode: e?.closeCode ?? null, closeReason: e?.closeReason ?? null, status: e?.status ?? null,
    retryAfter: e?.retryAfter ?? null,
  };
}

/** @param {import('../../clients/js/src/index.js').Message} message */
function plain(message) {
  return {
    id: message.id, type: message.type, sender: message.sender, recipient: message.recipient,
    payload: message.payload, correlationId: message.correlationId, errorCode: message.errorCode, raw: message.raw,
    encrypted: message.encrypted,
  };
}

function state() {
  if (client === null) return {};
  return {
    did: client.did, state: client.state, gatewayDid: client.gatewayDid, sessionId: client.sessionId,
    reconnects: client.reconnects, invalidMessages: client.invalidMessages, closeCode: client.closeCode,
    closeReason: client.closeReason, rateLimit: client.rateLimit, agentTimeout: client.agentTimeout,
    watching: client.watching, duplicates: client.duplicates,
  };
}

/** @param {any} command */
async function run(command) {
  switch (command.op) {
    case 'connect': {
      const key = command.seed ? await AgentKey.fromSeed(Buffer.from(command.seed, 'hex')) : await AgentKey.generate();
      client = new GatewayClient(command.url, key, command.options ?? {});
      client.onInvalid((error) => emit({ event: 'invalid', reason: error.reason, text: error.text }));
      client.onConnectionChange((event) => emit({ event: 'connection', ...event }));
      await client.connect();
      (async (c) => {
        for await (const e of c.presence()) emit({ event: 'presence', did: e.did, change: e.event, state: e.state, changes: e.changes });
      })(client);
      return state();
    }
    case 'send': {
      if (client === null) throw new Error('connect first');
      const id = await client.send(command.to, command.type, command.payload ?? {},
        { correlationId: command.correlationId ?? null, encrypt: command.encrypt ?? false, ttl: command.ttl });
      return { id };
    }
    case 'receipt': // the mailbox: what became of a message sent with a ttl
      if (client === null) throw new Error('connect first');
      return { status: await client.receipt(command.id, { timeout: command.timeout ?? 10 }), duplicates: client.duplicates };
    case 'discover': // discovery (issue 15): one page, every card checked
      if (client === null) throw new Error('connect first');
      return { page: await client.discover(command.query ?? {}) };
    case 'watch':
      if (client === null) throw new Error('connect first');
      return { states: await client.watch(command.dids) };
    case 'unwatch':
      if (client === null) throw new Error('connect first');
      await client.unwatch(command.dids);
      return {};
    case 'mailbox':
      if (client === null) throw new Error('connect first');
      return { mailbox: await client.mailbox(command.rules ?? {}) };
    case 'sendMany': { // `count` INTENTs one after another, as fast as send() lets them go
      if (client === null) throw new Error('connect first');
      const started = performance.now();
      const ids = [];
      for (let i = 0; i < command.count; i++) ids.push(await client.send(command.to, 'INTENT', { n: i }));
      return { ids, seconds: (performance.now() - started) / 1000 };
    }
    case 'sendAll': { // `count` INTENTs started at once, none awaited before the next
      if (client === null) throw new Error('connect first');
      const c = client;
      const ids = await Promise.all(Array.from({ length: command.count }, (_, i) => c.send(command.to, 'INTENT', { n: i })));
      return { ids };
    }
    case 'receive':
      if (client === null) throw new Error('connect first');
      return { message: plain(await client.receive({ timeout: command.timeout ?? 10 })) };
    case 'ping':
      if (client === null) throw new Error('connect first');
      return { rtt: await client.ping() };
    case 'raw':
      if (client === null) throw new Error('connect first');
      client.sendRaw(command.text);
      return {};
    case 'state':
      return state();
    case 'close':
      await client?.close();
      return state();
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
// commands run one after another, in the order they came
let chain = Promise.resolve();
lines.on('line', (line) => {
  chain = chain.then(async () => {
    try {
      emit({ ok: true, ...(await run(JSON.parse(line))) });
    } catch (error) {
      emit(failure(error));
    }
  });
});
lines.on('close', () => {
  chain.then(async () => {
    await client?.close();
    process.exit(0);
  });
});
