// Parses Mermaid diagrams with mermaid's own parser (npm mermaid, pinned in package.json):
// `node tests/js/mermaid-parse.mjs A.mmd B.mmd ...` prints {"A.mmd": "ok" | "<error>", ...}
// and exits 1 when any fails. mermaid expects a DOM (its sanitizer hooks into DOMPurify), so
// jsdom provides one. Used by tests/unit/test_report.py.
import { readFile } from 'node:fs/promises';
import { JSDOM } from 'jsdom';

const { window } = new JSDOM('');
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

const out = {};
for (const file of process.argv.slice(2)) {
  try {
    const result = await mermaid.parse(await readFile(file, 'utf8'));
    out[file] = result && result.diagramType ? 'ok' : 'not a diagram';
  } catch (err) {
    out[file] = String(err.message || err).split('\n').slice(0, 3).join(' ');
  }
}
console.log(JSON.stringify(out));
process.exit(Object.values(out).every((v) => v === 'ok') ? 0 : 1);
