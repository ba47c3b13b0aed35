/**
 * Human-readable tables and the --json switch.
 */
import { toJson, type DescMessage, type MessageShape } from '@bufbuild/protobuf';

/** Prints rows as an aligned table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  return cells.map((r) => r.map((v, c) => (v ?? '').padEnd(widths[c]!)).join('  ').trimEnd()).join('\n');
}

/** A message as proto3 JSON with the contract's field names (snake_case), as Nexus sees them. */
export function json<D extends DescMessage>(schema: D, msg: MessageShape<D>): string {
  return JSON.stringify(toJson(schema, msg, { useProtoFieldName: true, alwaysEmitImplicit: false }), null, 2);
}
