/**
 * `baton rollout status|history|undo|pause|resume|restart` for
 * Deployments, with kubectl's semantics and wording. The decisions (how far
 * a rollout is, which template a rollback restores) are the pure functions
 * of api/rollout.ts that the deployment controller uses too; this file
 * reads, writes (read-modify-write, ../mutate.ts) and prints.
 */
import { Command, InvalidArgumentError } from 'commander';
import {
  deploymentRolloutStatus,
  RESTARTED_AT,
  rollbackAnnotations,
  rollbackRevision,
  rolloutHistory,
  RolloutStatus,
  sameTemplate,
} from '../../api/rollout';
import type { Deployment, ReplicaSet } from '../../api/schema';
import { ApiObject, KindInfo } from '../../api/types';
import { BatonClient } from '../../client/cluster-client';
import { EventType } from '../../gen/api';
import { describeTemplate } from '../describe-template';
import { mutate } from '../mutate';
import { resourceName } from '../printers';
import {
  forEachResource,
  groupKind,
  parseResourceArgs,
  ResourceRef,
  resourceString,
  usageFailure,
} from '../resource-args';
import { CliError, out, ReportedError, withClient } from '../output';

function refsOf(args: string[]): ResourceRef[] {
  try {
    return parseResourceArgs(args);
  } catch (e) {
    usageFailure(e);
  }
}

function nonNegative(flag: string) {
  return (v: string): number => {
    if (!/^[0-9]+$/.test(v))
      throw new InvalidArgumentError(`${flag} must be a non-negative integer, got "${v}"`);
    return Number(v);
  };
}

/** Go's time.ParseDuration subset kubectl users write: `90s`, `5m`, `1h30m`, `500ms`, `0`. */
export function parseDuration(v: string): number {
  if (v === '0') return 0;
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...v.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== v)
    throw new InvalidArgumentError(`invalid duration "${v}" (e.g. 30s, 5m, 1h)`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]], 0);
}

function boolOf(v: string): boolean | undefined {
  if (/^(true|t|1)$/i.test(v)) return true;
  if (/^(false|f|0)$/i.test(v)) return false;
  return undefined;
}

async function getObject(
  client: BatonClient,
  kind: string,
  ns: string,
  name: string,
): Promise<ApiObject> {
  return JSON.parse((await client.get(kind, ns, name)).objectJson) as ApiObject;
}

async function replicaSetsIn(client: BatonClient, ns: string): Promise<ReplicaSet[]> {
  const r = await client.list({ kind: 'ReplicaSet', namespace: ns });
  return r.itemsJson.map((j) => JSON.parse(j) as ReplicaSet);
}

/** Only Deployments have rollouts in Baton (kubectl also has DaemonSets and StatefulSets). */
function requireDeployment(kind: KindInfo, what: string): void {
  if (kind.kind !== 'Deployment')
    throw new CliError(`no ${what} has been implemented for "${groupKind(kind)}"`);
}

// ---- status ----------------------------------------------------------------

interface StatusOpts {
  watch: boolean;
  timeout: number;
  revision: number;
}

function statusCommand(): Command {
  // kubectl's --watch is a bool flag: `-w deploy/web` means watch deploy/web.
  // Commander hands an optional value the next word, so give it back.
  const taken: string[] = [];
  const watchFlag = (v: string): boolean => {
    const b = boolOf(v);
    if (b !== undefined) return b;
    taken.push(v);
    return true;
  };
  return new Command('status')
    .description("show a rollout's progress, following it until it completes")
    .argument('[resource...]', 'TYPE/NAME or TYPE NAME, e.g. deploy/web')
    .option(
      '-w, --watch [bool]',
      'follow the rollout until it finishes (--watch=false: look once)',
      watchFlag,
      true,
    )
    .option('--timeout <duration>', 'give up after this long (0: never), e.g. 5m', parseDuration, 0)
    .option(
      '--revision <n>',
      'insist on this revision (0: the latest)',
      nonNegative('--revision'),
      0,
    )
    .action(async (args: string[], opts: StatusOpts, cmd: Command) => {
      const refs = refsOf([...taken, ...args]);
      if (refs.length !== 1)
        usageFailure(
          new CliError(
            `rollout status is only supported on individual resources and resource collections - ${refs.length} resources were found`,
          ),
        );
      await withClient(cmd, (client, ns) =>
        forEachResource(refs, async ({ kind, name }) => {
          await getObject(client, kind.kind, ns, name); // NotFound before anything else
          if (kind.kind !== 'Deployment')
            throw new CliError(`no status viewer has been implemented for ${groupKind(kind)}`);
          await followRollout(client, ns, name, opts);
        }),
      );
    });
}

