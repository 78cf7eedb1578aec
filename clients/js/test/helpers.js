// Shared by the unit tests: where the repository's test data and docs are.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const DATA = `${REPO}tests/data/`;

/** @param {string} path relative to the repository */
export function readText(path) {
  return readFileSync(`${REPO}${path}`, 'utf8');
}

/** @param {string} path relative to the repository */
export function readJson(path) {
  return JSON.parse(readText(path));
}

/** @param {string} hex */
export function fromHex(hex) {
  return Uint8Array.from(hex.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}
