// For tests/js/test_checks_differential.py: each stdin line is {"envelope": text} or {"did": text};
// each stdout line is what the JavaScript client says: {"ok": true} or {"ok": false, "code": ...}.
import { createInterface } from 'node:readline';

import { parseEnvelope, publicKeyFromDid } from '../../clients/js/src/index.js';

const out = [];
for await (const line of createInterface({ input: process.stdin })) {
  const item = JSON.parse(line);
  try {
    if ('envelope' in item) parseEnvelope(item.envelope);
    else publicKeyFromDid(item.did);
    out.push('{"ok":true}');
  } catch (error) {
    out.push(JSON.stringify({ ok: false, code: error.code ?? error.name, message: error.message }));
  }
}
process.stdout.write(out.join('\n') + '\n');
