import { Command, Option } from 'commander';
import { stringify as toYaml } from 'yaml';
import { ApiObject, resolveKind } from '../../api/types';
import { BatonClient, ClientError } from '../../client/cluster-client';
import { EventType, PropagationPolicy } from '../../gen/api';
import { GlobalFlags } from '../client-config';
import { err, errorLine, kindOf, out, ReportedError, withClient } from '../output';
import { loadManifests, ManifestDoc } from '../manifests';
import {
  formatAge,
  noResourcesMessage,
  OutputFormat,
  parseOutputFormat,
  printObjects,
  renderTable,
  resourceName,
  WatchTable,
} from '../printers';

function placeInNamespace(doc: ManifestDoc, ns: string, explicit: boolean): ApiObject {
  const o = doc.object as ApiObject;
  const k = resolveKind(String(o.kind ?? ''));
  if (k?.namespaced && o.metadata && typeof o.metadata === 'object') {
    const given = o.metadata.namespace;
    if (given === undefined) o.metadata = { ...o.metadata, namespace: ns };
    else if (explicit && given !== ns)
      throw new Error(
        `the namespace from the provided object "${given}" does not match the namespace "${ns}". You must pass '--namespace=${given}' to perform this operation.`,
      );
  }
  return o;
}

export function applyCommand(): Command {
  return new Command('apply')
    .description('create or update objects from YAML or JSON manifests')
    .requiredOption('-f, --filename <path...>', 'file, directory or - for stdin')
    .option('-R, --recursive', 'process directories recursively')
    .option('--dry-run', 'validate on the server without writing')
    .action(
      async (opts: { filename: string[]; recursive?: boolean; dryRun?: boolean }, cmd: Command) => {
        const docs = await loadManifests(opts.filename, { recursive: opts.recursive });
        const g = cmd.optsWithGlobals() as GlobalFlags;
        let failed = 0;
        await withClient(cmd, async (client, ns) => {
          for (const doc of docs) {
            try {
              const o = placeInNamespace(doc, ns, g.namespace !== undefined);
              const r = await client.apply(JSON.stringify(o), opts.dryRun);
              for (const w of r.warnings) err(`Warning: ${w}`);
              const verb = r.created ? 'created' : r.unchanged ? 'unchanged' : 'configured';
              out(
                `${resourceName(JSON.parse(r.objectJson) as ApiObject)} ${verb}${opts.dryRun ? ' (server dry run)' : ''}`,
              );
            } catch (e) {
              failed++;
              err(
                `${errorLine(e).replace(/^(Error from server|error): /, '$1: ')} (${doc.source}, document ${doc.index})`,
              );
            }
          }
        });
        if (failed > 0) throw new ReportedError(`${failed} of ${docs.length} objects failed`);
      },
    );
}

interface GetOpts {
  output?: string;
  selector?: string;
  fieldSelector?: string;
  allNamespaces?: boolean;
  watch?: boolean;
  sortBy?: string;
  showLabels?: boolean;
}

/**
 * The value at a kubectl-style field path: `.metadata.name`,
 * `{.status.containerStatuses[0].restartCount}`.
 */
export function fieldValue(o: unknown, path: string): unknown {
  const p = path
    .trim()
    .replace(/^\{(.*)\}$/, '$1')
    .replace(/^\./, '');
  if (p === '') return o;
  let v: unknown = o;
  for (const part of p.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) throw new Error(`--sort-by: "${path}" is not a field path like .metadata.name`);
    if (m[1]) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[m[1]] : undefined;
    for (const idx of m[2].match(/\d+/g) ?? [])
      v = Array.isArray(v) ? (v[Number(idx)] as unknown) : undefined;
  }
  return v;
}

/** Sorts by a field path as kubectl does: numbers by value, the rest as text, missing first. */
export function sortObjects(objs: ApiObject[], path: string): ApiObject[] {
  const key = (o: ApiObject) => fieldValue(o, path);
  return [...objs].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? -1 : 1;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    const sx = typeof x === 'object' ? JSON.stringify(x) : String(x as string);
    const sy = typeof y === 'object' ? JSON.stringify(y) : String(y as string);
    return sx < sy ? -1 : sx > sy ? 1 : 0;
  });
}

