/**
 * The scheduler: pods without a node go through a queue; for each, the
 * filters pick the nodes it fits, the scores rank them, and the pod is
 * "assumed" on the best one (its resources counted at once) while the
 * binding is proposed. Bindings issued in the same moment share one Raft
 * entry (the writer coalesces them), so throughput is not one commit per
 * pod. A pod that fits nowhere stays Pending with an event saying why per
 * filter, and is tried again when the cluster changes.
 */
import type { Logger } from 'pino';
import type { Node, Pod } from '../../api/schema';
import { ApiObject } from '../../api/types';
import { timestamp } from '../admission';
import { ControllerContext } from '../controllers/runtime/controller';
import { isTerminal } from '../controllers/pods';
import { WriteError } from '../controllers/runtime/writer';
import { Change } from '../store/watch-hub';
import { explainUnschedulable } from './explain';
import { addPod, buildView, newNodeInfo, removePod, updateNode } from './node-info';
import { defaultFilters, defaultScores } from './plugins';
import { ClusterView, CycleState, FilterPlugin, NodeInfo, ScorePlugin, SKIP } from './types';

const COMPONENT = 'default-scheduler';
/** Pods naming another scheduler are left alone. */
const OUR_NAMES = new Set([undefined, '', 'default-scheduler', 'baton-scheduler']);

export interface SchedulerOptions {
  filters?: FilterPlugin[];
  scores?: ScorePlugin[];
  /**
   * Like kube-scheduler's percentageOfNodesToScore: stop filtering once this
   * share of the nodes (at least 100) are feasible. 0 = adaptive (50% minus
   * 1% per 125 nodes, at least 5%).
   */
  percentageOfNodesToScore?: number;
  /** Longest wait before an unschedulable pod is tried again without any cluster change. */
  maxUnschedulableMs?: number;
}

export interface ScheduleResult {
  node?: string;
  /** When no node fits: how many nodes failed for each reason. */
  reasons?: Map<string, number>;
  message?: string;
}

interface Waiting {
  pod: Pod;
  attempts: number;
  /** Not before this time (ms). */
  notBefore: number;
}

function podKey(p: ApiObject): string {
  return `${p.metadata.namespace}/${p.metadata.name}`;
}

function nodeNameOf(p: ApiObject): string | undefined {
  return (p.spec as { nodeName?: string } | undefined)?.nodeName || undefined;
}

function wantsUs(p: ApiObject): boolean {
  const spec = p.spec as { schedulerName?: string; schedulingGates?: unknown[] };
  return OUR_NAMES.has(spec.schedulerName) && (spec.schedulingGates ?? []).length === 0;
}

export class Scheduler {
  private readonly nodes = new Map<string, NodeInfo>();
  private nodeList: NodeInfo[] = [];
  /** Where each pod's resources are counted (bound or assumed): uid → node. */
  private readonly placed = new Map<string, string>();
  private readonly active = new Map<string, Pod>(); // insertion-ordered FIFO
  private readonly unschedulable = new Map<string, Waiting>();
  private readonly filters: FilterPlugin[];
  private readonly scores: ScorePlugin[];
  private readonly log: Logger;
  private wake?: () => void;
  private clusterChanged = false;
  private next = 0; // rotating start among nodes, so ties spread
  readonly stats = { scheduled: 0, failed: 0, bindConflicts: 0 };

  constructor(
    private readonly ctx: ControllerContext,
    private readonly opts: SchedulerOptions = {},
  ) {
    this.filters = opts.filters ?? defaultFilters();
    this.scores = opts.scores ?? defaultScores();
    this.log = ctx.log.child({ component: COMPONENT });
  }

  // ---- the cache ------------------------------------------------------------

  private view(): ClusterView {
    const store = this.ctx.store;
    return buildView(this.nodeList, (ns) => {
      const o = store.get('Namespace', undefined, ns);
      return o?.object.metadata.labels ?? {};
    });
  }

  private setNode(node: Node | undefined, name: string): void {
    const info = this.nodes.get(name);
    if (!node) {
      if (info) {
        this.nodes.delete(name);
        this.nodeList = [...this.nodes.values()];
      }
    } else if (info) updateNode(info, node);
    else {
      this.nodes.set(name, newNodeInfo(node));
      this.nodeList = [...this.nodes.values()];
    }
    this.noteClusterChange();
  }

