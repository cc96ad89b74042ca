/**
 * `baton cordon`, `uncordon` and `drain`, with kubectl's semantics: cordon
 * marks a node unschedulable (running pods stay); drain cordons, then
 * deletes the node's pods so their controllers recreate them elsewhere,
 * refusing pods no controller would bring back unless --force, and waits
 * until they are gone.
 */
import { status } from '@grpc/grpc-js';
import { Command } from 'commander';
import { ApiObject } from '../../api/types';
import { BatonClient, ClientError } from '../../client/cluster-client';
import { mutate } from '../mutate';
import { err, out, ReportedError, withClient } from '../output';

async function setUnschedulable(
  client: BatonClient,
  name: string,
  value: boolean,
): Promise<boolean> {
  const { changed } = await mutate(client, 'Node', '', name, (node) => {
    const spec = { ...((node.spec as Record<string, unknown>) ?? {}) };
    if (Boolean(spec.unschedulable) === value) return undefined;
    if (value) spec.unschedulable = true;
    else delete spec.unschedulable;
    return { ...node, spec };
  });
  return changed;
}

function cordonCommand(name: string, value: boolean, verb: string): Command {
  return new Command(name)
    .description(value ? 'mark a node unschedulable' : 'mark a node schedulable again')
    .argument('<node>')
    .action(async (node: string, _opts: unknown, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const changed = await setUnschedulable(client, node, value);
        out(`node/${node} ${changed ? verb : `already ${verb}`}`);
      });
    });
}

export function cordon(): Command {
  return cordonCommand('cordon', true, 'cordoned');
}

export function uncordon(): Command {
  return cordonCommand('uncordon', false, 'uncordoned');
}

/** Why a pod may not be drained without --force, or undefined. */
export function drainBlocker(pod: ApiObject): string | undefined {
  const phase = (pod.status as { phase?: string } | undefined)?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return undefined;
  if (!pod.metadata.ownerReferences?.some((r) => r.controller))
    return 'not managed by a ReplicaSet, Job or other controller (it would not be recreated)';
  return undefined;
}

export function drain(): Command {
  return new Command('drain')
    .description('cordon a node, then evict its pods so their controllers recreate them elsewhere')
    .argument('<node>')
    .option('--force', 'also delete pods that no controller manages (they are lost)')
    .option('--timeout <seconds>', 'give up waiting for the pods to go after this long', '120')
    .action(async (node: string, opts: { force?: boolean; timeout: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        await setUnschedulable(client, node, true);
        out(`node/${node} cordoned`);
        const pods = (
          await client.list({ kind: 'Pod', fieldSelector: `spec.nodeName=${node}` })
        ).itemsJson.map((j) => JSON.parse(j) as ApiObject);
        const blocked = pods
          .map((p) => ({ p, why: drainBlocker(p) }))
          .filter((x) => x.why !== undefined);
        if (blocked.length > 0 && !opts.force) {
          for (const { p, why } of blocked)
            err(`error: cannot delete pod ${p.metadata.namespace}/${p.metadata.name}: ${why}`);
          err(
            'There are pending pods in node "' +
              node +
              '" that would be lost: use --force to delete them anyway',
          );
          throw new ReportedError();
        }
        for (const p of pods) {
          try {
            await client.delete({
              kind: 'Pod',
              namespace: p.metadata.namespace!,
              name: p.metadata.name,
              uid: p.metadata.uid,
            });
            out(`evicting pod ${p.metadata.namespace}/${p.metadata.name}`);
          } catch (e) {
            if (!(e instanceof ClientError) || e.code !== status.NOT_FOUND) throw e; // already gone
          }
        }
        const deadline = Date.now() + Number(opts.timeout) * 1000;
        const gone = new Set<string>();
        while (gone.size < pods.length) {
          for (const p of pods) {
            if (gone.has(p.metadata.uid!)) continue;
            try {
              const cur = JSON.parse(
                (await client.get('Pod', p.metadata.namespace!, p.metadata.name)).objectJson,
              ) as ApiObject;
              if (cur.metadata.uid !== p.metadata.uid) gone.add(p.metadata.uid!);
            } catch (e) {
              if (!(e instanceof ClientError) || e.code !== status.NOT_FOUND) throw e;
              gone.add(p.metadata.uid!);
              out(`pod/${p.metadata.name} evicted`);
            }
          }
          if (gone.size === pods.length) break;
          if (Date.now() > deadline)
            throw new Error(
              `drain did not finish within ${opts.timeout}s: ${pods.length - gone.size} pod(s) left`,
            );
          await new Promise((r) => setTimeout(r, 200));
        }
        out(`node/${node} drained`);
      });
    });
}
