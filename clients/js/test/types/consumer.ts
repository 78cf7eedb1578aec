// What a TypeScript user of the package writes: checked with the declarations in types/ (tsc --noEmit
// -p test/types, from tests/js/test_node_unit.py). Never run.
import {
  AgentKey, ConnectionClosed, GatewayClient, GatewayError, type Message, parseStrict, canonicalize,
  PeerChannel, PeerError, PeerRefused,
} from '@aiconexus/gateway-client';

export async function channel(client: GatewayClient, peer: string): Promise<void> {
  try {
    const opened: PeerChannel = await client.connectPeer(peer, { label: 'chat', timeout: 10, fallback: true });
    const transport: 'direct' | 'turn' | 'relay' | null = opened.transport;
    await opened.send('text');
    await opened.send(new Uint8Array([1, 2]));
    const data: string | Uint8Array = await opened.receive({ timeout: 5 });
    for await (const more of opened) console.log(more, data, transport, opened.peerDid, opened.state);
    await opened.close();
  } catch (error) {
    if (error instanceof PeerRefused) console.log(error.reasonCode);
    if (error instanceof PeerError) console.log(error.code, error.peerDid);
  }
  const stop: () => void = client.onPeer(async (incoming: PeerChannel) => { await incoming.close(); });
  stop();
  for await (const incoming of client.peers()) await incoming.send('hi');
  console.log(client.iceServers.map((server) => server.urls), client.channels.length);
  // @ts-expect-error: a channel carries strings and bytes, not objects
  await (await client.connectPeer(peer)).send({ not: 'data' });
}

export async function agent(peer: string): Promise<void> {
  const key: AgentKey = await AgentKey.generate({ extractable: false });
  const client = new GatewayClient('ws://localhost:8000/ws', key, {
    metadata: { name: 'typescript' }, reconnect: { maxDelay: 10 }, pingInterval: null,
  });
  try {
    await client.connect();
  } catch (error) {
    if (error instanceof GatewayError) console.log(error.code, error.closeCode, error.details);
    throw error;
  }
  const id: string = await client.send(peer, 'INTENT', { intent: 'hello' }, { correlationId: null });
  const reply: Message = await client.receive({ timeout: 5 });
  const code: string | null = reply.errorCode;
  const answers: string | null = reply.correlationId;
  console.log(id, code, answers, reply.sender, reply.payload, reply.raw);
  const stop: () => void = client.onMessage(async (message: Message) => {
    await client.send(message.sender, 'ANSWER', { sdp: '' }, { correlationId: message.id });
  }, { types: ['OFFER'] });
  stop();
  client.onInvalid((error) => console.warn(error.reason, error.text));
  client.onConnectionChange((event) => console.log(event.state, event.code, event.attempt, event.delay));
  const rtt: number = await client.ping({ timeout: 2 });
  for await (const message of client) console.log(message.type, rtt);
  const did: string | null = client.did;
  const state: string = client.state;
  console.log(did, state, client.rateLimit?.messagesPerSecond, canonicalize(parseStrict('{"b":1,"a":2}')));
  await client.close();
  await client.waitClosed();
  if (client.closeCode === 4403) throw new ConnectionClosed(client.closeCode, client.closeReason);
  // @ts-expect-error: a payload is an object
  await client.send(peer, 'INTENT', 'not an object');
  // @ts-expect-error: the key is an AgentKey, not a DID
  new GatewayClient('ws://localhost:8000/ws', peer);
}

export async function directory(client: GatewayClient, peer: string): Promise<void> {
  const card = { name: 'Translator', capabilities: ['translate'] };
  const listed = new GatewayClient('ws://localhost:8000/ws', undefined, { card, unlisted: false });
  const page = await client.discover({ capability: 'translate', namePrefix: 'tr', dids: [peer], limit: 10 });
  const next: string | null = page.next;
  const rejected: number = page.rejected;
  for (const found of page.agents) console.log(found.did, found.name, found.capabilities.join(), found.card?.name, next, rejected);
  for await (const found of client.discoverAll('translate')) console.log(found.did);
  const states: Record<string, 'online' | 'offline'> = await client.watch([peer]);
  client.onPresence((event) => console.log(event.did, event.event, event.state, event.changes, states));
  for await (const event of client.presence()) if (event.state === 'offline') await client.unwatch([event.did]);
  const status: string = await client.receipt(await client.send(peer, 'INTENT', {}, { ttl: 60 }), { timeout: 5 });
  console.log(status, client.watching, client.duplicates, listed.did, await client.mailbox({ enabled: true, blocked: [] }));
  // @ts-expect-error: the query's names are the client's (namePrefix), not the wire's
  await client.discover({ name_prefix: 'tr' });
}
