/**
 * Reading `-f FILE|DIR|-` as kubectl does: files, directories of manifests
 * and standard input; multi-document YAML, JSON, and List objects flattened.
 * Only the envelope is checked here (a mapping with `apiVersion` and `kind`);
 * everything else is the server's to validate, so that `apply` and
 * `apply --dry-run` report the same problems in the same words.
 */
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { isMap, isSeq, LineCounter, parseAllDocuments } from 'yaml';

/** One object read from a manifest: where it came from, and the decoded value. */
export interface ManifestDoc {
  /** The file as it was named (joined onto the directory given), or "stdin". */
  source: string;
  /** 1-based document number within the source; the items of a List share their document's. */
  index: number;
  object: unknown;
}

/**
 * A manifest that cannot be read. The message names the file (or "stdin"),
 * and for a bad document its number and line:
 * `web.yaml: document 2 (line 14): missing "kind"`.
 */
export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** The extensions read from a directory; a file named explicitly is read whatever its name. */
const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** Guards `toJS` against alias bombs ("billion laughs"); generous for real manifests. */
const MAX_ALIAS_COUNT = 100;

/**
 * Reads `-f` arguments in order: a file, a directory (its .yaml, .yml and
 * .json files by name; subdirectories only with `recursive`), or "-" for
 * standard input. Empty documents are skipped; Lists are flattened.
 */
export async function loadManifests(
  paths: string[],
  opts: { recursive?: boolean; stdin?: NodeJS.ReadableStream } = {},
): Promise<ManifestDoc[]> {
  const out: ManifestDoc[] = [];
  for (const p of paths) {
    if (p === '-') {
      out.push(...parseManifests(await readStream(opts.stdin ?? process.stdin), 'stdin'));
      continue;
    }
    for (const file of await manifestFiles(p, opts.recursive ?? false))
      out.push(...parseManifests(await readText(file), file));
  }
  return out;
}

/** The files a `-f` path names, in the order kubectl visits them. */
async function manifestFiles(path: string, recursive: boolean): Promise<string[]> {
  if (/^https?:\/\//.test(path))
    throw new ManifestError(
      `the path "${path}" is a URL; Baton reads manifests from files only: download it and pass the file`,
    );
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new ManifestError(`the path "${path}" does not exist`);
  return info.isDirectory() ? walk(path, recursive) : [path];
}

/**
 * Like Go's filepath.Walk, as kubectl uses it: entries in name order, a
 * subdirectory's files where its name sorts. Symbolic links to directories
 * are not followed (no loops); links to files are read.
 */
async function walk(dir: string, recursive: boolean): Promise<string[]> {
  const out: string[] = [];
  const names = (await readdir(dir)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) {
    const p = join(dir, name);
    const l = await lstat(p);
    if (l.isDirectory()) {
      if (recursive) out.push(...(await walk(p, true)));
      continue;
    }
    if (!EXTENSIONS.has(extname(name))) continue; // case-sensitive, as in kubectl
    const target = l.isSymbolicLink() ? await stat(p).catch(() => undefined) : l;
    if (target?.isFile()) out.push(p);
  }
  return out;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(e);
    throw new ManifestError(`${file}: cannot read the file: ${why}`);
  }
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

const shapeOf = (v: unknown): string =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'a sequence'
      : typeof v === 'object'
        ? 'a mapping'
        : `a ${typeof v}`;

/** The AST node under a mapping key or sequence index, for its line number; undefined if none. */
function child(node: unknown, key: string | number): unknown {
  if (typeof key === 'string' && isMap(node)) return node.get(key, true);
  if (typeof key === 'number' && isSeq(node)) return node.items[key];
  return undefined;
}

function startOf(node: unknown): number | undefined {
  const r = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return r?.[0];
}

/**
 * Splits one source's text into its objects. YAML is read as YAML 1.1, as
 * kubectl reads it (`defaultMode: 0644` is octal, `yes`/`no` are booleans),
 * with duplicate keys an error and merge keys (`<<: *base`) honoured; JSON
 * is YAML, so the same reader gives JSON files their line numbers too.
 */
export function parseManifests(text: string, source: string): ManifestDoc[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text.replace(/^\uFEFF/, ''), {
    lineCounter,
    version: '1.1',
    prettyErrors: false,
    uniqueKeys: true,
    merge: true,
  });
  const out: ManifestDoc[] = [];
  docs.forEach((doc, i) => {
    const index = i + 1;
    const fail = (offset: number | undefined, reason: string, column = false): never => {
      const pos = lineCounter.linePos(offset ?? doc.range[0]);
      const where = column ? `line ${pos.line}, column ${pos.col}` : `line ${pos.line}`;
      throw new ManifestError(`${source}: document ${index} (${where}): ${reason}`);
    };

    const syntax = doc.errors[0];
    if (syntax) fail(syntax.pos[0], syntax.message.split('\n')[0], true);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (e) {
      fail(startOf(doc.contents), (e as Error).message);
    }
    if (value === null || value === undefined) return; // an empty document, or only comments

    /** Checks the envelope; flattens Lists (nested ones too, as kubectl does). */
    const visit = (v: unknown, node: unknown, path: string, inherit?: [string, string]): void => {
      const what = path === '' ? '' : `${path}: `;
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        fail(
          startOf(node),
          `${what}expected a mapping with apiVersion and kind, found ${shapeOf(v)}`,
        );
      let o = v as Record<string, unknown>;
      // The items of a typed list (`kind: PodList`, as the API returns them)
      // carry no apiVersion or kind; they are the list's, as kubectl infers.
      if (inherit && o.apiVersion === undefined && o.kind === undefined)
        o = { apiVersion: inherit[0], kind: inherit[1], ...o };
      const missing = (['apiVersion', 'kind'] as const).filter(
        (f) => o[f] === undefined || o[f] === null || o[f] === '',
      );
      if (missing.length > 0)
        fail(startOf(node), `${what}missing ${missing.map((f) => `"${f}"`).join(' and ')}`);
      for (const f of ['apiVersion', 'kind'] as const)
        if (typeof o[f] !== 'string')
          fail(startOf(child(node, f)), `${what}"${f}" must be a string, found ${shapeOf(o[f])}`);
      const kind = o.kind as string;
      if (!kind.endsWith('List') || (o.items === undefined && kind !== 'List')) {
        out.push({ source, index, object: o });
        return;
      }
      const itemsNode = child(node, 'items');
      if (o.items === null || o.items === undefined) return; // an empty List
      if (!Array.isArray(o.items))
        fail(
          startOf(itemsNode),
          `${what}"items" of a ${kind} must be a sequence, found ${shapeOf(o.items)}`,
        );
      const itemKind = kind.slice(0, -'List'.length);
      (o.items as unknown[]).forEach((item, j) =>
        visit(
          item,
          child(itemsNode, j),
          `${path === '' ? '' : `${path}.`}items[${j}]`,
          itemKind === '' ? undefined : [o.apiVersion as string, itemKind],
        ),
      );
    };
    visit(value, doc.contents, '');
  });
  return out;
}
