/**
 * `-o` output as kubectl prints it: tables with kubectl's columns and cell
 * rules per kind (k8s.io/kubernetes pkg/printers/internalversion), YAML,
 * JSON, and resource names. Pure functions of the objects and `now`.
 */
import { Document, parse as parseYaml, Scalar, visit } from 'yaml';
import { ApiObject, kindInfo } from '../api/types';
import { formatAge, humanDuration } from './age';
import { EVENT_WIDE, GENERIC, podStatus, PRINTERS } from './kind-columns';

export { formatAge, humanDuration, podStatus };

export type OutputFormat = 'table' | 'wide' | 'yaml' | 'json' | 'name';

export interface PrintOptions {
  now: Date;
  /** Adds kubectl's NAMESPACE column (for namespaced kinds) and words the empty message. */
  allNamespaces?: boolean;
  /** ANSI colours for status words; for a terminal only. */
  color?: boolean;
  /** The kind listed: decides the empty-list message when there are no objects to tell. */
  kind?: string;
  /** The namespace listed, for `No resources found in NS namespace.` */
  namespace?: string;
  /** kubectl's --show-labels: a last LABELS column, `k=v,k2=v2` or `<none>`. */
  showLabels?: boolean;
}

export function parseOutputFormat(s: string | undefined): OutputFormat {
  if (s === undefined || s === '') return 'table';
  if (s === 'wide' || s === 'yaml' || s === 'json' || s === 'name') return s;
  throw new Error(`--output: unknown format "${s}" (expected one of: wide, yaml, json, name)`);
}

/** Display width as Go's tabwriter counts it: code points, not UTF-16 units. */
const width = (s: string): number => [...s].length;

/**
 * kubectl's tabwriter (minwidth 6, padding 3): each column as wide as its
 * widest cell plus three spaces, the last column unpadded; no trailing
 * spaces. `paint` colours a cell after its width is taken.
 */
function layout(
  headers: string[],
  rows: string[][],
  paint?: (header: string, cell: string) => string,
  minWidths: number[] = [],
): string {
  return layoutWithWidths(headers, rows, paint, minWidths).text;
}

function layoutWithWidths(
  headers: string[],
  rows: string[][],
  paint: ((header: string, cell: string) => string) | undefined,
  minWidths: number[],
  withHeader = true,
): { text: string; widths: number[] } {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) =>
    Math.max(6, minWidths[i] ?? 0, ...all.map((r) => width(r[i] ?? '') + 3)),
  );
  const text = all
    .slice(withHeader ? 0 : 1)
    .map((r) => {
      const isHeader = r === headers;
      return r
        .map((c, i) => {
          const shown = paint && !isHeader ? paint(headers[i], c) : c;
          return i === r.length - 1 ? shown : shown + ' '.repeat(widths[i] - width(c));
        })
        .join('')
        .trimEnd();
    })
    .join('\n');
  return { text, widths };
}

/** Left-aligned columns three spaces apart, like kubectl; no trailing spaces. */
export function renderTable(headers: string[], rows: string[][]): string {
  return layout(headers, rows);
}

/** What kubectl prints (to stderr) for an empty table. */
export function noResourcesMessage(ns?: string): string {
  return ns ? `No resources found in ${ns} namespace.` : 'No resources found';
}

/** kubectl's `-o name`: "deployment.apps/web", "pod/web-abc". */
export function resourceName(o: {
  apiVersion?: string;
  kind: string;
  metadata: { name: string };
}): string {
  const apiVersion = kindInfo(o.kind)?.apiVersion ?? o.apiVersion ?? '';
  const group = apiVersion.includes('/') ? `.${apiVersion.split('/')[0]}` : '';
  return `${o.kind.toLowerCase()}${group}/${o.metadata.name}`;
}

const GREEN = new Set(['Running', 'Ready', 'Active', 'Complete', 'Completed', 'Succeeded']);
const YELLOW = new Set([
  'Pending',
  'ContainerCreating',
  'PodInitializing',
  'Terminating',
  'SchedulingDisabled',
  'SchedulingGated',
  'Suspended',
  'Warning',
]);

/** Status words: green for healthy, yellow for in-between, red for everything that went wrong. */
function paintWord(word: string): string {
  if (GREEN.has(word)) return `\u001b[32m${word}\u001b[0m`;
  if (YELLOW.has(word) || /^Init:\d+\/\d+$/.test(word)) return `\u001b[33m${word}\u001b[0m`;
  if (word === '' || word === 'Normal') return word;
  return `\u001b[31m${word}\u001b[0m`;
}

function paintCell(header: string, cell: string): string {
  if (header === 'STATUS') return cell.split(',').map(paintWord).join(',');
  if (header === 'TYPE' && cell === 'Warning') return paintWord(cell);
  return cell;
}

/**
 * Whether a string written plain would read back as something else: to a
 * YAML 1.2 reader (ours) or a YAML 1.1 one (kubectl's, where `yes`, `on`,
 * `0644` and `1:30` are not strings), or as a merge key. Numbers and
 * booleans are short, so long strings are left to the library's own quoting.
 */
