/**
 * The contract's guards: `buf lint` clean (only ENUM_VALUE_PREFIX relaxed, in buf.yaml), no breaking
 * change against the published baseline (proto-baseline.binpb, refreshed deliberately with
 * `npm run proto:baseline`), and the generated TypeScript current with proto/.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PATH = `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}`;
const BUF = join(ROOT, 'node_modules/.bin/buf');

function buf(args: string[]): string {
  return execFileSync(BUF, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH } });
}

function files(dir: string, out: string[] = [], base = dir): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) files(p, out, base);
    else if (p.endsWith('_pb.ts')) out.push(relative(base, p));
  }
  return out.sort();
}

describe('the contract', () => {
  it('passes buf lint', () => {
    assert.equal(buf(['lint']), '');
  });

  it('relaxes no lint rule but ENUM_VALUE_PREFIX for our own protos', () => {
    const yaml = readFileSync(join(ROOT, 'buf.yaml'), 'utf8');
    const except = yaml.slice(yaml.indexOf('except:'), yaml.indexOf('breaking:'));
    assert.deepEqual(except.match(/- [A-Z_]+/g), ['- ENUM_VALUE_PREFIX']);
  });

  it('has no breaking change against the published baseline', () => {
    assert.equal(buf(['breaking', 'proto', '--against', 'proto-baseline.binpb']), '');
  });

  it('has generated code that is current (npm run proto:generate)', () => {
    const out = mkdtempSync(join(tmpdir(), 'neuro-gen-'));
    try {
      buf(['generate', '-o', out]);
      const fresh = join(out, 'src/gen');
      const have = join(ROOT, 'src/gen');
      assert.deepEqual(files(fresh), files(have));
      for (const f of files(fresh)) assert.equal(readFileSync(join(have, f), 'utf8'), readFileSync(join(fresh, f), 'utf8'), `${f} is stale: run npm run proto:generate`);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
