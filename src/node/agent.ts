/**
 * The node daemon's core: its session with the leader (NodeSession) gives
 * the assigned pods; a sync loop makes the runtime match them (start what
 * is missing, restart what exited as the restart policy says, with
 * exponential back-off, remove what is no longer assigned) and reports each
 * pod's status when it changes. It works from what the runtime lists, not
 * from memory, so a restarted daemon adopts the containers it finds.
 */
import { readFileSync } from 'node:fs';
import { cpus, hostname, networkInterfaces, release, totalmem } from 'node:os';
import type { Logger } from 'pino';
import type { Container, Pod } from '../api/schema';
import { ApiObject } from '../api/types';
import { silentLogger } from '../common/log';
import { VERSION } from '../common/version';
import {
  DockerRuntime,
  INFRA,
  RuntimeContainer,
  RuntimeError,
  type ContainerDetail,
} from './docker-runtime';
import { NodeSession } from './session';

export interface AgentOptions {
  nodeName: string;
  masters: string[];
  runtime: DockerRuntime;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: string }[];
  /** How often everything is checked even without a change of assignments. */
  syncPeriodMs?: number;
  /** First restart delay of a container that exited; doubles up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  log?: Logger;
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The host's first non-internal IPv4 address. */
export function hostAddress(): string {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return '127.0.0.1';
}

function readFirst(paths: string[]): string {
  for (const p of paths) {
    try {
      const v = readFileSync(p, 'utf8').trim();
      if (v) return v;
    } catch {
      // next
    }
  }
  return 'unknown';
}

/** The host facts a Node reports in status.nodeInfo, read once. */
const hostInfo = (() => {
  let info: Record<string, string> | undefined;
  return () =>
    (info ??= {
      machineID: readFirst(['/etc/machine-id', '/var/lib/dbus/machine-id']),
      systemUUID: readFirst(['/sys/class/dmi/id/product_uuid', '/etc/machine-id']),
      bootID: readFirst(['/proc/sys/kernel/random/boot_id']),
      kernelVersion: release(),
      osImage: /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFirst(['/etc/os-release']))?.[1] ?? 'Linux',
    });
})();

type ContainerStatus = {
  name: string;
  image: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  containerID?: string;
  state: Record<string, unknown>;
  lastState?: Record<string, unknown>;
};

export class NodeAgent {
  readonly session: NodeSession;
  private readonly log: Logger;
  private readonly backoff = new Map<string, { until: number; delay: number }>();
  private readonly reported = new Map<string, string>();
  private readonly startedAt = new Map<string, string>();
  private syncing?: Promise<void>;
  private again = false;
  private readonly address = hostAddress();

  constructor(private readonly opts: AgentOptions) {
    this.log = (opts.log ?? silentLogger()).child({ component: 'node-agent' });
    this.session = new NodeSession({
      nodeName: opts.nodeName,
      masters: opts.masters,
      log: this.log,
      describe: () => this.nodeObject(),
      onAssignments: () => this.kick(),
    });
  }

