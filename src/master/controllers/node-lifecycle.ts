/**
 * Node lifecycle: the leader judges liveness from the dispatcher's
 * heartbeats (kept in memory, never in the log). A node silent past its
 * grace period gets Ready=Unknown and the `node.kubernetes.io/unreachable`
 * NoExecute taint; after the eviction delay its pods are deleted so their
 * controllers replace them elsewhere (pods that tolerate the taint stay, for
 * their tolerationSeconds or for good). A node heard from again is Ready.
 * A new leader gives every node a full grace period from its election.
 */
import type { Node, Pod } from '../../api/schema';
import { parseFieldSelector } from '../../api/selectors';
import { timestamp } from '../admission';
import { Controller } from './runtime/controller';
import { WriteError } from './runtime/writer';

const COMPONENT = 'node-controller';
export const UNREACHABLE_TAINT = 'node.kubernetes.io/unreachable';

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
}

type Taint = NonNullable<NonNullable<Node['spec']>['taints']>[number];

interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

/** How long `pod` may stay on a node with the unreachable NoExecute taint: 0 = evict now, Infinity = never. */
export function toleratesUnreachableFor(pod: Pod): number {
  let best = 0;
  for (const t of (pod.spec.tolerations ?? []) as Toleration[]) {
    const keyOk =
      t.key === undefined || t.key === '' ? t.operator === 'Exists' : t.key === UNREACHABLE_TAINT;
    const effectOk = t.effect === undefined || t.effect === '' || t.effect === 'NoExecute';
    if (!keyOk || !effectOk) continue;
    const secs = t.tolerationSeconds === undefined ? Infinity : Math.max(0, t.tolerationSeconds);
    best = Math.max(best, secs * 1000);
  }
  return best;
}

function readyCondition(node: Node): Condition | undefined {
  return (node.status?.conditions as Condition[] | undefined)?.find((c) => c.type === 'Ready');
}

export class NodeLifecycleController extends Controller {
  readonly name = 'node-lifecycle';
  protected readonly kind = 'Node';

  protected override watchOthers(): void {
    const stop = this.ctx.heartbeats.onSessionStarted((node) => this.queue.add(node));
    this.ctx.signal.addEventListener('abort', stop, { once: true });
  }

  protected async reconcile(name: string): Promise<number | void> {
    const stored = this.ctx.store.get('Node', undefined, name);
    if (!stored) return;
    const node = stored.object as Node;
    const { nodeGracePeriodMs: grace, podEvictionDelayMs: evictionDelay } = this.ctx.settings;
    const now = this.ctx.env.now().getTime();
    const hb = this.ctx.heartbeats;
    const last = Math.max(hb.lastHeartbeat(name) ?? 0, hb.since);
    const silentFor = now - last;
    const ready = readyCondition(node);

    if (silentFor <= grace) {
      if (ready?.status !== 'True' || this.hasUnreachableTaint(node))
        await this.setReady(node, 'True', 'BatonNodeReady', 'baton node is posting heartbeats');
      return grace - silentFor + 50;
    }
    if (ready?.status === 'True' || ready === undefined || !this.hasUnreachableTaint(node)) {
      await this.setReady(
        node,
        'Unknown',
        'NodeStatusUnknown',
        `baton node stopped posting heartbeats ${Math.round(silentFor / 1000)}s ago`,
      );
      this.ctx.events.record(
        node,
        COMPONENT,
        'Normal',
        'NodeNotReady',
        `Node ${name} status is now: NodeNotReady`,
      );
      return evictionDelay;
    }
    // NotReady: evict what does not tolerate it, once the delay since the transition has passed.
    const since = Date.parse(ready.lastTransitionTime ?? '') || now;
    return this.evict(node, now - since, evictionDelay);
  }

  private hasUnreachableTaint(node: Node): boolean {
    return ((node.spec?.taints ?? []) as Taint[]).some((t) => t.key === UNREACHABLE_TAINT);
  }

  private async evict(node: Node, notReadyFor: number, delay: number): Promise<number | void> {
    const pods = this.ctx.store.list({
      kind: 'Pod',
      fields: parseFieldSelector(`spec.nodeName=${node.metadata.name}`),
    });
    let next = Infinity;
    const deletions: Promise<void>[] = [];
    for (const s of pods) {
      const pod = s.object as Pod;
      const due = delay + toleratesUnreachableFor(pod);
      if (notReadyFor < due) {
        next = Math.min(next, due - notReadyFor);
        continue;
      }
      deletions.push(
        this.ctx.writer.delete(pod).then(
          () =>
            this.ctx.events.record(
              pod,
              COMPONENT,
              'Normal',
              'TaintManagerEviction',
              `Deleting pod ${pod.metadata.name}: node ${node.metadata.name} is unreachable`,
            ),
          (err: unknown) => {
            if (!(err instanceof WriteError) || err.code !== 'NOT_FOUND') throw err;
          },
        ),
      );
    }
    await Promise.all(deletions);
    return Number.isFinite(next) ? next + 10 : undefined;
  }

  private async setReady(
    node: Node,
    status: string,
    reason: string,
    message: string,
  ): Promise<void> {
    const at = timestamp(this.ctx.env.now());
    const conds = (node.status?.conditions ?? []) as Condition[];
    const old = conds.find((c) => c.type === 'Ready');
    const ready: Condition = {
      type: 'Ready',
      status,
      reason,
      message,
      lastHeartbeatTime: at,
      lastTransitionTime: old?.status === status ? (old.lastTransitionTime ?? at) : at,
    };
    const taints = ((node.spec?.taints ?? []) as Taint[]).filter(
      (t) => t.key !== UNREACHABLE_TAINT,
    );
    if (status !== 'True')
      taints.push({ key: UNREACHABLE_TAINT, effect: 'NoExecute', timeAdded: at });
    // Two writes (spec, then status), each guarded by what was read.
    const spec: NonNullable<Node['spec']> = { ...(node.spec ?? {}) };
    if (taints.length > 0) spec.taints = taints;
    else delete spec.taints;
    const updated = await this.ctx.writer.update({ ...node, spec });
    await this.ctx.writer.updateStatus({
      ...updated,
      status: {
        ...(node.status ?? {}),
        conditions: [...conds.filter((c) => c.type !== 'Ready'), ready],
      },
    });
    if (status === 'True' && old && old.status !== 'True')
      this.ctx.events.record(
        node,
        COMPONENT,
        'Normal',
        'NodeReady',
        `Node ${node.metadata.name} status is now: NodeReady`,
      );
  }
}