export function getCommand(): Command {
  return new Command('get')
    .description('list objects of a kind, or show some by name')
    .argument('<kind>', 'pods, deployments, svc, ... (kubectl names and short names)')
    .argument('[names...]', 'only these objects')
    .option('-o, --output <format>', 'wide, yaml, json or name')
    .option('-l, --selector <selector>', 'label selector, e.g. app=web,tier!=db')
    .option('--field-selector <selector>', 'field selector, e.g. spec.nodeName=node-1')
    .option('-A, --all-namespaces', 'list across all namespaces')
    .option('-w, --watch', 'after listing, print changes as they happen')
    .option('--sort-by <path>', 'sort the listing by a field path, e.g. .metadata.name')
    .option('--show-labels', 'add a LABELS column')
    .action(async (kindName: string, names: string[], opts: GetOpts, cmd: Command) => {
      if (opts.sortBy) fieldValue({}, opts.sortBy); // a malformed path fails before any call
      const k = kindOf(kindName);
      const format: OutputFormat = parseOutputFormat(opts.output);
      await withClient(cmd, async (client, ns) => {
        const namespace = k.namespaced && !opts.allNamespaces ? ns : '';
        const printOpts = {
          now: new Date(),
          allNamespaces: opts.allNamespaces,
          color: process.stdout.isTTY,
          kind: k.kind,
          showLabels: opts.showLabels,
        };
        const tabular = format === 'table' || format === 'wide';
        const watchTable = new WatchTable(k.kind, format === 'wide', printOpts);
        let objs: ApiObject[];
        let revision: number;
        if (names.length > 0) {
          objs = [];
          revision = 0;
          let missing = 0;
          for (const n of names) {
            try {
              const r = await client.get(k.kind, namespace || ns, n);
              objs.push(JSON.parse(r.objectJson) as ApiObject);
              revision = Math.max(revision, Number(r.revision));
            } catch (e) {
              missing++;
              err(errorLine(e));
            }
          }
          if (objs.length > 0)
            out(
              tabular && opts.watch
                ? watchTable.listed(objs)
                : printObjects(objs, format, printOpts),
            );
          if (missing > 0 && !opts.watch) throw new ReportedError();
        } else {
          const r = await client.list({
            kind: k.kind,
            namespace,
            labelSelector: opts.selector ?? '',
            fieldSelector: opts.fieldSelector ?? '',
          });
          objs = r.itemsJson.map((j) => JSON.parse(j) as ApiObject);
          if (opts.sortBy) objs = sortObjects(objs, opts.sortBy);
          revision = Number(r.revision);
          if (objs.length === 0 && tabular) {
            if (!opts.watch) err(noResourcesMessage(namespace || undefined));
          } else
            out(
              tabular && opts.watch
                ? watchTable.listed(objs)
                : printObjects(objs, format, printOpts),
            );
        }
        if (!opts.watch) return;
        const ac = new AbortController();
        process.once('SIGINT', () => ac.abort());
        for await (const ev of client.watch(
          {
            kind: k.kind,
            namespace,
            labelSelector: opts.selector ?? '',
            fieldSelector: opts.fieldSelector ?? '',
            fromRevision: revision,
          },
          ac.signal,
        )) {
          if (ev.type === EventType.BOOKMARK) continue;
          const o = JSON.parse(ev.objectJson) as ApiObject;
          if (names.length > 0 && !names.includes(o.metadata.name)) continue;
          out(tabular ? watchTable.row(o) : printObjects([o], format, printOpts));
        }
      });
    });
}

export function describeCommand(): Command {
  return new Command('describe')
    .description('show an object in detail, with its recent events')
    .argument('<kind>')
    .argument('<name>')
    .action(async (kindName: string, name: string, _opts: unknown, cmd: Command) => {
      const k = kindOf(kindName);
      await withClient(cmd, async (client, ns) => {
        const r = await client.get(k.kind, ns, name);
        const o = JSON.parse(r.objectJson) as ApiObject;
        out(describeObject(o));
        const evs = await client.list({
          kind: 'Event',
          namespace: k.namespaced ? ns : '',
          fieldSelector: `involvedObject.kind=${k.kind},involvedObject.name=${name}`,
        });
        const now = new Date();
        const rows = evs.itemsJson
          .map((j) => JSON.parse(j) as ApiObject & Record<string, string>)
          .map((e) => [
            String(e.type ?? ''),
            String(e.reason ?? ''),
            formatAge(e.lastTimestamp ?? e.metadata.creationTimestamp, now),
            String((e.source as unknown as { component?: string } | undefined)?.component ?? ''),
            String(e.message ?? ''),
          ]);
        out(
          rows.length === 0
            ? 'Events:  <none>'
            : `Events:\n${indent(renderTable(['TYPE', 'REASON', 'AGE', 'FROM', 'MESSAGE'], rows))}`,
        );
      });
    });
}

