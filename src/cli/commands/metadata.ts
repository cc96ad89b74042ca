/**
 * `baton label` and `baton annotate`, with kubectl's arguments and rules:
 * `KEY=VALUE` sets, `KEY-` removes, changing an existing value needs
 * `--overwrite`, and the objects are named (`TYPE NAME...`, `TYPE/NAME`) or
 * chosen with `-l SELECTOR` / `--all`.
 */
import { Command } from 'commander';
import { ApiObject, KindInfo } from '../../api/types';
import { labelKeyError, labelValueError } from '../../api/label-syntax';
import { BatonClient } from '../../client/cluster-client';
import { mutate } from '../mutate';
import { resourceName } from '../printers';
import { parseResourceArgs } from '../resource-args';
import { CliError, err, errorLine, kindOf, out, ReportedError, withClient } from '../output';

export interface MetadataChange {
  set: Record<string, string>;
  remove: string[];
}

/** Splits `a=1 b- c=` into what to set and what to remove; the rest are resource arguments. */
export function parseChanges(
  args: readonly string[],
  what: 'label' | 'annotation',
): { resources: string[]; change: MetadataChange } {
  const change: MetadataChange = { set: {}, remove: [] };
  const resources: string[] = [];
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq > 0) {
      const key = a.slice(0, eq);
      const value = a.slice(eq + 1);
      checkKey(key, what);
      if (what === 'label') {
        const problem = labelValueError(value);
        if (problem) throw new CliError(`invalid label value: "${a}": ${problem}`);
      }
      change.set[key] = value;
    } else if (a.endsWith('-') && a.length > 1) {
      // Object names never end in "-" (DNS labels), so this is a removal.
      const key = a.slice(0, -1);
      checkKey(key, what);
      change.remove.push(key);
    } else resources.push(a);
  }
  if (Object.keys(change.set).length === 0 && change.remove.length === 0)
    throw new CliError(`at least one ${what} update is required`);
  for (const k of change.remove)
    if (k in change.set) throw new CliError(`can not both modify and remove ${what} "${k}"`);
  return { resources, change };
}

function checkKey(key: string, what: string): void {
  const problem = labelKeyError(key);
  if (problem) throw new CliError(`invalid ${what} key "${key}": ${problem}`);
}

/**
 * Applies `change` to `current` (a labels or annotations map). Throws when
 * a value would change without `overwrite`; undefined when nothing changes.
 */
export function applyChange(
  current: Record<string, string> | undefined,
  change: MetadataChange,
  overwrite: boolean,
): Record<string, string> | undefined {
  const next = { ...(current ?? {}) };
  let changed = false;
  for (const [k, v] of Object.entries(change.set)) {
    if (k in next && next[k] !== v && !overwrite)
      throw new CliError(`'${k}' already has a value (${next[k]}), and --overwrite is false`);
    if (next[k] !== v) changed = true;
    next[k] = v;
  }
  for (const k of change.remove) {
    if (k in next) {
      delete next[k];
      changed = true;
    }
  }
  return changed ? next : undefined;
}

function metadataCommand(name: 'label' | 'annotate'): Command {
  const what = name === 'label' ? 'label' : 'annotation';
  const field = name === 'label' ? 'labels' : 'annotations';
  return new Command(name)
    .description(
      name === 'label'
        ? 'add, change (--overwrite) or remove (KEY-) labels of objects'
        : 'add, change (--overwrite) or remove (KEY-) annotations of objects',
    )
    .argument('<args...>', 'TYPE NAME... | TYPE/NAME... then KEY=VALUE... and KEY-...')
    .option('--overwrite', `allow changing a ${what} that already has a value`)
    .option('-l, --selector <selector>', 'every object of the type matching this label selector')
    .option('--all', 'every object of the type in the namespace')
    .option('--dry-run', 'show what would change without writing')
    .action(
      async (
        args: string[],
        opts: { overwrite?: boolean; selector?: string; all?: boolean; dryRun?: boolean },
        cmd: Command,
      ) => {
        const { resources, change } = parseChanges(args, what);
        await withClient(cmd, async (client, ns) => {
          const targets = await targetsOf(client, ns, resources, opts);
          let failed = 0;
          for (const t of targets) {
            try {
              const namespace = t.kind.namespaced ? ns : '';
              let changed = false;
              const apply = (o: ApiObject) => {
                const next = applyChange(o.metadata[field], change, !!opts.overwrite);
                if (!next) return undefined;
                o.metadata[field] = next;
                changed = true;
                return o;
              };
              if (opts.dryRun)
                apply(JSON.parse((await client.get(t.kind.kind, namespace, t.name)).objectJson));
              else changed = (await mutate(client, t.kind.kind, namespace, t.name, apply)).changed;
              const rn = resourceName({ kind: t.kind.kind, metadata: { name: t.name } });
              out(
                `${rn} ${changed ? (name === 'label' ? 'labeled' : 'annotated') : `not ${name === 'label' ? 'labeled' : 'annotated'}`}${opts.dryRun ? ' (dry run)' : ''}`,
              );
            } catch (e) {
              failed++;
              err(errorLine(e));
            }
          }
          if (failed > 0) throw new ReportedError();
        });
      },
    );
}

async function targetsOf(
  client: BatonClient,
  ns: string,
  resources: string[],
  opts: { selector?: string; all?: boolean },
): Promise<{ kind: KindInfo; name: string }[]> {
  if (opts.selector !== undefined || opts.all) {
    if (resources.length !== 1)
      throw new CliError('with --selector or --all, give exactly one resource type');
    const kind = kindOf(resources[0]);
    const r = await client.list({
      kind: kind.kind,
      namespace: kind.namespaced ? ns : '',
      labelSelector: opts.selector ?? '',
    });
    return r.itemsJson.map((j) => ({ kind, name: (JSON.parse(j) as ApiObject).metadata.name }));
  }
  return parseResourceArgs(resources);
}

export const labelCommand = () => metadataCommand('label');
export const annotateCommand = () => metadataCommand('annotate');
