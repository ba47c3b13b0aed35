/**
 * A small XML reader and the URDF subset the reference simulator needs: links, and joints with their
 * origin, axis, parent/child and limits. Everything else in a URDF (visuals, inertia, transmissions)
 * is skipped, so real-world files parse without change.
 */

/** One XML element; text content is not kept (URDF carries everything in attributes). */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (whole, ent: string) => {
    if (ent.startsWith('#x')) return String.fromCodePoint(parseInt(ent.slice(2), 16));
    if (ent.startsWith('#')) return String.fromCodePoint(parseInt(ent.slice(1), 10));
    return ENTITIES[ent] ?? whole;
  });
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
const ATTR = /\s*([A-Za-z_:][-A-Za-z0-9_:.]*)\s*=\s*("([^"]*)"|'([^']*)')/y;

/** Parses an XML document and returns its root element. Throws on malformed input. */
export function parseXml(text: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const fail = (what: string): never => {
    const line = text.slice(0, i).split('\n').length;
    throw new Error(`malformed XML at line ${line}: ${what}`);
  };
  const skipPast = (end: string) => {
    const j = text.indexOf(end, i);
    if (j < 0) fail(`unterminated ${JSON.stringify(text.slice(i, i + 12))}`);
    i = j + end.length;
  };
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    if (lt < 0) break;
    i = lt;
    if (text.startsWith('<?', i)) skipPast('?>');
    else if (text.startsWith('<!--', i)) skipPast('-->');
    else if (text.startsWith('<![CDATA[', i)) skipPast(']]>');
    else if (text.startsWith('<!', i)) skipPast('>');
    else if (text.startsWith('</', i)) {
      i += 2;
      NAME.lastIndex = i;
      const m = NAME.exec(text) ?? fail('bad closing tag');
      const open = stack.pop();
      if (!open || open.name !== m[0]) fail(`</${m[0]}> does not close <${open?.name ?? ''}>`);
      i = NAME.lastIndex;
      const gt = text.indexOf('>', i);
      if (gt < 0 || text.slice(i, gt).trim()) fail(`bad closing tag </${m[0]}>`);
      i = gt + 1;
    } else {
      i += 1;
      NAME.lastIndex = i;
      const m = NAME.exec(text) ?? fail('bad tag name');
      i = NAME.lastIndex;
      const el: XmlElement = { name: m[0], attrs: {}, children: [] };
      for (;;) {
        ATTR.lastIndex = i;
        const a = ATTR.exec(text);
        if (!a) break;
        el.attrs[a[1]!] = decodeEntities(a[3] ?? a[4] ?? '');
        i = ATTR.lastIndex;
      }
      while (/\s/.test(text[i] ?? '')) i++;
      const selfClosing = text.startsWith('/>', i);
      if (!selfClosing && text[i] !== '>') fail(`unexpected ${JSON.stringify(text[i] ?? 'end of input')} in <${el.name}>`);
      i += selfClosing ? 2 : 1;
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(el);
      else if (root) fail('more than one root element');
      else root = el;
      if (!selfClosing) stack.push(el);
    }
  }
  if (stack.length) fail(`<${stack[stack.length - 1]!.name}> is not closed`);
  return root ?? fail('no root element');
}

export type UrdfJointType = 'revolute' | 'continuous' | 'prismatic' | 'fixed' | 'floating' | 'planar';

/** A joint's placement in its parent link's frame (URDF `<origin>`; rpy applied as Rz·Ry·Rx). */
export interface Origin {
  xyz: [number, number, number];
  rpy: [number, number, number];
}

export interface UrdfJoint {
  name: string;
  type: UrdfJointType;
  parent: string;
  child: string;
  origin: Origin;
  /** Unit vector in the joint frame. */
  axis: [number, number, number];
  limit?: { lower: number; upper: number };
}

export interface Urdf {
  name: string;
  links: string[];
  joints: UrdfJoint[];
}

const JOINT_TYPES = new Set<UrdfJointType>(['revolute', 'continuous', 'prismatic', 'fixed', 'floating', 'planar']);

function triple(s: string | undefined, fallback: [number, number, number], what: string): [number, number, number] {
  if (s === undefined) return fallback;
  const parts = s.trim().split(/\s+/).map(Number);
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v))) throw new Error(`${what}: expected three numbers, got ${JSON.stringify(s)}`);
  return parts as [number, number, number];
}

function num(s: string | undefined, fallback: number, what: string): number {
  if (s === undefined) return fallback;
  const v = Number(s);
  if (!Number.isFinite(v)) throw new Error(`${what}: expected a number, got ${JSON.stringify(s)}`);
  return v;
}

/** Parses a URDF document. Throws an Error naming the offending element on anything it cannot use. */
export function parseUrdf(text: string): Urdf {
  const root = parseXml(text);
  if (root.name !== 'robot') throw new Error(`URDF root element is <${root.name}>, expected <robot>`);
  const links: string[] = [];
  const joints: UrdfJoint[] = [];
  for (const el of root.children) {
    if (el.name === 'link') {
      if (!el.attrs.name) throw new Error('<link> without a name');
      links.push(el.attrs.name);
    } else if (el.name === 'joint') {
      const name = el.attrs.name;
      if (!name) throw new Error('<joint> without a name');
      const type = el.attrs.type as UrdfJointType;
      if (!JOINT_TYPES.has(type)) throw new Error(`joint ${name}: unknown type ${JSON.stringify(el.attrs.type)}`);
      const child = (tag: string) => el.children.find((c) => c.name === tag);
      const parent = child('parent')?.attrs.link;
      const childLink = child('child')?.attrs.link;
      if (!parent || !childLink) throw new Error(`joint ${name}: needs <parent link> and <child link>`);
      const o = child('origin');
      const origin: Origin = {
        xyz: triple(o?.attrs.xyz, [0, 0, 0], `joint ${name} origin xyz`),
        rpy: triple(o?.attrs.rpy, [0, 0, 0], `joint ${name} origin rpy`),
      };
      const axis = triple(child('axis')?.attrs.xyz, [1, 0, 0], `joint ${name} axis`);
      const norm = Math.hypot(...axis);
      if (type !== 'fixed' && norm < 1e-9) throw new Error(`joint ${name}: zero axis`);
      const l = child('limit');
      const joint: UrdfJoint = {
        name,
        type,
        parent,
        child: childLink,
        origin,
        axis: norm > 0 ? [axis[0] / norm, axis[1] / norm, axis[2] / norm] : axis,
      };
      if (l) {
        const lower = num(l.attrs.lower, 0, `joint ${name} limit lower`);
        const upper = num(l.attrs.upper, 0, `joint ${name} limit upper`);
        if (upper < lower) throw new Error(`joint ${name}: limit upper ${upper} < lower ${lower}`);
        joint.limit = { lower, upper };
      }
      if ((type === 'revolute' || type === 'prismatic') && !joint.limit) throw new Error(`joint ${name}: a ${type} joint needs <limit>`);
      joints.push(joint);
    }
  }
  return { name: root.attrs.name ?? '', links, joints };
}