function indent(s: string): string {
  return s
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

export function describeObject(o: ApiObject): string {
  const m = o.metadata;
  const kv = (r: Record<string, string> | undefined) =>
    r && Object.keys(r).length > 0
      ? Object.entries(r)
          .map(([a, b]) => `${a}=${b}`)
          .join('\n' + ' '.repeat(20))
      : '<none>';
  const lines = [
    ['Name:', m.name],
    ...(m.namespace ? [['Namespace:', m.namespace]] : []),
    ['Kind:', `${o.kind} (${o.apiVersion})`],
    ['Labels:', kv(m.labels)],
    ['Annotations:', kv(m.annotations)],
    ['UID:', m.uid ?? ''],
    ['Resource Version:', m.resourceVersion ?? ''],
    ...(m.generation !== undefined ? [['Generation:', String(m.generation)]] : []),
    ['Created:', m.creationTimestamp ?? ''],
    ...(m.ownerReferences?.length
      ? [['Controlled By:', m.ownerReferences.map((r) => `${r.kind}/${r.name}`).join(', ')]]
      : []),
  ].map(([a, b]) => a.padEnd(20) + b);
  const rest = Object.fromEntries(
    Object.entries(o).filter(([key]) => !['apiVersion', 'kind', 'metadata'].includes(key)),
  );
  const body = Object.keys(rest).length > 0 ? toYaml(rest).trimEnd() : '';
  return [...lines, body].filter((l) => l !== '').join('\n');
}

export function deleteCommand(): Command {
  return new Command('delete')
    .description('delete objects by kind and name, by file, or by label selector')
    .argument('[kind]')
    .argument('[names...]')
    .option('-f, --filename <path...>', 'delete the objects in these manifests')
    .option(
      '-l, --selector <selector>',
      'delete every object of the kind matching this label selector',
    )
    .addOption(
      new Option('--cascade <policy>', 'what happens to dependents')
        .choices(['background', 'foreground', 'orphan'])
        .default('background'),
    )
    .option('--ignore-not-found', 'treat "not found" as success')
    .option('--wait [bool]', 'wait until the objects are gone (default true; --wait=false)', 'true')
    .option('--timeout <seconds>', 'how long --wait waits', '120')
    .action(
      async (
        kindName: string | undefined,
        names: string[],
        opts: {
          filename?: string[];
          selector?: string;
          cascade: string;
          ignoreNotFound?: boolean;
          wait: string | boolean;
          timeout: string;
        },
        cmd: Command,
      ) => {
        const wait = opts.wait === true || opts.wait === 'true';
        if (!wait && opts.wait !== 'false')
          throw new Error(`--wait: expected true or false, got "${String(opts.wait)}"`);
        const propagation =
          opts.cascade === 'orphan'
            ? PropagationPolicy.ORPHAN
            : opts.cascade === 'foreground'
              ? PropagationPolicy.FOREGROUND
              : PropagationPolicy.BACKGROUND;
        await withClient(cmd, async (client, ns) => {
          const targets: { kind: string; namespace: string; name: string }[] = [];
          if (opts.filename) {
            for (const doc of await loadManifests(opts.filename)) {
              const o = placeInNamespace(doc, ns, false);
              targets.push({
                kind: o.kind,
                namespace: o.metadata.namespace ?? '',
                name: o.metadata.name,
              });
            }
          } else {
            if (!kindName)
              throw new Error('you must specify a kind and names, -l SELECTOR or -f FILE');
            const k = kindOf(kindName);
            if (opts.selector) {
              const r = await client.list({
                kind: k.kind,
                namespace: k.namespaced ? ns : '',
                labelSelector: opts.selector,
              });
              for (const j of r.itemsJson) {
                const o = JSON.parse(j) as ApiObject;
                targets.push({
                  kind: k.kind,
                  namespace: o.metadata.namespace ?? '',
                  name: o.metadata.name,
                });
              }
              if (targets.length === 0) err(noResourcesMessage(k.namespaced ? ns : undefined));
            } else {
              if (names.length === 0)
                throw new Error(`you must name the ${k.plural} to delete, or pass -l SELECTOR`);
              for (const name of names) targets.push({ kind: k.kind, namespace: ns, name });
            }
          }
          let failed = 0;
          const deleted: typeof targets = [];
          for (const t of targets) {
            try {
              await client.delete({ ...t, propagation });
              out(`${resourceName({ kind: t.kind, metadata: { name: t.name } })} deleted`);
              deleted.push(t);
            } catch (e) {
              if (opts.ignoreNotFound && e instanceof ClientError && e.code === 5) continue;
              failed++;
              err(errorLine(e));
            }
          }
          if (wait) failed += await waitGone(client, deleted, Number(opts.timeout) * 1000);
          if (failed > 0) throw new ReportedError();
        });
      },
    );
}

/**
 * Until every target is gone (a pod lingers while its node stops it
 * gracefully): the number still there at the deadline, each reported.
 */
async function waitGone(
  client: BatonClient,
  targets: { kind: string; namespace: string; name: string }[],
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let left = targets;
  while (left.length > 0) {
    const still = [];
    for (const t of left) {
      try {
        await client.get(t.kind, t.namespace, t.name);
        still.push(t);
      } catch (e) {
        if (!(e instanceof ClientError && e.code === 5)) throw e;
      }
    }
    left = still;
    if (left.length === 0) break;
    if (Date.now() >= deadline) {
      for (const t of left)
        err(
          `error: timed out waiting for ${resourceName({ kind: t.kind, metadata: { name: t.name } })} to be deleted`,
        );
      return left.length;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return 0;
}
