// The peer-channel negotiation without WebRTC or sockets (peer-signaling.js, peer-proof.js), played
// against the Python SDK's own messages: tests/js/record_peer_transcript.py recorded the payloads of
// a negotiation between two Python aiortc agents (Alice calls, Bob answers) and their identity
// proofs; here the JavaScript state machine takes either side's place.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  AgentKey, GLARE, Negotiation, PeerSignaling, RelayStream, buildProof, checkCandidate, checkProof, isPeerSignal,
  supportedFingerprints, withoutCandidates,
} from '../src/index.js';
import { GatewayClient } from '../src/client.js';
import { fromHex, readJson } from './helpers.js';

const T = readJson('clients/js/test/fixtures/peer-transcript.json');
const ID = T.negotiation_id;
const [OFFER, ...ALICE_CANDIDATES] = T.from_alice.filter((/** @type {any} */ m) => m.type);
const [ANSWER, ...BOB_CANDIDATES] = T.from_bob.filter((/** @type {any} */ m) => m.type);
const ALICE_PROOF = T.from_alice.at(-1).proof;
const BOB_PROOF = T.from_bob.at(-1).proof;
/** the digests of the certificate whose fingerprints a recorded SDP carries (aiortc: SHA-256, -384, -512) */
const digests = (/** @type {string} */ sdp) => Object.fromEntries(supportedFingerprints(sdp).map((print) => [print.algorithm, print.value]));
const ALICE_CERTIFICATE = digests(OFFER.payload.description.sdp);
const BOB_CERTIFICATE = digests(ANSWER.payload.description.sdp);
const kinds = (/** @type {Array<{kind: string}>} */ decisions) => decisions.map((decision) => decision.kind);

test('as the callee of a Python OFFER: accept, answer, candidates after the description, proof, open', async () => {
  const bob = new PeerSignaling(T.bob);
  assert.ok(isPeerSignal('OFFER', OFFER.payload));
  const outcome = bob.receive(T.alice, 'OFFER', OFFER.payload);
  assert.equal(outcome.kind, 'newOffer');
  const negotiation = /** @type {Negotiation} */ (/** @type {any} */ (outcome).negotiation);
  assert.deepEqual([negotiation.role, negotiation.label, negotiation.fallback, negotiation.state], ['callee', 'default', true, 'received']);
  assert.deepEqual(negotiation.remoteFingerprints.find((print) => print.algorithm === 'sha-256')?.value, T.alice_fingerprint);
  // Alice's candidates arrive before the description is applied: kept, in order
  for (const candidate of ALICE_CANDIDATES) {
    const routed = bob.receive(T.alice, 'ICE_CANDIDATE', candidate.payload);
    assert.equal(routed.kind, 'route');
    assert.deepEqual(/** @type {any} */ (routed).decisions, []);
  }
  assert.deepEqual(negotiation.accept(), [{ kind: 'applyRemote', description: OFFER.payload.description }]);
  const answered = negotiation.localAnswer({ type: 'answer', sdp: ANSWER.payload.description.sdp });
  assert.deepEqual(answered, [{ kind: 'signal', type: 'ANSWER', payload: ANSWER.payload }]); // what Python's callee sent
  const applied = negotiation.applied();
  assert.deepEqual(applied.map((d) => /** @type {any} */ (d).candidate), [ALICE_CANDIDATES[0].payload.candidate, ALICE_CANDIDATES[1].payload.candidate, null]);
  // our own candidates go out as Python's did
  assert.deepEqual(negotiation.localCandidate(BOB_CANDIDATES[0].payload.candidate), [{ kind: 'signal', type: 'ICE_CANDIDATE', payload: BOB_CANDIDATES[0].payload }]);
  assert.deepEqual(negotiation.localCandidate(null), [{ kind: 'signal', type: 'ICE_CANDIDATE', payload: BOB_CANDIDATES[2].payload }]);
  // DTLS presents Alice's certificate: our proof, then hers (made by the Python SDK) checks
  assert.deepEqual(negotiation.connected(ALICE_CERTIFICATE, { relayed: false }), [{ kind: 'sendProof' }]);
  const problem = await checkProof(ALICE_PROOF, {
    negotiationId: ID, peerDid: T.alice, ownDid: T.bob, peerFingerprint: T.alice_fingerprint, ownFingerprint: T.bob_fingerprint,
  });
  assert.equal(problem, null);
  assert.deepEqual(negotiation.proved(problem), [{ kind: 'opened', transport: 'direct' }]);
  assert.equal(negotiation.state, 'open');
});