/**
 * Prints the rollout's status line each time it changes, from a watch on
 * the one Deployment (its current state first, then its changes), until
 * it completes, fails, or (without --watch) once.
 */
async function followRollout(
  client: BatonClient,
  ns: string,
  name: string,
  opts: StatusOpts,
): Promise<void> {
  const ac = new AbortController();
  let timedOut = false;
  const timer =
    opts.timeout > 0
      ? setTimeout(() => {
          timedOut = true;
          ac.abort();
        }, opts.timeout)
      : undefined;
  const onInterrupt = () => ac.abort();
  process.once('SIGINT', onInterrupt);
  let last: string | undefined;
  try {
    for await (const ev of client.watch(
      { kind: 'Deployment', namespace: ns, fieldSelector: `metadata.name=${name}` },
      ac.signal,
    )) {
      if (ev.type === EventType.BOOKMARK) continue;
      // Leaving the loop must cancel the stream first, or its open call keeps the process alive.
      if (ev.type === EventType.DELETED) {
        ac.abort();
        throw new CliError('object has been deleted');
      }
      const st: RolloutStatus = deploymentRolloutStatus(
        JSON.parse(ev.objectJson) as Deployment,
        opts.revision,
      );
      if (st.state === 'failed') {
        ac.abort();
        throw new CliError(st.message);
      }
      if (st.message !== last) out(st.message);
      last = st.message;
      if (st.state === 'complete' || !opts.watch) {
        ac.abort();
        return;
      }
    }
    // The watch ends only when aborted: by the timeout or by ^C.
    if (timedOut) throw new CliError('timed out waiting for the condition');
    throw new ReportedError('interrupted', 130);
  } finally {
    clearTimeout(timer);
    process.removeListener('SIGINT', onInterrupt);
  }
}

// ---- history ---------------------------------------------------------------

function historyCommand(): Command {
  return new Command('history')
    .description("list a deployment's revisions, or show one")
    .argument('<resource...>', 'TYPE/NAME... or TYPE NAME...')
    .option(
      '--revision <n>',
      'show the pod template of this revision',
      nonNegative('--revision'),
      0,
    )
    .action(async (args: string[], opts: { revision: number }, cmd: Command) => {
      const refs = refsOf(args);
      await withClient(cmd, (client, ns) =>
        forEachResource(refs, async ({ kind, name }) => {
          const d = (await getObject(client, kind.kind, ns, name)) as Deployment;
          requireDeployment(kind, 'history viewer');
          const history = rolloutHistory(d, await replicaSetsIn(client, ns));
          if (opts.revision > 0) {
            const hit = history.find((e) => e.revision === opts.revision);
            if (!hit) throw new CliError('unable to find the specified revision');
            out(
              `${resourceName(d)} with revision #${opts.revision}\n${describeTemplate(hit.template)}\n`,
            );
            return;
          }
          const rows = [
            ['REVISION', 'CHANGE-CAUSE'],
            ...history.map((e) => [String(e.revision), e.changeCause || '<none>']),
          ];
          const width = Math.max(...rows.map((r) => r[0].length)) + 2;
          out(`${resourceName(d)}\n${rows.map(([r, c]) => `${r.padEnd(width)}${c}`).join('\n')}\n`);
        }),
      );
    });
}

// ---- undo ------------------------------------------------------------------

