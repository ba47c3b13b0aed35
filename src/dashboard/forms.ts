/** Form helpers without DOM (tested directly). */

/** `key=value` lines as a map; blank lines ignored. Values keep their commas ("hidden_sizes=64,64"). */
export function parsePairs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const eq = t.indexOf('=');
    if (eq <= 0) throw new Error(`"${t}" is not key=value`);
    out[t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
  }
  return out;
}