function readsAsNonString(s: string): boolean {
  if (s === '<<') return true;
  if (s.length > 64 || s.includes('\n')) return false;
  return (['1.1', '1.2'] as const).some((version) => {
    try {
      return typeof parseYaml(s, { version, logLevel: 'silent' }) !== 'string';
    } catch {
      return false;
    }
  });
}

/**
 * YAML in kubectl's style: sequences not indented under their key, no
 * folded lines, no anchors or aliases for objects that repeat, and strings
 * quoted wherever any YAML reader could take them for another type.
 */
function yamlText(value: unknown): string {
  const doc = new Document(value, { aliasDuplicateObjects: false });
  visit(doc, {
    Scalar(_, node) {
      if (typeof node.value === 'string' && readsAsNonString(node.value))
        node.type = Scalar.QUOTE_DOUBLE;
    },
  });
  return doc.toString({ indentSeq: false, lineWidth: 0 });
}

/** One kind's table; names are `kind/name` when several kinds share the output, as in kubectl. */
function table(kind: string, objs: ApiObject[], wide: boolean, opts: PrintOptions, mixed: boolean) {
  const { headers, rows } = tableCells(kind, objs, wide, opts, mixed);
  return layout(headers, rows, opts.color ? paintCell : undefined);
}

function tableCells(
  kind: string,
  objs: ApiObject[],
  wide: boolean,
  opts: PrintOptions,
  mixed: boolean,
): { headers: string[]; rows: string[][] } {
  const p = PRINTERS[kind] ?? GENERIC;
  const withNs = (opts.allNamespaces ?? false) && (kindInfo(kind)?.namespaced ?? true);
  const headers = [
    ...(withNs ? ['NAMESPACE'] : []),
    ...(kind === 'Event' && wide
      ? EVENT_WIDE
      : [...p.headers, ...(wide ? (p.wideHeaders ?? []) : [])]),
  ];
  const nameCol = p.headers.indexOf('NAME');
  const rows = objs.map((o) => {
    const cells = p.cells(o, opts.now, wide);
    if (mixed && nameCol >= 0 && kind !== 'Event') cells[nameCol] = resourceName(o);
    const labels = Object.entries(o.metadata.labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    return [
      ...(withNs ? [o.metadata.namespace ?? ''] : []),
      ...cells,
      ...(opts.showLabels ? [labels || '<none>'] : []),
    ];
  });
  return { headers: opts.showLabels ? [...headers, 'LABELS'] : headers, rows };
}

/**
 * The rows of `get -w`: the header with the first row (once), then one row
 * per change, every row padded to the widest cell seen so far so columns
 * stay under their headers as the watch goes on.
 */
export class WatchTable {
  private widths: number[] = [];
  private headerShown = false;

  constructor(
    private readonly kind: string,
    private readonly wide: boolean,
    private readonly opts: PrintOptions,
  ) {}

  /** The initial listing: header and rows; the widths it took are kept. */
  listed(objs: ApiObject[]): string {
    return this.render(objs, true);
  }

  /** One change: its row, with the header first if none was printed yet. */
  row(o: ApiObject): string {
    return this.render([o], !this.headerShown);
  }

  private render(objs: ApiObject[], withHeader: boolean): string {
    const { headers, rows } = tableCells(this.kind, objs, this.wide, this.opts, false);
    const r = layoutWithWidths(headers, rows, this.paint(), this.widths, withHeader);
    this.widths = r.widths;
    this.headerShown = true;
    return r.text;
  }

  private paint() {
    return this.opts.color ? paintCell : undefined;
  }
}

/**
 * Objects as kubectl prints them. Tables: one per kind, in the order the
 * kinds first appear; with no objects, the "No resources found" message
 * (kubectl writes it to stderr: the caller decides). YAML and JSON: one
 * object as itself, several (or none) as a `List`. The result has no final
 * newline.
 */
export function printObjects(objs: ApiObject[], format: OutputFormat, opts: PrintOptions): string {
  if (format === 'name') return objs.map(resourceName).join('\n');
  if (format === 'json' || format === 'yaml') {
    const value =
      objs.length === 1
        ? objs[0]
        : { apiVersion: 'v1', kind: 'List', items: objs, metadata: { resourceVersion: '' } };
    if (format === 'json') return JSON.stringify(value, null, 4);
    const text = yamlText(value);
    return text.endsWith('\n') ? text.slice(0, -1) : text;
  }
  if (objs.length === 0) {
    const namespaced = opts.kind === undefined || (kindInfo(opts.kind)?.namespaced ?? true);
    return noResourcesMessage(opts.allNamespaces || !namespaced ? undefined : opts.namespace);
  }
  const byKind = new Map<string, ApiObject[]>();
  for (const o of objs) {
    const group = byKind.get(o.kind);
    if (group) group.push(o);
    else byKind.set(o.kind, [o]);
  }
  const wide = format === 'wide';
  return [...byKind]
    .map(([kind, group]) => table(kind, group, wide, opts, byKind.size > 1))
    .join('\n\n');
}