test('as the caller: the Python ANSWER is applied, a certificate that does not match its fingerprint is refused', () => {
  const make = () => {
    const alice = new PeerSignaling(T.alice, { newId: () => ID });
    const { negotiation, replies } = alice.connect(T.bob, 'default', { fallback: true });
    assert.deepEqual(replies, []);
    const offered = negotiation.localOffer(OFFER.payload.description);
    assert.deepEqual(offered, [{ kind: 'signal', type: 'OFFER', payload: OFFER.payload }]); // byte for byte Python's OFFER
    return { alice, negotiation };
  };
  const { alice, negotiation } = make();
  const routed = /** @type {any} */ (alice.receive(T.bob, 'ANSWER', ANSWER.payload));
  assert.deepEqual(routed.decisions, [{ kind: 'applyRemote', description: ANSWER.payload.description }]);
  assert.equal(negotiation.state, 'connecting');
  assert.equal(ALICE_CERTIFICATE['sha-256'], T.alice_fingerprint);
  assert.deepEqual(negotiation.connected({ 'sha-256': BOB_CERTIFICATE['sha-256'] }, { relayed: true }).map((d) => d.kind), ['failed', 'signal'],
    'every fingerprint of the signed SDP must match, not only one');
  const again = make();
  again.alice.receive(T.bob, 'ANSWER', ANSWER.payload);
  assert.deepEqual(again.negotiation.connected(BOB_CERTIFICATE, { relayed: true }), [{ kind: 'sendProof' }]);
  assert.deepEqual(again.negotiation.proved(null), [{ kind: 'opened', transport: 'turn' }]);
  // another agent's certificate (a man in the middle): refused, and the peer is told why
  const second = make();
  second.alice.receive(T.bob, 'ANSWER', ANSWER.payload);
  const refused = second.negotiation.connected(ALICE_CERTIFICATE, { relayed: false });
  assert.deepEqual(kinds(refused), ['failed', 'signal']);
  assert.equal(/** @type {any} */ (refused[0]).error.code, 'IDENTITY_MISMATCH');
  assert.equal(/** @type {any} */ (refused[1]).payload.closed.code, 'IDENTITY_MISMATCH');
  // a signal from a third agent for this negotiation is ignored
  assert.equal(alice.receive(T.alice, 'ICE_CANDIDATE', BOB_CANDIDATES[0].payload).kind, 'ignore');
});

test('identity proofs: ours checks the way Python builds it; a proof for other certificates or DIDs does not', async () => {
  const alice = await AgentKey.fromSeed(fromHex(T.alice_seed));
  const ours = await buildProof(alice, ID, T.bob, T.alice_fingerprint, T.bob_fingerprint);
  assert.equal(ours, ALICE_PROOF); // the same canonical text and signature (Ed25519 is deterministic)
  const expected = { negotiationId: ID, peerDid: T.bob, ownDid: T.alice, peerFingerprint: T.bob_fingerprint, ownFingerprint: T.alice_fingerprint };
  assert.equal(await checkProof(BOB_PROOF, expected), null);
  assert.match(/** @type {string} */ (await checkProof(BOB_PROOF, { ...expected, peerFingerprint: T.alice_fingerprint })), /another DTLS certificate/);
  assert.match(/** @type {string} */ (await checkProof(BOB_PROOF, { ...expected, ownFingerprint: T.bob_fingerprint })), /made for another DTLS certificate/);
  assert.match(/** @type {string} */ (await checkProof(BOB_PROOF, { ...expected, negotiationId: 'other' })), /negotiation_id/);
  assert.match(/** @type {string} */ (await checkProof(ALICE_PROOF, expected)), /'did'/); // a relayed proof of someone else
  const forged = JSON.parse(BOB_PROOF);
  forged.fingerprint = T.alice_fingerprint;
  assert.match(/** @type {string} */ (await checkProof(JSON.stringify(forged), { ...expected, peerFingerprint: T.alice_fingerprint })), /not signed by/);
  assert.match(/** @type {string} */ (await checkProof('hello', expected)), /not JSON|not an identity proof/);
  assert.match(/** @type {string} */ (await checkProof(new Uint8Array(4), expected)), /not an identity proof/);
});

