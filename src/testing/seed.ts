/**
 * The seed design document's JSON examples, kept verbatim in src/rpc/testdata. The seed elides parts
 * with `...` (`"obstacles": [...]`, `"scene_config": {...}`, a trailing `...` element); those are the only
 * edits made before parsing: the elided parts become empty.
 */
import { readFileSync } from 'node:fs';

export const SEED_EXAMPLES = [
  'create_session_request',
  'create_session_response',
  'create_training_session_request',
  'create_training_session_response',
  'resource_pool_status_response',
] as const;

export type SeedExample = (typeof SEED_EXAMPLES)[number];

export function seedText(name: SeedExample): string {
  return readFileSync(new URL(`../rpc/testdata/seed_${name}.json`, import.meta.url), 'utf8');
}

/** The example as JSON, with the seed's `...` elisions emptied. */
export function seedJson(name: SeedExample): Record<string, unknown> {
  const text = seedText(name)
    .replace(/\[\.\.\.\]/g, '[]')
    .replace(/\{\.\.\.\}/g, '{}')
    .replace(/,\s*\n\s*\.\.\.\s*\n/g, '\n');
  return JSON.parse(text) as Record<string, unknown>;
}