function undoCommand(): Command {
  return new Command('undo')
    .description('roll a deployment back to its previous (or a given) revision')
    .argument('<resource...>', 'TYPE/NAME... or TYPE NAME...')
    .option(
      '--to-revision <n>',
      'the revision to roll back to (0: the previous one)',
      nonNegative('--to-revision'),
      0,
    )
    .action(async (args: string[], opts: { toRevision: number }, cmd: Command) => {
      const refs = refsOf(args);
      await withClient(cmd, (client, ns) =>
        forEachResource(refs, async ({ kind, name }) => {
          await getObject(client, kind.kind, ns, name);
          requireDeployment(kind, 'rollbacker');
          const rss = await replicaSetsIn(client, ns);
          let skipped: number | undefined;
          const { object, changed } = await mutate(client, 'Deployment', ns, name, (o) => {
            const d = o as Deployment;
            if (d.spec.paused)
              throw new CliError(
                "you cannot rollback a paused deployment; resume it first with 'baton rollout resume' and try again",
              );
            const to = rollbackRevision(d, rss, opts.toRevision);
            if (sameTemplate(to.template, d.spec.template)) {
              skipped = to.revision;
              return undefined;
            }
            d.spec.template = to.template;
            d.metadata.annotations = rollbackAnnotations(d, to);
            return d;
          });
          out(
            changed
              ? `${resourceName(object)} rolled back`
              : `${resourceName(object)} skipped rollback (current template already matches revision ${skipped})`,
          );
        }),
      );
    });
}

// ---- pause, resume, restart ------------------------------------------------

interface DeploymentVerb {
  name: string;
  description: string;
  /** Printed after the object's name: "paused". */
  done: string;
  /** For kinds without rollouts: "pausing" is not supported. */
  doing: string;
  /** Changes the Deployment, or throws why it will not ("is already paused"). */
  edit: (d: Deployment) => void;
}

/** `rollout pause|resume|restart`: a read-modify-write of each named Deployment. */
function deploymentVerb(v: DeploymentVerb): Command {
  return new Command(v.name)
    .description(v.description)
    .argument('<resource...>', 'TYPE/NAME... or TYPE NAME...')
    .action(async (args: string[], _opts: unknown, cmd: Command) => {
      const refs = refsOf(args);
      await withClient(cmd, (client, ns) =>
        forEachResource(refs, async ({ kind, name }) => {
          await getObject(client, kind.kind, ns, name);
          const refuse = (why: string) => new CliError(`${resourceString(kind)} "${name}" ${why}`);
          if (kind.kind !== 'Deployment') throw refuse(`${v.doing} is not supported`);
          const { object } = await mutate(client, 'Deployment', ns, name, (o) => {
            try {
              v.edit(o as Deployment);
            } catch (e) {
              throw refuse((e as Error).message);
            }
            return o;
          });
          out(`${resourceName(object)} ${v.done}`);
        }),
      );
    });
}

export function rolloutCommand(): Command {
  const rollout = new Command('rollout').description(
    "manage a deployment's rollout: status, history, undo, pause, resume, restart",
  );
  for (const c of [
    statusCommand(),
    historyCommand(),
    undoCommand(),
    deploymentVerb({
      name: 'pause',
      description: 'stop a deployment from rolling out template changes',
      done: 'paused',
      doing: 'pausing',
      edit: (d) => {
        if (d.spec.paused) throw new Error('is already paused');
        d.spec.paused = true;
      },
    }),
    deploymentVerb({
      name: 'resume',
      description: 'let a paused deployment roll out again',
      done: 'resumed',
      doing: 'resuming',
      edit: (d) => {
        if (!d.spec.paused) throw new Error('is not paused');
        delete d.spec.paused;
      },
    }),
    deploymentVerb({
      name: 'restart',
      description: "replace a deployment's pods with a rolling update",
      done: 'restarted',
      doing: 'restarting',
      edit: (d) => {
        if (d.spec.paused)
          throw new Error("can't restart paused deployment (run rollout resume first)");
        // A changed template means new pods. RFC 3339 to the second, as kubectl writes it.
        const now = new Date().toISOString().replace(/\.[0-9]+Z$/, 'Z');
        const t = d.spec.template;
        t.metadata = {
          ...t.metadata,
          annotations: { ...t.metadata?.annotations, [RESTARTED_AT]: now },
        };
      },
    }),
  ])
    rollout.addCommand(c.exitOverride());
  return rollout;
}
