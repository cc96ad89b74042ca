/**
 * `baton top nodes` and `baton top pods`: CPU and memory in use, as
 * kubectl top prints them (CPU in millicores rounded up, memory in whole
 * Mi rounded down, percentages of the node's allocatable truncated). A
 * node that did not answer shows `<unknown>`, and stderr says why.
 */
import { Command, InvalidArgumentError } from 'commander';
import { NodeMetrics, PodMetrics, TopKind } from '../../gen/api';
import { noResourcesMessage, renderTable } from '../printers';
import { err, out, withClient } from '../output';

const MI = 1024 * 1024;
const UNKNOWN = '<unknown>';

export type SortBy = 'cpu' | 'memory';

/** kubectl's CPU(cores) cell: millicores, rounded up (Quantity.MilliValue). */
export const formatCpu = (nanoCores: number): string => `${Math.ceil(nanoCores / 1e6)}m`;

/** kubectl's MEMORY(bytes) cell: whole mebibytes, rounded down. */
export const formatMemory = (bytes: number): string => `${Math.floor(bytes / MI)}Mi`;

/** A share as kubectl prints it: truncated to a whole percent; unknown without a whole to share. */
export function formatPercent(used: number, of: number): string {
  return of > 0 ? `${Math.trunc((used / of) * 100)}%` : UNKNOWN;
}

/** CPU% the kubectl way: millicores used (rounded up) over millicores allocatable. */
const cpuPercent = (n: NodeMetrics) =>
  formatPercent(Math.ceil(n.cpuNanoCores / 1e6), n.cpuAllocatableMillicores);

function parseSortBy(v: string): SortBy {
  if (v !== 'cpu' && v !== 'memory') throw new InvalidArgumentError('expected "cpu" or "memory"');
  return v;
}

/** Most first for cpu or memory (rows without numbers last), else by name as given. */
function sorted<T>(
  rows: T[],
  sortBy: SortBy | undefined,
  known: (r: T) => boolean,
  cpu: (r: T) => number,
  memory: (r: T) => number,
): T[] {
  if (!sortBy) return rows;
  const key = sortBy === 'cpu' ? cpu : memory;
  return [...rows].sort((a, b) => Number(known(b)) - Number(known(a)) || key(b) - key(a));
}

export function nodeTable(nodes: NodeMetrics[], sortBy?: SortBy): string[][] {
  return sorted(
    nodes,
    sortBy,
    (n) => !n.unavailable,
    (n) => n.cpuNanoCores,
    (n) => n.memoryWorkingSetBytes,
  ).map((n) =>
    n.unavailable
      ? [n.name, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]
      : [
          n.name,
          formatCpu(n.cpuNanoCores),
          cpuPercent(n),
          formatMemory(n.memoryWorkingSetBytes),
          formatPercent(n.memoryWorkingSetBytes, n.memoryAllocatableBytes),
        ],
  );
}

const podCpu = (p: PodMetrics) => p.containers.reduce((s, c) => s + c.cpuNanoCores, 0);
const podMemory = (p: PodMetrics) => p.containers.reduce((s, c) => s + c.memoryWorkingSetBytes, 0);

export interface PodTableOptions {
  allNamespaces?: boolean;
  /** A row per container, under a POD column. */
  containers?: boolean;
  sortBy?: SortBy;
}

export function podTable(
  pods: PodMetrics[],
  opts: PodTableOptions = {},
): { headers: string[]; rows: string[][] } {
  const headers = [
    ...(opts.allNamespaces ? ['NAMESPACE'] : []),
    ...(opts.containers ? ['POD'] : []),
    'NAME',
    'CPU(cores)',
    'MEMORY(bytes)',
  ];
  const rows: string[][] = [];
  for (const p of sorted(pods, opts.sortBy, (x) => !x.unavailable, podCpu, podMemory)) {
    const lead = [...(opts.allNamespaces ? [p.namespace] : []), p.name];
    if (p.unavailable)
      rows.push([...lead, ...(opts.containers ? [UNKNOWN] : []), UNKNOWN, UNKNOWN]);
    else if (!opts.containers)
      rows.push([...lead, formatCpu(podCpu(p)), formatMemory(podMemory(p))]);
    else
      for (const c of p.containers)
        rows.push([
          ...lead,
          c.name,
          formatCpu(c.cpuNanoCores),
          formatMemory(c.memoryWorkingSetBytes),
        ]);
  }
  return { headers, rows };
}

/** Why rows show <unknown>, once per reason (a node's pods share one). */
function warnUnavailable(rows: { unavailable: string }[]): void {
  for (const why of new Set(rows.map((r) => r.unavailable).filter(Boolean))) err(`Warning: ${why}`);
}

function print(headers: string[], rows: string[][], withHeaders: boolean): void {
  const text = renderTable(headers, rows);
  out(withHeaders ? text : text.split('\n').slice(1).join('\n'));
}

interface TopOpts {
  selector?: string;
  sortBy?: SortBy;
  headers: boolean;
}

export function topCommand(): Command {
  const top = new Command('top').description(
    'CPU and memory in use by nodes and pods, as their nodes measure it',
  );
  top
    .command('nodes')
    .aliases(['node', 'no'])
    .description('CPU and memory in use on each node, and as a share of what it offers pods')
    .argument('[name]', 'only this node')
    .option('-l, --selector <selector>', 'label selector, e.g. zone=a')
    .option('--sort-by <field>', 'cpu or memory, most first', parseSortBy)
    .option('--no-headers', 'leave out the header line')
    .action(async (name: string | undefined, opts: TopOpts, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const r = await client.top({
          kind: TopKind.TOP_NODES,
          name: name ?? '',
          labelSelector: opts.selector ?? '',
        });
        if (r.nodes.length === 0) return void err(noResourcesMessage());
        print(
          ['NAME', 'CPU(cores)', 'CPU%', 'MEMORY(bytes)', 'MEMORY%'],
          nodeTable(r.nodes, opts.sortBy),
          opts.headers,
        );
        warnUnavailable(r.nodes);
      });
    });
  top
    .command('pods')
    .aliases(['pod', 'po'])
    .description("CPU and memory in use by each running pod (the sum of its containers')")
    .argument('[name]', 'only this pod')
    .option('-l, --selector <selector>', 'label selector, e.g. app=web')
    .option('-A, --all-namespaces', 'pods of every namespace')
    .option('--containers', 'a line for each container')
    .option('--sort-by <field>', 'cpu or memory, most first', parseSortBy)
    .option('--no-headers', 'leave out the header line')
    .action(
      async (
        name: string | undefined,
        opts: TopOpts & { allNamespaces?: boolean; containers?: boolean },
        cmd: Command,
      ) => {
        await withClient(cmd, async (client, ns) => {
          const all = opts.allNamespaces === true && name === undefined;
          const r = await client.top({
            kind: TopKind.TOP_PODS,
            namespace: all ? '' : ns,
            name: name ?? '',
            labelSelector: opts.selector ?? '',
          });
          if (r.pods.length === 0) return void err(noResourcesMessage(all ? undefined : ns));
          const t = podTable(r.pods, {
            allNamespaces: all,
            containers: opts.containers,
            sortBy: opts.sortBy,
          });
          print(t.headers, t.rows, opts.headers);
          warnUnavailable(r.pods);
        });
      },
    );
  return top;
}