  /** Counts `pod` on `node` (or nowhere), keeping the per-node sums exact. */
  private place(pod: Pod, node: string | undefined): void {
    const uid = pod.metadata.uid!;
    const was = this.placed.get(uid);
    if (was !== undefined) {
      const info = this.nodes.get(was);
      if (info) removePod(info, pod);
      this.placed.delete(uid);
    }
    if (node !== undefined) {
      const info = this.nodes.get(node);
      if (info) addPod(info, pod);
      this.placed.set(uid, node);
    }
    if (was !== undefined && node === undefined) this.noteClusterChange();
  }

  private onPod(c: Change): void {
    const pod = c.object as Pod;
    const key = podKey(pod);
    const node = nodeNameOf(pod);
    if (c.type === 'DELETED' || isTerminal(pod)) {
      this.active.delete(key);
      this.unschedulable.delete(key);
      this.place(pod, undefined);
      return;
    }
    if (node) {
      this.active.delete(key);
      this.unschedulable.delete(key);
      this.place(pod, node);
      return;
    }
    if (!wantsUs(pod) || this.unschedulable.has(key)) {
      const w = this.unschedulable.get(key);
      if (w) w.pod = pod;
      return;
    }
    this.active.set(key, pod);
    this.wake?.();
  }

  private noteClusterChange(): void {
    this.clusterChanged = true;
  }

  // ---- the loop ---------------------------------------------------------------

