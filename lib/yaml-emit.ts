// The YAML writer of synth: byte-for-byte what cdk8s's `Yaml.stringify` writes (the `yaml` package, YAML 1.1,
// lineWidth 0, undefined as null), about five times faster. Building the `yaml` package's document tree for every
// object was half of the synth time of 1,000 tenants (issue 26). Only the block layout is ours; every scalar and key
// is still spelled by the `yaml` package (memoized: most keys and values repeat across tenants), and a document with
// anything outside the plain-JSON subset, or a scalar the package writes over several lines, is handed to the
// package whole. test/yaml-emit.test.ts compares the two on the example platform, many tenants and tricky values.
import { stringify } from 'yaml';

const OPTIONS = { keepUndefined: true, lineWidth: 0, version: '1.1' } as const;

/** Thrown inside a document the fast path does not cover: the whole document goes to the `yaml` package. */
class NotCovered extends Error {}

/** Memoized spellings of scalars and keys; cleared when large, so memory stays bounded whatever the input. */
const memo = new Map<string, string>();
const MEMO_LIMIT = 200_000;

/** A scalar as the `yaml` package writes it in `context` (the text between the prefix and the newline). */
function spelled(context: 'value' | 'item' | 'key', v: string | number): string {
  const id = `${context[0]}${typeof v === 'number' ? 'n' : 's'}${v}`;
  const hit = memo.get(id);
  if (hit !== undefined) return hit;
  let out: string;
  let prefix: string;
  let suffix = '\n';
  if (context === 'value') {
    out = stringify({ k: v }, OPTIONS);
    prefix = 'k: ';
  } else if (context === 'item') {
    out = stringify([v], OPTIONS);
    prefix = '- ';
  } else {
    out = stringify({ [v]: 1 }, OPTIONS);
    prefix = '';
    suffix = ': 1\n';
  }
  if (!out.startsWith(prefix) || !out.endsWith(suffix)) throw new NotCovered();
  const text = out.slice(prefix.length, out.length - suffix.length);
  // Block scalars and explicit keys span lines: their indentation depends on where they sit.
  if (text.includes('\n') || text.startsWith('? ')) throw new NotCovered();
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(id, text);
  return text;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function scalar(v: unknown, context: 'value' | 'item'): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return spelled(context, v);
  throw new NotCovered();
}

function emitMap(obj: Record<string, unknown>, pad: string, out: string[]): void {
  for (const k of Object.keys(obj)) {
    const v = obj[k];
    const key = `${pad}${spelled('key', k)}:`;
    if (Array.isArray(v)) {
      if (v.length === 0) out.push(`${key} []`);
      else {
        out.push(key);
        emitSeq(v, `${pad}  `, out);
      }
    } else if (isPlainObject(v)) {
      if (Object.keys(v).length === 0) out.push(`${key} {}`);
      else {
        out.push(key);
        emitMap(v, `${pad}  `, out);
      }
    } else if (v !== null && typeof v === 'object') throw new NotCovered();
    else out.push(`${key} ${scalar(v, 'value')}`);
  }
}

function emitSeq(arr: unknown[], pad: string, out: string[]): void {
  const inner = `${pad}  `;
  for (const v of arr) {
    const nested = Array.isArray(v) ? v.length > 0 : isPlainObject(v) && Object.keys(v).length > 0;
    if (nested) {
      // The item's first line takes the dash; the rest keep the item's indentation.
      const start = out.length;
      if (Array.isArray(v)) emitSeq(v, inner, out);
      else emitMap(v as Record<string, unknown>, inner, out);
      out[start] = `${pad}- ${out[start].slice(inner.length)}`;
    } else if (Array.isArray(v)) out.push(`${pad}- []`);
    else if (isPlainObject(v)) out.push(`${pad}- {}`);
    else if (v !== null && typeof v === 'object') throw new NotCovered();
    else out.push(`${pad}- ${scalar(v, 'item')}`);
  }
}

/** One document, as cdk8s's Yaml.stringify writes it. */
export function yamlDocument(doc: unknown): string {
  if (isPlainObject(doc) && Object.keys(doc).length > 0) {
    try {
      const out: string[] = [];
      emitMap(doc, '', out);
      return `${out.join('\n')}\n`;
    } catch (e) {
      if (!(e instanceof NotCovered)) throw e;
    }
  }
  return doc === undefined ? '\n' : stringify(doc, OPTIONS);
}

/** Several documents separated by `---`, as cdk8s's Yaml.stringify writes them. */
export function yamlDocuments(docs: readonly unknown[]): string {
  return docs.map(yamlDocument).join('---\n');
}