test('glare: the OFFER of the DID that sorts first stands, on both sides, as Python decides', () => {
  assert.ok(T.alice < T.bob);
  assert.equal(T.glare_at_bob.outcome, 'Adopt'); // what Python's Bob did with Alice's crossing OFFER
  const bob = new PeerSignaling(T.bob, { newId: () => 'bob-offer' });
  const { negotiation: bobs } = bob.connect(T.alice, 'default');
  bobs.localOffer(OFFER.payload.description);
  const adopted = /** @type {any} */ (bob.receive(T.alice, 'OFFER', OFFER.payload));
  assert.equal(adopted.kind, 'adopt');
  assert.equal(adopted.superseded, bobs);
  assert.equal(adopted.negotiation.adopted, true);
  // Alice, whose DID sorts first, refuses Bob's crossing OFFER with GLARE
  const alice = new PeerSignaling(T.alice, { newId: () => ID });
  const { negotiation: alices } = alice.connect(T.bob, 'default');
  alices.localOffer(OFFER.payload.description);
  const refusal = /** @type {any} */ (alice.receive(T.bob, 'OFFER', { ...OFFER.payload, negotiation_id: 'bob-offer' }));
  assert.equal(refusal.kind, 'reply');
  assert.equal(refusal.payload.refused.code, GLARE);
  // and Bob, refused with GLARE, waits for Alice's OFFER instead of failing
  const bob2 = new PeerSignaling(T.bob, { newId: () => 'bob-offer' });
  const { negotiation: lost } = bob2.connect(T.alice, 'default');
  lost.localOffer(OFFER.payload.description);
  assert.deepEqual(/** @type {any} */ (bob2.receive(T.alice, 'ANSWER', refusal.payload)).decisions, []);
  assert.equal(lost.state, 'awaiting-winner');
  // a connectPeer made while the peer's OFFER waits: the DID that sorts first answers it
  const bob3 = new PeerSignaling(T.bob);
  bob3.receive(T.alice, 'OFFER', OFFER.payload);
  const joined = bob3.connect(T.alice, 'default');
  assert.equal(joined.negotiation.id, ID);
  assert.equal(joined.negotiation.adopted, true);
});

test('refusals: a bad OFFER, an OFFER without fingerprint, the peer refusing, the gateway not knowing the peer', () => {
  const bob = new PeerSignaling(T.bob);
  const bad = /** @type {any} */ (bob.receive(T.alice, 'OFFER', { negotiation_id: 'x', description: { type: 'answer', sdp: 'v=0' } }));
  assert.equal(bad.payload.refused.code, 'BAD_OFFER');
  const sdp = OFFER.payload.description.sdp.split('\r\n').filter((/** @type {string} */ line) => !line.startsWith('a=fingerprint')).join('\r\n');
  const unsigned = /** @type {any} */ (bob.receive(T.alice, 'OFFER', { negotiation_id: 'y', description: { type: 'offer', sdp } }));
  assert.equal(unsigned.payload.refused.code, 'NO_FINGERPRINT');
  const label = /** @type {any} */ (bob.receive(T.alice, 'OFFER', { ...OFFER.payload, negotiation_id: 'z', label: 'x'.repeat(129) }));
  assert.equal(label.payload.refused.code, 'BAD_OFFER');
  assert.equal(bob.receive(T.alice, 'ICE_CANDIDATE', { negotiation_id: 'unknown', candidate: null }).kind, 'ignore');

  const alice = new PeerSignaling(T.alice, { newId: () => ID });
  const { negotiation } = alice.connect(T.bob, 'default');
  negotiation.localOffer(OFFER.payload.description);
  const refused = /** @type {any} */ (alice.receive(T.bob, 'ANSWER', { negotiation_id: ID, refused: { code: 'PEER_REFUSED', message: 'no' } }));
  assert.equal(refused.decisions[0].error.name, 'PeerRefused');
  assert.equal(refused.decisions[0].error.reasonCode, 'PEER_REFUSED');

  const carol = new PeerSignaling(T.alice, { newId: () => 'n2' });
  const { negotiation: toNobody } = carol.connect(T.bob, 'default');
  toNobody.localOffer(OFFER.payload.description);
  carol.sent('offer-message-id', 'n2');
  const unknown = /** @type {any} */ (carol.gatewayError('offer-message-id', 'UNKNOWN_AGENT', 'not connected'));
  assert.equal(unknown.decisions[0].error.name, 'PeerUnknownAgent');
  assert.equal(carol.gatewayError('another-id', 'UNKNOWN_AGENT', ''), null);
});