  async run(): Promise<void> {
    const { store, signal } = this.ctx;
    if (signal.aborted) return;
    const subs = [
      store.watch.subscribe({
        query: { kind: 'Node' },
        deliver: (cs) => {
          for (const c of cs)
            this.setNode(
              c.type === 'DELETED' ? undefined : (c.object as Node),
              c.object.metadata.name,
            );
          this.wake?.();
        },
      }),
      store.watch.subscribe({
        query: { kind: 'Pod' },
        deliver: (cs) => {
          for (const c of cs) this.onPod(c);
        },
      }),
    ];
    for (const s of store.list({ kind: 'Node' }))
      this.setNode(s.object as Node, s.object.metadata.name);
    for (const s of store.list({ kind: 'Pod' }))
      this.onPod({ type: 'ADDED', revision: s.revision, object: s.object, json: s.json });

    const retry = setInterval(() => this.requeueUnschedulable(), 250);
    retry.unref();
    try {
      while (!signal.aborted) {
        if (this.active.size === 0) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            signal.addEventListener('abort', () => resolve(), { once: true });
          });
          this.wake = undefined;
          continue;
        }
        // Schedule a slice, then let the event loop apply commits and watches.
        const started = Date.now();
        let n = 0;
        for (const [key, pod] of this.active) {
          if (signal.aborted) break;
          this.active.delete(key);
          this.scheduleOne(pod);
          if (++n >= 64 && Date.now() - started >= 20) break;
        }
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      clearInterval(retry);
      for (const stop of subs) stop();
    }
  }

  /** Moves unschedulable pods back when the cluster changed (after their backoff) or they waited long enough. */
  private requeueUnschedulable(): void {
    const now = Date.now();
    const maxWait = this.opts.maxUnschedulableMs ?? 30_000;
    const changed = this.clusterChanged;
    this.clusterChanged = false;
    let moved = false;
    for (const [key, w] of this.unschedulable) {
      if (now < w.notBefore) continue;
      if (!changed && now < w.notBefore + maxWait) continue;
      this.unschedulable.delete(key);
      this.active.set(key, w.pod);
      moved = true;
    }
    if (moved) this.wake?.();
    else if (changed && this.unschedulable.size > 0) this.clusterChanged = true; // some still backing off
  }

  private scheduleOne(pod: Pod): void {
    const cur = this.ctx.store.get('Pod', pod.metadata.namespace, pod.metadata.name);
    if (!cur || cur.object.metadata.uid !== pod.metadata.uid || nodeNameOf(cur.object)) return;
    const r = this.schedule(cur.object as Pod);
    if (r.node) this.bind(cur.object as Pod, r.node);
    else this.markUnschedulable(cur.object as Pod, r.message!);
  }

  /** One scheduling decision for `pod` against the current cache (pure with respect to the store). */
  schedule(pod: Pod): ScheduleResult {
    const all = this.nodeList;
    const view = this.view();
    if (all.length === 0)
      return { reasons: new Map(), message: explainUnschedulable(0, new Map()) };
    const state: CycleState = new Map();
    const filters = this.filters.filter((f) => f.preFilter?.(pod, view, state) !== SKIP);
    const wanted = this.feasibleToFind(all.length);
    const feasible: NodeInfo[] = [];
    const reasons = new Map<string, number>();
    const start = this.next % all.length;
    let i = 0;
    for (; i < all.length && feasible.length < wanted; i++) {
      const node = all[(start + i) % all.length];
      let reason: string | undefined;
      for (let k = 0; k < filters.length; k++) {
        reason = filters[k].filter(pod, node, view, state);
        if (reason !== undefined) break;
      }
      if (reason === undefined) feasible.push(node);
      else reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
    }
    this.next = start + i;
    if (feasible.length === 0)
      return { reasons, message: explainUnschedulable(all.length, reasons) };
    if (feasible.length === 1) return { node: feasible[0].name };
    const total = new Array<number>(feasible.length).fill(0);
    const raw = new Array<number>(feasible.length);
    for (const s of this.scores) {
      // A skipped score would give every node the same points: no effect on the choice.
      if (s.preScore?.(pod, feasible, view, state) === SKIP) continue;
      for (let j = 0; j < feasible.length; j++) raw[j] = s.score(pod, feasible[j], view, state);
      s.normalize?.(raw, state);
      for (let j = 0; j < raw.length; j++) total[j] += raw[j] * s.weight;
    }
    let best = 0;
    for (let j = 1; j < total.length; j++) if (total[j] > total[best]) best = j;
    return { node: feasible[best].name };
  }

  private feasibleToFind(n: number): number {
    if (n <= 100) return n;
    let pct = this.opts.percentageOfNodesToScore ?? 0;
    if (pct <= 0) pct = Math.max(5, 50 - Math.floor(n / 125));
    return Math.max(100, Math.floor((n * Math.min(pct, 100)) / 100));
  }

  private bind(pod: Pod, node: string): void {
    this.place(pod, node); // assumed: counted now, so the next pod sees it
    this.stats.scheduled++;
    const { namespace, name, uid } = pod.metadata;
    this.ctx.writer.bind({ namespace: namespace!, name, uid: uid!, node }).then(
      () => {
        this.ctx.events.record(
          pod,
          COMPONENT,
          'Normal',
          'Scheduled',
          `Successfully assigned ${namespace}/${name} to ${node}`,
        );
      },
      (err: Error) => {
        // Not bound after all: uncount it, unless the store says where it is.
        const now = this.ctx.store.get('Pod', namespace, name)?.object as Pod | undefined;
        if (!now || now.metadata.uid !== uid) this.place(pod, undefined);
        else if (nodeNameOf(now)) this.place(now, nodeNameOf(now));
        else {
          this.place(pod, undefined);
          if (!this.ctx.signal.aborted) this.active.set(podKey(pod), now);
          this.wake?.();
        }
        if (err instanceof WriteError && (err.code === 'CONFLICT' || err.code === 'NOT_FOUND'))
          this.stats.bindConflicts++;
        else if (!this.ctx.signal.aborted)
          this.log.warn({ err, pod: podKey(pod) }, 'binding failed');
      },
    );
  }

  private markUnschedulable(pod: Pod, message: string): void {
    this.stats.failed++;
    const key = podKey(pod);
    const prev = this.unschedulable.get(key);
    const attempts = (prev?.attempts ?? 0) + 1;
    const backoff = Math.min(10_000, 1000 * 2 ** (attempts - 1));
    this.unschedulable.set(key, { pod, attempts, notBefore: Date.now() + backoff });
    this.ctx.events.record(pod, COMPONENT, 'Warning', 'FailedScheduling', message);
    // The pod's PodScheduled condition says why (kubectl describe shows it); written only when it changes.
    const status = (pod.status ?? {}) as { conditions?: Record<string, unknown>[] };
    const conds = status.conditions ?? [];
    const old = conds.find((c) => c.type === 'PodScheduled');
    if (old?.status === 'False' && old.message === message) return;
    const cond = {
      type: 'PodScheduled',
      status: 'False',
      reason: 'Unschedulable',
      message,
      lastTransitionTime:
        old?.status === 'False' ? old.lastTransitionTime : timestamp(this.ctx.env.now()),
    };
    const next = {
      ...pod,
      status: {
        phase: 'Pending',
        ...status,
        conditions: [...conds.filter((c) => c.type !== 'PodScheduled'), cond],
      },
    };
    this.ctx.writer.updateStatus(next).catch(() => {
      // Changed meanwhile: the next attempt writes the condition again if it still applies.
    });
  }
}
