// For tests/js/test_canonical_differential.py: each stdin line is a JSON string holding one text;
// each stdout line says what the JavaScript client makes of it: {"ok": true, "canonical": base64 of
// the RFC 8785 bytes} or {"ok": false, "error": the error's name, "message": ...}.
import { createInterface } from 'node:readline';

import { canonicalBytes, parseStrict } from '../../clients/js/src/index.js';

const out = [];
for await (const line of createInterface({ input: process.stdin })) {
  const text = JSON.parse(line);
  try {
    out.push(JSON.stringify({ ok: true, canonical: Buffer.from(canonicalBytes(parseStrict(text))).toString('base64') }));
  } catch (error) {
    out.push(JSON.stringify({ ok: false, error: error.name, message: error.message }));
  }
}
process.stdout.write(out.join('\n') + '\n');
