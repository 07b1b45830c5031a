// The fingerprint of the extension's sources, kept next to the prebuilt bundle (lab/labextension/source.sha256)
// so that a source change without a rebuilt, recommitted bundle is caught (the bundle's own bytes depend on
// the folder it was built in, so they cannot be compared). `node scripts/fingerprint.mjs write` after a build;
// `... check` exits 1 when the sources differ from those the committed bundle was built from.
// tests/test_packaging.py computes the same digest: sorted paths, each "path\nsha256(content)\n".
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SOURCES = ['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'style'];
const TARGET = '../lab/labextension/source.sha256';

function walk(path) {
  return statSync(path).isDirectory() ? readdirSync(path).flatMap(name => walk(join(path, name))) : [path];
}

const sha256 = data => createHash('sha256').update(data).digest('hex');
const files = SOURCES.flatMap(walk).map(p => p.split('\\').join('/')).sort();
const digest = sha256(files.map(p => `${p}\n${sha256(readFileSync(p))}\n`).join(''));

if (process.argv[2] === 'write') {
  writeFileSync(TARGET, `${digest}\n`);
} else if (process.argv[2] === 'check') {
  let committed = '';
  try {
    committed = readFileSync(TARGET, 'utf8').trim();
  } catch {
    // no fingerprint: stale by definition
  }
  if (committed !== digest) {
    console.error(`${TARGET} (${committed || 'missing'}) does not match the sources (${digest}): run ` +
      "'npm ci && npm run build' in labextension/ and commit lab/labextension");
    process.exit(1);
  }
} else {
  console.error('usage: node scripts/fingerprint.mjs write|check');
  process.exit(2);
}