  /** The Node object as this host sees itself. */
  nodeObject(): ApiObject {
    const cpu = String(cpus().length);
    const memory = `${Math.floor(totalmem() / 1024)}Ki`;
    const capacity = { cpu, memory, pods: '110' };
    const at = now();
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.opts.nodeName,
        labels: {
          'kubernetes.io/hostname': this.opts.nodeName,
          'kubernetes.io/os': 'linux',
          ...this.opts.labels,
        },
      },
      spec: this.opts.taints?.length ? { taints: this.opts.taints } : {},
      status: {
        capacity,
        allocatable: capacity,
        addresses: [
          { type: 'InternalIP', address: this.address },
          { type: 'Hostname', address: hostname() },
        ],
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'NodeReady',
            message: 'baton node is posting ready status',
            lastHeartbeatTime: at,
            lastTransitionTime: at,
          },
        ],
        nodeInfo: {
          ...hostInfo(),
          kubeletVersion: `baton-${VERSION}`,
          containerRuntimeVersion: this.opts.runtime.name,
          operatingSystem: 'linux',
          architecture: process.arch,
        },
      },
    } as ApiObject;
  }

  /** Runs until `signal` aborts; running containers are left alone then (a daemon restart adopts them). */
  async run(signal: AbortSignal): Promise<void> {
    const timer = setInterval(() => this.kick(), this.opts.syncPeriodMs ?? 1000);
    try {
      await this.session.run(signal);
    } finally {
      clearInterval(timer);
      await this.syncing;
    }
  }

  /** Asks for a sync; one runs at a time, and one more follows if asked meanwhile. */
  kick(): void {
    if (this.syncing) {
      this.again = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.again = false;
        try {
          await this.sync();
        } catch (err) {
          this.log.warn({ err }, 'sync failed');
        }
      } while (this.again);
    })().finally(() => (this.syncing = undefined));
  }

  private async sync(): Promise<void> {
    const assigned = this.session.pods as ReadonlyMap<string, ApiObject>;
    const byPod = new Map<string, RuntimeContainer[]>();
    for (const c of await this.opts.runtime.list()) {
      const list = byPod.get(c.podUid) ?? [];
      list.push(c);
      byPod.set(c.podUid, list);
    }
    // What is no longer assigned goes: app containers first, the sandbox last.
    await Promise.all(
      [...byPod]
        .filter(([uid]) => !assigned.has(uid))
        .map(async ([uid, cs]) => {
          this.log.info({ pod: `${cs[0].namespace}/${cs[0].podName}` }, 'removing pod');
          await Promise.all(
            cs.filter((c) => c.name !== INFRA).map((c) => this.opts.runtime.remove(c.id, 30)),
          );
          await Promise.all(
            cs.filter((c) => c.name === INFRA).map((c) => this.opts.runtime.remove(c.id, 0)),
          );
          this.forget(uid);
        }),
    );
    await Promise.all(
      [...assigned.values()].map((p) =>
        this.syncPod(p as Pod, byPod.get(p.metadata.uid!) ?? []).catch((err) =>
          this.log.warn(
            { err, pod: `${p.metadata.namespace}/${p.metadata.name}` },
            'pod sync failed',
          ),
        ),
      ),
    );
  }

  private forget(uid: string): void {
    this.reported.delete(uid);
    this.startedAt.delete(uid);
    for (const k of this.backoff.keys()) if (k.startsWith(`${uid}/`)) this.backoff.delete(k);
  }

  private async syncPod(pod: Pod, cs: RuntimeContainer[]): Promise<void> {
    const uid = pod.metadata.uid!;
    const policy = pod.spec.restartPolicy ?? 'Always';
    let sandbox = cs.find((c) => c.name === INFRA);
    const finished = this.isFinished(pod);
    if (!sandbox?.running && !finished) {
      if (sandbox) await this.opts.runtime.remove(sandbox.id, 0);
      sandbox = { ...cs[0], id: await this.opts.runtime.startSandbox(pod), running: true };
      this.startedAt.set(uid, now());
    }
    const sandboxDetail = sandbox ? await this.opts.runtime.inspect(sandbox.id) : undefined;
    if (!this.startedAt.has(uid) && sandboxDetail?.startedAt)
      this.startedAt.set(uid, sandboxDetail.startedAt);
    const statuses: ContainerStatus[] = [];
    for (const spec of pod.spec.containers)
      statuses.push(await this.syncContainer(pod, spec, policy, sandbox?.id, cs, finished));
    this.report(pod, statuses, sandboxDetail);
  }

  /** A pod whose containers all ended for good is not restarted (Never / OnFailure). */
  private isFinished(pod: Pod): boolean {
    const phase = (pod.status as { phase?: string } | undefined)?.phase;
    return phase === 'Succeeded' || phase === 'Failed';
  }

  private async syncContainer(
    pod: Pod,
    spec: Container,
    policy: string,
    sandboxId: string | undefined,
    cs: RuntimeContainer[],
    finished: boolean,
  ): Promise<ContainerStatus> {
    const uid = pod.metadata.uid!;
    const key = `${uid}/${spec.name}`;
    const mine = cs.filter((c) => c.name === spec.name).sort((a, b) => b.restarts - a.restarts);
    const latest = mine[0];
    // Older attempts are kept only as the last state; remove the rest.
    for (const old of mine.slice(1)) await this.opts.runtime.remove(old.id, 0);
    const base = { name: spec.name, image: spec.image, ready: false, started: false };
    // `delayed`: the caller already set the back-off for this attempt.
    const start = async (restarts: number, last?: Record<string, unknown>, delayed = false) => {
      if (sandboxId === undefined) return undefined;
      try {
        const id = await this.opts.runtime.startContainer(pod, spec, sandboxId, restarts);
        if (latest) await this.opts.runtime.remove(latest.id, 0);
        const d = await this.opts.runtime.inspect(id);
        return this.containerStatus(spec, id, restarts, d, last);
      } catch (err) {
        const reason = err instanceof RuntimeError ? err.reason : 'CreateContainerError';
        if (!delayed) this.delay(key);
        const waitReason =
          reason === 'ErrImagePull' && this.backoff.get(key)!.delay > this.initial()
            ? 'ImagePullBackOff'
            : reason;
        return {
          ...base,
          restartCount: restarts,
          state: { waiting: { reason: waitReason, message: (err as Error).message } },
          ...(last ? { lastState: last } : {}),
        };
      }
    };
    if (!latest) {
      const b = this.backoff.get(key);
      if (b && Date.now() < b.until)
        return {
          ...base,
          restartCount: 0,
          state: {
            waiting: {
              reason: 'ImagePullBackOff',
              message: `Back-off pulling image "${spec.image}"`,
            },
          },
        };
      return (
        (await start(0)) ?? {
          ...base,
          restartCount: 0,
          state: { waiting: { reason: 'ContainerCreating' } },
        }
      );
    }
    const d = await this.opts.runtime.inspect(latest.id);
    const status = this.containerStatus(spec, latest.id, latest.restarts, d);
    if (d.running || finished) return status;
    const restart = policy === 'Always' || (policy === 'OnFailure' && d.exitCode !== 0);
    if (!restart) return status;
    const b = this.backoff.get(key);
    if (b && Date.now() < b.until)
      return {
        ...status,
        state: {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off ${Math.round(b.delay / 1000)}s restarting failed container=${spec.name} pod=${pod.metadata.name}`,
          },
        },
        lastState: status.state,
      };
    this.delay(key);
    this.log.info(
      {
        pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
        container: spec.name,
        exitCode: d.exitCode,
      },
      'restarting container',
    );
    return (await start(latest.restarts + 1, status.state, true)) ?? status;
  }

  private initial(): number {
    return this.opts.initialBackoffMs ?? 1000;
  }

  /** Sets (or doubles) the back-off before the next attempt for `key`. */
  private delay(key: string): void {
    const prev = this.backoff.get(key);
    const delay = prev
      ? Math.min(prev.delay * 2, this.opts.maxBackoffMs ?? 300_000)
      : this.initial();
    this.backoff.set(key, { delay, until: Date.now() + delay });
  }

  private containerStatus(
    spec: Container,
    id: string,
    restarts: number,
    d: ContainerDetail,
    last?: Record<string, unknown>,
  ): ContainerStatus {
    const state = d.running
      ? { running: { startedAt: d.startedAt } }
      : {
          terminated: {
            exitCode: d.exitCode,
            reason: d.oomKilled ? 'OOMKilled' : d.exitCode === 0 ? 'Completed' : 'Error',
            ...(d.error ? { message: d.error } : {}),
            startedAt: d.startedAt,
            finishedAt: d.finishedAt,
            containerID: `docker://${id}`,
          },
        };
    return {
      name: spec.name,
      image: spec.image,
      ready: d.running,
      started: d.running,
      restartCount: restarts,
      containerID: `docker://${id}`,
      state,
      ...(last ? { lastState: last } : {}),
    };
  }

  private report(
    pod: Pod,
    statuses: ContainerStatus[],
    sandbox: ContainerDetail | undefined,
  ): void {
    const running = statuses.filter((s) => s.state.running !== undefined).length;
    const terminated = statuses.map((s) => s.state.terminated as { exitCode: number } | undefined);
    const policy = pod.spec.restartPolicy ?? 'Always';
    let phase = 'Pending';
    if (terminated.every((t) => t !== undefined) && policy !== 'Always') {
      if (terminated.every((t) => t!.exitCode === 0)) phase = 'Succeeded';
      else if (policy === 'Never') phase = 'Failed';
      else phase = 'Running';
    } else if (running > 0 || statuses.some((s) => s.restartCount > 0)) phase = 'Running';
    const ready = statuses.every((s) => s.ready) && phase === 'Running';
    const at = now();
    const prev = this.reported.get(pod.metadata.uid!);
    const prevConditions = prev
      ? (
          JSON.parse(prev) as {
            conditions: { type: string; status: string; lastTransitionTime: string }[];
          }
        ).conditions
      : [];
    const cond = (type: string, ok: boolean) => {
      const status = ok ? 'True' : 'False';
      const was = prevConditions.find((c) => c.type === type);
      return {
        type,
        status,
        lastTransitionTime: was?.status === status ? was.lastTransitionTime : at,
      };
    };
    const status = {
      phase,
      hostIP: this.address,
      hostIPs: [{ ip: this.address }],
      ...(sandbox?.ip ? { podIP: sandbox.ip, podIPs: [{ ip: sandbox.ip }] } : {}),
      startTime: this.startedAt.get(pod.metadata.uid!) ?? at,
      conditions: [
        cond('PodScheduled', true),
        cond('Initialized', true),
        cond('ContainersReady', ready),
        cond('Ready', ready),
      ],
      containerStatuses: statuses,
    };
    const json = JSON.stringify(status);
    if (json === prev) return;
    this.reported.set(pod.metadata.uid!, json);
    this.session.reportStatus(pod, status);
  }
}