test('timeouts and failures end in distinct errors; closing is told to the peer', () => {
  const make = (/** @type {string} */ state) => {
    const negotiation = new Negotiation({ id: 'n', localDid: T.alice, peerDid: T.bob, label: '', role: 'caller', timeout: 5 });
    negotiation.state = /** @type {any} */ (state);
    return negotiation;
  };
  assert.equal(/** @type {any} */ (make('offered').timedOut()[0]).error.name, 'PeerTimeout');
  assert.equal(/** @type {any} */ (make('connecting').timedOut()[0]).error.name, 'PeerICEFailed');
  assert.equal(/** @type {any} */ (make('proving').timedOut()[0]).error.name, 'PeerIdentityError');
  assert.equal(/** @type {any} */ (make('connecting').iceFailed()[0]).error.code, 'ICE_FAILED');
  assert.equal(/** @type {any} */ (make('connecting').dtlsFailed()[0]).error.code, 'IDENTITY_MISMATCH');
  assert.deepEqual(make('open').timedOut(), []);
  const open = make('open');
  assert.deepEqual(open.close('bye'), [{ kind: 'signal', type: 'ICE_CANDIDATE', payload: { negotiation_id: 'n', closed: { reason: 'bye' } } }]);
  assert.deepEqual(open.close('again'), []);
  const remote = make('open');
  assert.deepEqual(kinds(remote.receive('ICE_CANDIDATE', { negotiation_id: 'n', closed: { reason: 'done' } })), ['closed']);
  const givenUp = make('connecting');
  assert.equal(/** @type {any} */ (givenUp.receive('ICE_CANDIDATE', { negotiation_id: 'n', closed: { code: 'ICE_FAILED', reason: 'x' } })[0]).error.name, 'PeerICEFailed');
});

test('the relay fallback: either side switching, both at once, ordered frames, acks, a gap refused', () => {
  const fallback = (/** @type {string} */ state) => {
    const negotiation = new Negotiation({ id: 'n', localDid: T.alice, peerDid: T.bob, label: '', role: 'caller', fallback: true });
    negotiation.state = /** @type {any} */ (state);
    return negotiation;
  };
  const first = fallback('connecting');
  assert.deepEqual(first.iceFailed(), [{ kind: 'startRelay' }, { kind: 'signal', type: 'ICE_CANDIDATE', payload: { negotiation_id: 'n', relay: { op: 'open' } } }]);
  assert.deepEqual(first.receive('ICE_CANDIDATE', { negotiation_id: 'n', relay: { op: 'opened' } }), [{ kind: 'opened', transport: 'relay' }]);
  const second = fallback('connecting'); // the Python peer's ICE failed first
  assert.deepEqual(kinds(second.receive('ICE_CANDIDATE', { negotiation_id: 'n', relay: { op: 'open' } })), ['startRelay', 'signal', 'opened']);
  const both = fallback('relaying');
  assert.deepEqual(both.receive('ICE_CANDIDATE', { negotiation_id: 'n', relay: { op: 'open' } }), [{ kind: 'opened', transport: 'relay' }]);
  const noFallback = new Negotiation({ id: 'n', localDid: T.alice, peerDid: T.bob, label: '', role: 'caller' });
  noFallback.state = 'connecting';
  assert.deepEqual(noFallback.receive('ICE_CANDIDATE', { negotiation_id: 'n', relay: { op: 'open' } }), []);

  const out = new RelayStream(4);
  const frames = [out.data('a'), out.data(new Uint8Array([0, 255])), out.data('c'), out.data('d')];
  assert.deepEqual(frames[1], { op: 'data', seq: 1, bytes: 'AP8=' });
  assert.equal(out.credit, 0);
  assert.throws(() => out.data('e'), /credit/);
  assert.equal(out.receive({ op: 'ack', seq: 1 }), null);
  assert.equal(out.credit, 2);
  const into = new RelayStream(4);
  assert.equal(into.receive(frames[0]), 'a');
  assert.deepEqual(into.receive(frames[1]), new Uint8Array([0, 255]));
  assert.equal(into.consumed(), null);
  assert.deepEqual(into.consumed(), { op: 'ack', seq: 1 });
  assert.throws(() => into.receive(frames[3]), /arrived where 2 was expected/);
  assert.throws(() => new RelayStream(4).data('x'.repeat(32 * 1024 + 1)), /limited/);
});

