/**
 * Hollow nodes (Kubernetes' kubemark): many fake node agents in one
 * process, each speaking the real node protocol to a real cluster — a
 * session with the leader's dispatcher, heartbeats, assignments — and
 * reporting every assigned pod Running and Ready at once, with a unique IP.
 * Sessions share one gRPC connection per master.
 */
import { setMaxListeners } from 'node:events';
import { ApiObject } from '../../src/api/types';
import { DispatcherClient } from '../../src/gen/node';
import { NodeSession } from '../../src/node/session';

export interface HollowNodeOptions {
  masters: string[];
  count: number;
  /** Name prefix: nodes are `${prefix}-0` … */
  prefix?: string;
  cpu?: string;
  memory?: string;
  pods?: number;
  /** Labels per node index (e.g. zones). */
  labels?: (i: number) => Record<string, string>;
}

/**
 * What a hollow node does with a pod, from the pod's annotations:
 * `hollow.baton.dev/outcome`: ready (default), unready, succeed or fail;
 * `hollow.baton.dev/delay-ms`: how long until ready, or until it finishes.
 */
export const OUTCOME = 'hollow.baton.dev/outcome';
export const DELAY = 'hollow.baton.dev/delay-ms';

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export function hollowNodeObject(
  name: string,
  i: number,
  opts: Pick<HollowNodeOptions, 'cpu' | 'memory' | 'pods' | 'labels'>,
): ApiObject {
  const allocatable = {
    cpu: opts.cpu ?? '32',
    memory: opts.memory ?? '128Gi',
    pods: String(opts.pods ?? 110),
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'baton.dev/hollow': 'true',
        ...(opts.labels?.(i) ?? {}),
      },
    },
    spec: {},
    status: {
      capacity: allocatable,
      allocatable,
      addresses: [
        { type: 'InternalIP', address: `10.${200 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}` },
      ],
    },
  };
}

export class HollowNodes {
  readonly sessions: NodeSession[] = [];
  private readonly abort = new AbortController();
  private readonly clients = new Map<string, DispatcherClient>();
  private readonly running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  /** Pods reported running, by uid. */
  readonly started = new Set<string>();

  constructor(opts: HollowNodeOptions) {
    // One listener per node: thousands of them are expected, not a leak.
    setMaxListeners(opts.count + 10, this.abort.signal);
    const prefix = opts.prefix ?? 'hollow';
    for (let i = 0; i < opts.count; i++) {
      const name = `${prefix}-${i}`;
      let ip = 0;
      const session: NodeSession = new NodeSession({
        nodeName: name,
        masters: opts.masters,
        clients: this.clients,
        describe: () => hollowNodeObject(name, i, opts),
        onAssignments: (_pods, changed) => {
          for (const pod of changed) {
            const uid = pod.metadata.uid!;
            if (this.started.has(uid)) continue;
            this.started.add(uid);
            ip++;
            this.play(session, pod, `10.${(i >> 8) & 255}.${i & 255}.${ip & 255}`);
          }
        },
      });
      this.sessions.push(session);
    }
  }

  private play(session: NodeSession, pod: ApiObject, podIP: string): void {
    const outcome = pod.metadata.annotations?.[OUTCOME] ?? 'ready';
    const delay = Number(pod.metadata.annotations?.[DELAY] ?? 0);
    const container = (pod.spec as { containers: { name: string; image: string }[] }).containers[0];
    const running = (ready: boolean) => {
      const at = now();
      return {
        phase: 'Running',
        hostIP: '10.0.0.1',
        podIP,
        podIPs: [{ ip: podIP }],
        startTime: at,
        conditions: [
          { type: 'PodScheduled', status: 'True', lastTransitionTime: at },
          { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: at },
        ],
      };
    };
    const finished = (ok: boolean) => ({
      phase: ok ? 'Succeeded' : 'Failed',
      hostIP: '10.0.0.1',
      podIP,
      conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: now() }],
      containerStatuses: [
        {
          name: container.name,
          image: container.image,
          ready: false,
          restartCount: 0,
          state: { terminated: { exitCode: ok ? 0 : 1, reason: ok ? 'Completed' : 'Error' } },
        },
      ],
    });
    const later = (fn: () => void) => (delay > 0 ? setTimeout(fn, delay).unref() : fn());
    switch (outcome) {
      case 'unready':
        session.reportStatus(pod, running(false));
        break;
      case 'succeed':
      case 'fail':
        session.reportStatus(pod, running(false));
        later(() => session.reportStatus(pod, finished(outcome === 'succeed')));
        break;
      default:
        if (delay > 0) session.reportStatus(pod, running(false));
        later(() => session.reportStatus(pod, running(true)));
    }
  }

  start(): void {
    for (const s of this.sessions) this.startNode(s.nodeName);
  }

  startNode(name: string): void {
    const s = this.sessions.find((x) => x.nodeName === name)!;
    const abort = new AbortController();
    this.abort.signal.addEventListener('abort', () => abort.abort(), { once: true });
    this.running.set(name, { abort, done: s.run(abort.signal) });
  }

  /** The node goes silent, as a machine that lost power (its pods stay assigned). */
  async stopNode(name: string): Promise<void> {
    const r = this.running.get(name);
    this.running.delete(name);
    r?.abort.abort();
    await r?.done;
  }

  connected(): number {
    return this.sessions.filter((s) => s.connected).length;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.all([...this.running.values()].map((r) => r.done));
    for (const c of this.clients.values()) c.close();
  }
}
