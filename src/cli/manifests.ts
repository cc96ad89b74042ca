import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { LineCounter, parseAllDocuments } from 'yaml';

/** One object read from a manifest: where it came from, and the decoded value. */
export interface ManifestDoc {
  source: string;
  /** 1-based document number within the source. */
  index: number;
  object: unknown;
}

/** A manifest that cannot be read; the message names the file (or stdin) and the document. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

async function readStdin(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

function filesOf(path: string, recursive: boolean): string[] {
  if (!existsSync(path)) throw new ManifestError(`the path "${path}" does not exist`);
  if (!statSync(path).isDirectory()) return [path];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    const p = join(path, name);
    if (statSync(p).isDirectory()) {
      if (recursive) out.push(...filesOf(p, true));
    } else if (EXTENSIONS.has(extname(name))) out.push(p);
  }
  return out;
}

/** Splits one source into its objects (YAML multi-document or JSON; `kind: List` flattened). */
export function parseManifests(text: string, source: string): ManifestDoc[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: ManifestDoc[] = [];
  list.forEach((doc, i) => {
    const index = i + 1;
    const where = (offset: number | undefined) => {
      const p = lc.linePos(offset ?? doc.range?.[0] ?? 0);
      return `${source}: document ${index} (line ${p.line}, column ${p.col})`;
    };
    const err = doc.errors[0];
    if (err) throw new ManifestError(`${where(err.pos[0])}: ${err.message.split('\n')[0]}`);
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document
    const check = (v: unknown, what: string) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw new ManifestError(
          `${where(doc.range?.[0])}: ${what} is not a mapping (an object with apiVersion and kind)`,
        );
      const o = v as Record<string, unknown>;
      for (const f of ['apiVersion', 'kind'])
        if (typeof o[f] !== 'string' || o[f] === '')
          throw new ManifestError(`${where(doc.range?.[0])}: ${what}: "${f}" is required`);
      return o;
    };
    const o = check(value, 'the document');
    if (o.kind === 'List') {
      if (!Array.isArray(o.items))
        throw new ManifestError(`${where(doc.range?.[0])}: a List needs "items"`);
      o.items.forEach((item, j) => out.push({ source, index, object: check(item, `items[${j}]`) }));
    } else out.push({ source, index, object: o });
  });
  return out;
}

/**
 * Reads `-f` arguments as kubectl does: files (.yaml, .yml, .json),
 * directories (their manifest files in name order; subdirectories only
 * with `recursive`), or "-" for standard input.
 */
export async function loadManifests(
  paths: string[],
  opts: { recursive?: boolean; stdin?: NodeJS.ReadableStream } = {},
): Promise<ManifestDoc[]> {
  const out: ManifestDoc[] = [];
  for (const p of paths) {
    if (p === '-') {
      out.push(...parseManifests(await readStdin(opts.stdin ?? process.stdin), 'stdin'));
      continue;
    }
    for (const f of filesOf(p, opts.recursive ?? false))
      out.push(...parseManifests(readFileSync(f, 'utf8'), f));
  }
  return out;
}