test('SDP and candidates: fingerprints read, candidates removed before signing, RTCIceCandidateInit checked', () => {
  const sdp = `${OFFER.payload.description.sdp}a=candidate:1 1 udp 1 192.0.2.2 5000 typ host\r\na=end-of-candidates\r\n`;
  assert.equal(withoutCandidates(sdp), OFFER.payload.description.sdp);
  assert.ok(supportedFingerprints(OFFER.payload.description.sdp).some((print) => print.value === T.alice_fingerprint));
  assert.equal(checkCandidate({ candidate: '', sdpMid: '0' }), null); // a browser's end-of-candidates
  assert.deepEqual(checkCandidate(ALICE_CANDIDATES[0].payload.candidate), ALICE_CANDIDATES[0].payload.candidate);
  assert.throws(() => checkCandidate({ candidate: 'candidate:1 1 udp 1 192.0.2.2 5000 typ host' }), /sdpMid/);
  assert.throws(() => checkCandidate({ candidate: 'nonsense', sdpMid: '0' }), /RFC 8839/);
});

test('in Node (no RTCPeerConnection) connectPeer says that WebRTC is missing, without touching the network', async () => {
  const client = new GatewayClient('ws://127.0.0.1:9/ws', await AgentKey.fromSeed(fromHex(T.bob_seed)));
  assert.equal(globalThis.RTCPeerConnection, undefined);
  await assert.rejects(client.connectPeer(T.alice), /need WebRTC \(RTCPeerConnection\)/);
  await assert.rejects(client.connectPeer('did:key:nope'), /did:key|INVALID_DID|DID/);
  assert.deepEqual(client.iceServers, []);
});

test("the ICE servers are REGISTERED's ice_servers, RTCIceServer-shaped ones only", async () => {
  const client = new GatewayClient('ws://127.0.0.1:9/ws', await AgentKey.fromSeed(fromHex(T.alice_seed)));
  const session = /** @type {any} */ (client)._session;
  session.registration = {
    ice_servers: [
      { urls: ['stun:stun.example:3478'] },
      { urls: 'turn:turn.example:3478?transport=udp', username: '1800000000:did:key:z6Mk', credential: 'c2VjcmV0' },
      { urls: 42 }, 'turn:nonsense', null, { urls: ['stun:a', 7] },
    ],
  };
  assert.deepEqual(client.iceServers, [
    { urls: ['stun:stun.example:3478'] },
    { urls: 'turn:turn.example:3478?transport=udp', username: '1800000000:did:key:z6Mk', credential: 'c2VjcmV0' },
  ]);
  session.registration = { ice_servers: 'not a list' };
  assert.deepEqual(client.iceServers, []);
});

test('TURN REST credentials (<expiry>:<did>) are refreshed before they expire', async () => {
  const { credentialsExpire } = await import('../src/index.js');
  const servers = [{ urls: 'stun:s' }, { urls: 'turn:t', username: '1000:did:key:z6Mk', credential: 'x' }];
  assert.equal(credentialsExpire(servers, 999), false);
  assert.equal(credentialsExpire(servers, 1001), true);
  assert.equal(credentialsExpire([{ urls: 'turn:t', username: 'static-user', credential: 'x' }], 1e12), false);
});
