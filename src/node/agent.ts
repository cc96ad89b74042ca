/**
 * The node daemon's core: its session with the leader (NodeSession) gives
 * the assigned pods; a sync loop makes the runtime match them and reports
 * each pod's status when it changes:
 *
 * - a pod gets its sandbox (network namespace on the node's pod CIDR), then
 *   its init containers one at a time in order, then its app containers;
 * - an exited container is restarted as the restart policy says, with an
 *   exponential back-off (CrashLoopBackOff); probes run on every running
 *   container (liveness kills, readiness gates Ready);
 * - a pod no longer assigned is stopped gracefully (SIGTERM, SIGKILL after
 *   its terminationGracePeriodSeconds) in the background and removed with
 *   everything the node wrote for it.
 *
 * It works from what the runtime lists, not from memory, so a restarted
 * daemon adopts the containers it finds; nothing is removed until the
 * leader has sent a complete set of assignments, so a daemon restarted
 * while the masters are unreachable leaves its pods running.
 */
import type * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { cpus, hostname, networkInterfaces, release, totalmem } from 'node:os';
import type { Logger } from 'pino';
import type { ConfigMap, Container, Node, Pod, Secret } from '../api/schema';
import { ApiObject } from '../api/types';
import { BatonClient, ClientError } from '../client/cluster-client';
import { Coalescer } from '../common/coalescer';
import { silentLogger } from '../common/log';
import { VERSION } from '../common/version';
import { NodeEvents } from './node-events';
import { PodConfig } from './pod-config';
import { ContainerProbes } from './probes';
import { intToIpv4, parseCidr } from '../common/cidr';
import type { NodeProxy } from '../proxy/node-proxy';
import {
  ContainerDetail,
  INFRA,
  Runtime,
  RuntimeContainer,
  RuntimeError,
  SandboxSpec,
} from './runtime';
import { serviceEnv } from './service-env';
import { NodeSession } from './session';

export interface AgentOptions {
  nodeName: string;
  masters: string[];
  /** Mutual TLS to the masters with this node's certificate; plaintext when absent. */
  credentials?: grpc.ChannelCredentials;
  runtime: Runtime;
  /** Pods' volumes and files live under `<dataDir>/pods/<uid>`. */
  dataDir: string;
  /** The address other machines reach this node at (default: the first non-loopback IPv4). */
  address?: string;
  /** The port of this node's API (logs, exec), published in the Node's daemonEndpoints. */
  apiPort?: number;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: string }[];
  /** How often everything is checked even without a change of assignments. */
  syncPeriodMs?: number;
  /** First restart delay of a container that exited; doubles up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  log?: Logger;
  /** Services on this node: proxy, cluster DNS, pod routes (none: pods get no service env or DNS). */
  proxy?: NodeProxy;
  /** The cluster's DNS domain (default cluster.local). */
  clusterDomain?: string;
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

type State = Record<string, unknown>;
interface ContainerStatus {
  name: string;
  image: string;
  ready: boolean;
  started: boolean;
  restartCount: number;
  containerID?: string;
  state: State;
  lastState?: State;
}

/** Restarts after a container ran this long start the back-off over (as the kubelet). */
const BACKOFF_RESET_MS = 600_000;

export class NodeAgent {
  readonly session: NodeSession;
  readonly client: BatonClient;
  private readonly log: Logger;
  private readonly events: NodeEvents;
  private readonly config: PodConfig;
  private readonly backoff = new Map<string, { until: number; delay: number }>();
  private readonly reported = new Map<string, string>();
  private readonly phases = new Map<string, string>();
  private readonly startedAt = new Map<string, string>();
  /** The last spec of every pod seen, kept until it is gone (its grace period is needed then). */
  private readonly known = new Map<string, Pod>();
  private readonly terminating = new Map<string, Promise<void>>();
  /** Probes by container id. */
  private readonly probes = new Map<string, { uid: string; probes: ContainerProbes }>();
  /** Per-pod sync workers by pod uid. */
  private readonly workers = new Map<string, { again: boolean; done: Promise<void> }>();
  /** Containers being killed by a failed liveness or startup probe. */
  private readonly killing = new Set<string>();
  private readonly syncs = new Coalescer(
    () => this.sync(),
    (err) => this.log.warn({ err }, 'sync failed'),
  );
  /** This node's block of pod IPs, from the leader's node IPAM. */
  podCIDR?: string;
  /** Where this node's pods send DNS queries (its gateway on the pod network). */
  private dnsServer?: string;
  private networkReady: boolean;
  readonly address: string;

  constructor(private readonly opts: AgentOptions) {
    this.log = (opts.log ?? silentLogger()).child({ component: 'node-agent' });
    this.address = opts.address ?? hostAddress();
    this.client = new BatonClient(opts.masters, {
      timeoutMs: 10_000,
      credentials: opts.credentials,
    });
    this.events = new NodeEvents(this.client, opts.nodeName, this.log);
    this.config = new PodConfig(
      `${opts.dataDir}/pods`,
      (kind, ns, name) => this.lookup(kind, ns, name),
      opts.proxy
        ? (ns) => serviceEnv(opts.proxy!.servicesIn(ns), (ip) => opts.proxy!.address(ip))
        : undefined,
    );
    // The exec runtime shares the host's network: nothing to wait for.
    this.networkReady = opts.runtime.name !== 'docker';
    this.session = new NodeSession({
      nodeName: opts.nodeName,
      masters: opts.masters,
      credentials: opts.credentials,
      log: this.log,
      describe: () => this.nodeObject(),
      onAssignments: () => this.kick(),
      onObjects: (changed, removed, full) => opts.proxy?.onObjects(changed, removed, full),
    });
  }

  private async lookup(
    kind: 'ConfigMap' | 'Secret',
    namespace: string,
    name: string,
  ): Promise<ConfigMap | Secret | undefined> {
    try {
      return JSON.parse((await this.client.get(kind, namespace, name)).objectJson) as
        ConfigMap | Secret;
    } catch (err) {
      if (err instanceof ClientError && err.code === 5) return undefined; // NOT_FOUND
      throw new RuntimeError(
        'CreateContainerConfigError',
        `reading ${kind.toLowerCase()} "${name}": ${(err as Error).message}`,
      );
    }
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
          'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
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
        ...(this.opts.apiPort
          ? { daemonEndpoints: { kubeletEndpoint: { Port: this.opts.apiPort } } }
          : {}),
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
      await this.syncs.settled();
      await Promise.all([...this.workers.values()].map((w) => w.done));
      for (const p of this.probes.values()) p.probes.stop();
      this.probes.clear();
      this.client.close();
    }
  }

  /** Asks for a sync; one runs at a time, and one more follows if asked meanwhile. */
  kick(): void {
    this.syncs.kick();
  }

  /** Makes the node's pod network once the leader has given the node its pod CIDR. */
  private async ensureNetwork(): Promise<void> {
    if (this.networkReady) return;
    const runtime = this.opts.runtime as Runtime & {
      ensureNetwork?(cidr: string): Promise<string>;
    };
    try {
      const n = JSON.parse(
        (await this.client.get('Node', '', this.opts.nodeName)).objectJson,
      ) as Node;
      const cidr = n.spec?.podCIDR;
      if (!cidr) return;
      if (runtime.ensureNetwork) await runtime.ensureNetwork(cidr);
      if (this.opts.proxy) {
        // Pods ask the cluster DNS on their gateway (this host's address on the pod network).
        const gateway = intToIpv4(parseCidr(cidr).base + 1);
        try {
          await this.opts.proxy.serveDns(gateway);
          this.dnsServer = gateway;
        } catch (err) {
          // Pods still start, with the host's resolvers: better than not at all.
          this.log.warn(
            { address: `${gateway}:53`, err: (err as Error).message },
            'cluster DNS cannot listen; pods get the host resolvers',
          );
        }
      }
      this.podCIDR = cidr;
      this.networkReady = true;
      this.log.info({ podCIDR: cidr }, 'pod network ready');
    } catch (err) {
      this.log.debug({ err }, 'pod network not ready yet');
    }
  }

  private async sync(): Promise<void> {
    // Until the leader has said what this node runs, do nothing: an empty set means "not told yet".
    if (!this.session.hasAssignments) return;
    await this.ensureNetwork();
    const assigned = this.session.pods as ReadonlyMap<string, Pod>;
    for (const [uid, p] of assigned) this.known.set(uid, p);
    const byPod = new Map<string, RuntimeContainer[]>();
    for (const c of await this.opts.runtime.list()) {
      const list = byPod.get(c.podUid) ?? [];
      list.push(c);
      byPod.set(c.podUid, list);
    }
    for (const [uid, cs] of byPod)
      if (!assigned.has(uid) && !this.terminating.has(uid)) this.terminate(uid, cs);
    for (const uid of this.known.keys())
      if (!assigned.has(uid) && !byPod.has(uid) && !this.terminating.has(uid)) this.forget(uid);
    for (const p of assigned.values())
      if (!this.terminating.has(p.metadata.uid!))
        this.podWorker(p.metadata.uid!, byPod.get(p.metadata.uid!) ?? []);
  }

  /**
   * Each pod has its own worker, as in the kubelet: a slow image pull or a
   * slow container start holds up that pod only. A pod whose worker is busy
   * is marked, and its worker runs once more (from a fresh listing) when done.
   */
  private podWorker(uid: string, cs: RuntimeContainer[]): void {
    const w = this.workers.get(uid);
    if (w) {
      w.again = true;
      return;
    }
    const me = { again: false, done: Promise.resolve() };
    this.workers.set(uid, me);
    me.done = (async () => {
      let listing = cs;
      for (;;) {
        const pod = this.session.pods.get(uid) as Pod | undefined;
        if (!pod || this.terminating.has(uid)) return;
        try {
          await this.syncPod(pod, listing);
        } catch (err) {
          this.log.warn(
            { err, pod: `${pod.metadata.namespace}/${pod.metadata.name}` },
            'pod sync failed',
          );
        }
        if (!me.again) return;
        me.again = false;
        listing = await this.opts.runtime.list(uid).catch(() => listing);
      }
    })().finally(() => this.workers.delete(uid));
  }

  /**
   * The pod's resolv.conf, as its dnsPolicy says: ClusterFirst (the default)
   * asks the cluster DNS with Kubernetes' search path; None takes dnsConfig
   * alone; Default keeps the host's. dnsConfig adds to the first two.
   */
  private podDns(pod: Pod): SandboxSpec['dns'] {
    const policy = pod.spec.dnsPolicy ?? 'ClusterFirst';
    const extra = pod.spec.dnsConfig;
    const options = (extra?.options ?? []).map((o) =>
      o.value === undefined ? o.name : `${o.name}:${o.value}`,
    );
    if (policy === 'None')
      return {
        servers: extra?.nameservers ?? [],
        searches: extra?.searches ?? [],
        options,
      };
    if (policy === 'Default' || !this.dnsServer || pod.spec.hostNetwork) return undefined;
    const domain = this.opts.clusterDomain ?? 'cluster.local';
    const ns = pod.metadata.namespace ?? 'default';
    return {
      servers: [this.dnsServer, ...(extra?.nameservers ?? [])],
      searches: [`${ns}.svc.${domain}`, `svc.${domain}`, domain, ...(extra?.searches ?? [])],
      options: [...(options.some((o) => o.startsWith('ndots')) ? [] : ['ndots:5']), ...options],
    };
  }

  /** Stops the probes of `uid`'s containers, except `keep`. */
  private stopProbes(uid: string, keep: ReadonlySet<string> = new Set()): void {
    for (const [id, p] of this.probes)
      if (p.uid === uid && !keep.has(id)) {
        p.probes.stop();
        this.probes.delete(id);
      }
  }

  /** Stops a pod that is no longer assigned, in the background: app containers with the pod's grace period, then the rest. */
  private terminate(uid: string, cs: RuntimeContainer[]): void {
    const pod = this.known.get(uid);
    const grace = pod?.spec.terminationGracePeriodSeconds ?? 30;
    const name = `${cs[0].namespace}/${cs[0].podName}`;
    this.log.info({ pod: name, graceSeconds: grace }, 'stopping pod');
    const rt = this.opts.runtime;
    const done = (async () => {
      await this.workers.get(uid)?.done;
      this.stopProbes(uid);
      await Promise.all(
        cs
          .filter((c) => c.name !== INFRA && c.running)
          .map(async (c) => {
            if (pod)
              this.events.record(
                pod,
                'Normal',
                'Killing',
                `Stopping container ${c.name}`,
                `spec.containers{${c.name}}`,
              );
            await rt.stop(c.id, grace);
          }),
      );
      await Promise.all(cs.filter((c) => c.name !== INFRA).map((c) => rt.remove(c.id, 0)));
      await Promise.all(cs.filter((c) => c.name === INFRA).map((c) => rt.remove(c.id, 0)));
      this.config.cleanup(uid);
      this.forget(uid);
    })()
      .catch((err) => this.log.warn({ err, pod: name }, 'stopping pod failed; will retry'))
      .finally(() => {
        this.terminating.delete(uid);
        this.kick();
      });
    this.terminating.set(uid, done);
  }

  private forget(uid: string): void {
    this.stopProbes(uid);
    this.known.delete(uid);
    this.reported.delete(uid);
    this.phases.delete(uid);
    this.startedAt.delete(uid);
    this.events.forget(uid);
    for (const k of this.backoff.keys()) if (k.startsWith(`${uid}/`)) this.backoff.delete(k);
  }

  private podRef(pod: Pod) {
    return {
      uid: pod.metadata.uid!,
      namespace: pod.metadata.namespace ?? 'default',
      name: pod.metadata.name,
    };
  }

  private async syncPod(pod: Pod, cs: RuntimeContainer[]): Promise<void> {
    const uid = pod.metadata.uid!;
    const rt = this.opts.runtime;
    const finished = this.isFinished(pod);
    let sandbox = cs.find((c) => c.name === INFRA);
    if (!sandbox?.running && !finished) {
      if (!this.networkReady) {
        this.reportWaiting(pod, 'ContainerCreating', "waiting for this node's pod CIDR");
        return;
      }
      if (sandbox) {
        // The sandbox died: every container of the pod starts over in a new one.
        this.log.info({ pod: `${pod.metadata.namespace}/${pod.metadata.name}` }, 'sandbox gone');
        await Promise.all(cs.map((c) => rt.remove(c.id, 0)));
        cs = [];
      }
      try {
        const id = await rt.startSandbox({
          pod: this.podRef(pod),
          hostname: pod.spec.hostname ?? pod.metadata.name,
          dns: this.podDns(pod),
          hostPorts: pod.spec.containers.flatMap((c) =>
            (c.ports ?? [])
              .filter((p) => p.hostPort !== undefined)
              .map((p) => ({
                containerPort: p.containerPort,
                hostPort: p.hostPort!,
                protocol: p.protocol ?? 'TCP',
                hostIP: p.hostIP,
              })),
          ),
        });
        sandbox = {
          id,
          podUid: uid,
          namespace: pod.metadata.namespace ?? 'default',
          podName: pod.metadata.name,
          name: INFRA,
          init: false,
          restarts: 0,
          running: true,
          image: '',
        };
        this.startedAt.set(uid, now());
      } catch (err) {
        const msg = (err as Error).message;
        this.events.record(
          pod,
          'Warning',
          'FailedCreatePodSandBox',
          `Failed to create pod sandbox: ${msg}`,
        );
        this.reportWaiting(pod, 'ContainerCreating', `failed to create the pod sandbox: ${msg}`);
        return;
      }
    }
    const sandboxDetail = sandbox ? await rt.inspect(sandbox.id) : undefined;
    if (!this.startedAt.has(uid) && sandboxDetail?.startedAt)
      this.startedAt.set(uid, sandboxDetail.startedAt);
    const podIP = sandboxDetail?.ip;
    let volumes: Map<string, string> | undefined;
    const ctx: SyncContext = {
      pod,
      policy: pod.spec.restartPolicy ?? 'Always',
      sandboxId: sandbox?.running ? sandbox.id : undefined,
      podIP,
      cs,
      finished,
      volumes: async () => (volumes ??= await this.config.volumes(pod)),
      probed: new Set(),
    };

    // Init containers, one at a time, each to success, before any app container.
    const initStatuses: ContainerStatus[] = [];
    let initialized = true;
    let initFailed = false;
    for (const spec of pod.spec.initContainers ?? []) {
      if (!initialized || initFailed) {
        initStatuses.push(this.waiting(spec, 'PodInitializing'));
        continue;
      }
      const s = await this.syncContainer(ctx, spec, true);
      initStatuses.push(s);
      const t = s.state.terminated as { exitCode: number } | undefined;
      if (t?.exitCode === 0) continue;
      initialized = false;
      if (t && ctx.policy === 'Never') initFailed = true;
    }
    const statuses: ContainerStatus[] = [];
    for (const spec of pod.spec.containers)
      statuses.push(
        initialized
          ? await this.syncContainer(ctx, spec, false)
          : this.waiting(spec, 'PodInitializing'),
      );
    // Probes of container instances that are gone stop with them.
    this.stopProbes(uid, ctx.probed);
    this.report(pod, statuses, initStatuses, { podIP, initialized, initFailed });
  }

  /** A pod whose containers all ended for good is not restarted (Never / OnFailure). */
  private isFinished(pod: Pod): boolean {
    const phase = this.phases.get(pod.metadata.uid!) ?? pod.status?.phase;
    return phase === 'Succeeded' || phase === 'Failed';
  }

  private waiting(spec: Container, reason: string, message?: string): ContainerStatus {
    return {
      name: spec.name,
      image: spec.image,
      ready: false,
      started: false,
      restartCount: 0,
      state: { waiting: { reason, ...(message ? { message } : {}) } },
    };
  }

  private async syncContainer(
    ctx: SyncContext,
    spec: Container,
    init: boolean,
  ): Promise<ContainerStatus> {
    const { pod, policy, cs } = ctx;
    const rt = this.opts.runtime;
    const uid = pod.metadata.uid!;
    const key = `${uid}/${spec.name}`;
    const field = `spec.${init ? 'initContainers' : 'containers'}{${spec.name}}`;
    const mine = cs
      .filter((c) => c.name === spec.name && c.init === init)
      .sort((a, b) => b.restarts - a.restarts);
    const latest = mine[0];
    // The current attempt and the one before it (for `baton logs --previous`) are kept.
    for (const old of mine.slice(2)) await rt.remove(old.id, 0);

    const start = async (restarts: number, last?: State): Promise<ContainerStatus> => {
      const base = { ...this.waiting(spec, 'ContainerCreating'), restartCount: restarts };
      if (ctx.sandboxId === undefined) return base;
      try {
        const launch = await this.config.launch(pod, spec, {
          init,
          restarts,
          podIP: ctx.podIP,
          hostIP: this.address,
          volumes: await ctx.volumes(),
        });
        const id = await rt.startContainer(launch, ctx.sandboxId);
        this.events.record(pod, 'Normal', 'Started', `Started container ${spec.name}`, field);
        const d = await rt.inspect(id);
        return this.containerStatus(ctx, spec, init, id, restarts, d, last);
      } catch (err) {
        const reason = err instanceof RuntimeError ? err.reason : 'CreateContainerError';
        const msg = (err as Error).message;
        const b = this.backoff.get(key);
        const pullBackOff = reason === 'ErrImagePull' && b !== undefined;
        if (!b || Date.now() >= b.until) this.delay(key);
        this.events.record(
          pod,
          'Warning',
          'Failed',
          reason === 'ErrImagePull'
            ? `Failed to pull image "${spec.image}": ${msg}`
            : `Error: ${msg}`,
          field,
        );
        return {
          ...base,
          state: { waiting: { reason: pullBackOff ? 'ImagePullBackOff' : reason, message: msg } },
          ...(last ? { lastState: last } : {}),
        };
      }
    };

    if (!latest) {
      if (ctx.finished) return this.waiting(spec, 'PodCompleted');
      const b = this.backoff.get(key);
      if (b && Date.now() < b.until) {
        const reported = this.lastWaiting(uid, spec.name, init);
        const reason =
          reported === 'ErrImagePull' || reported === 'ImagePullBackOff'
            ? 'ImagePullBackOff'
            : (reported ?? 'ContainerCreating');
        if (reason === 'ImagePullBackOff')
          this.events.record(
            pod,
            'Normal',
            'BackOff',
            `Back-off pulling image "${spec.image}"`,
            field,
          );
        return {
          ...this.waiting(spec, reason),
          state: {
            waiting: {
              reason,
              message:
                reason === 'ImagePullBackOff'
                  ? `Back-off pulling image "${spec.image}"`
                  : `back-off ${Math.round(b.delay / 1000)}s before retrying`,
            },
          },
        };
      }
      return start(0);
    }
    const d = await rt.inspect(latest.id);
    const status = this.containerStatus(ctx, spec, init, latest.id, latest.restarts, d, undefined);
    if (mine[1] && !status.lastState) {
      const prev = await rt.inspect(mine[1].id).catch(() => undefined);
      if (prev)
        status.lastState = this.containerStatus(
          ctx,
          spec,
          init,
          mine[1].id,
          0,
          prev,
          undefined,
        ).state;
    }
    if (d.running || ctx.finished) return status;
    const ranMs =
      d.startedAt && d.finishedAt ? Date.parse(d.finishedAt) - Date.parse(d.startedAt) : 0;
    if (ranMs > BACKOFF_RESET_MS) this.backoff.delete(key);
    const restart = init
      ? d.exitCode !== 0 && policy !== 'Never'
      : policy === 'Always' || (policy === 'OnFailure' && d.exitCode !== 0);
    if (!restart) return status;
    const b = this.backoff.get(key);
    if (b && Date.now() < b.until) {
      this.events.record(
        pod,
        'Warning',
        'BackOff',
        `Back-off restarting failed container ${spec.name} in pod ${pod.metadata.name}`,
        field,
      );
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
    }
    this.delay(key);
    this.log.info(
      {
        pod: `${pod.metadata.namespace}/${pod.metadata.name}`,
        container: spec.name,
        exitCode: d.exitCode,
      },
      'restarting container',
    );
    return start(latest.restarts + 1, status.state);
  }

  /** The waiting reason last reported for a container, if any. */
  private lastWaiting(uid: string, name: string, init: boolean): string | undefined {
    const prev = this.reported.get(uid);
    if (!prev) return undefined;
    const s = JSON.parse(prev) as {
      containerStatuses?: ContainerStatus[];
      initContainerStatuses?: ContainerStatus[];
    };
    const list = init ? s.initContainerStatuses : s.containerStatuses;
    return (list?.find((c) => c.name === name)?.state.waiting as { reason?: string } | undefined)
      ?.reason;
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

  /** The probes of a running app container, started the first time it is seen. */
  private probesFor(ctx: SyncContext, spec: Container, id: string): ContainerProbes | undefined {
    if (!spec.livenessProbe && !spec.readinessProbe && !spec.startupProbe) return undefined;
    ctx.probed.add(id);
    const had = this.probes.get(id);
    if (had) return had.probes;
    const ports = new Map<string, number>();
    for (const cp of spec.ports ?? []) if (cp.name) ports.set(cp.name, cp.containerPort);
    const { pod } = ctx;
    const field = `spec.containers{${spec.name}}`;
    const p = new ContainerProbes(
      spec,
      { ip: ctx.podIP ?? this.address, containerId: id, ports },
      this.opts.runtime,
      {
        changed: () => this.kick(),
        unhealthy: (kind, message) =>
          this.events.record(
            pod,
            'Warning',
            'Unhealthy',
            `${kind} probe failed: ${message}`,
            field,
          ),
        failed: (kind, message, graceSeconds) => {
          if (this.killing.has(id)) return;
          this.killing.add(id);
          this.events.record(
            pod,
            'Normal',
            'Killing',
            `Container ${spec.name} failed ${kind.toLowerCase()} probe, will be restarted`,
            field,
          );
          this.log.info(
            { pod: pod.metadata.name, container: spec.name, kind, message },
            'probe failed: killing',
          );
          this.probes.get(id)?.probes.stop();
          this.opts.runtime
            .stop(id, graceSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30)
            .catch((err) => this.log.warn({ err }, 'killing container failed'))
            .finally(() => {
              this.killing.delete(id);
              this.kick();
            });
        },
      },
    );
    this.probes.set(id, { uid: pod.metadata.uid!, probes: p });
    p.start();
    return p;
  }

  private containerStatus(
    ctx: SyncContext,
    spec: Container,
    init: boolean,
    id: string,
    restarts: number,
    d: ContainerDetail,
    last: State | undefined,
  ): ContainerStatus {
    const state: State = d.running
      ? { running: { startedAt: d.startedAt } }
      : {
          terminated: {
            exitCode: d.exitCode,
            reason: d.oomKilled ? 'OOMKilled' : d.exitCode === 0 ? 'Completed' : 'Error',
            ...(d.error ? { message: d.error } : {}),
            startedAt: d.startedAt,
            finishedAt: d.finishedAt,
            containerID: `${this.opts.runtime.name}://${id}`,
          },
        };
    let ready = init ? !d.running && d.exitCode === 0 : d.running;
    let started = d.running;
    if (!init && d.running) {
      const p = this.probesFor(ctx, spec, id);
      if (p) {
        ready = p.ready && !this.killing.has(id);
        started = p.started;
      }
      if (this.killing.has(id)) ready = false;
    }
    return {
      name: spec.name,
      image: spec.image,
      ready,
      started,
      restartCount: restarts,
      containerID: `${this.opts.runtime.name}://${id}`,
      state,
      ...(last ? { lastState: last } : {}),
    };
  }

  /** A pod that cannot start yet (no network, no sandbox): Pending with the reason on every container. */
  private reportWaiting(pod: Pod, reason: string, message: string): void {
    this.report(
      pod,
      pod.spec.containers.map((c) => this.waiting(c, reason, message)),
      (pod.spec.initContainers ?? []).map((c) => this.waiting(c, reason, message)),
      { podIP: undefined, initialized: !(pod.spec.initContainers ?? []).length, initFailed: false },
    );
  }

  private report(
    pod: Pod,
    statuses: ContainerStatus[],
    initStatuses: ContainerStatus[],
    o: { podIP: string | undefined; initialized: boolean; initFailed: boolean },
  ): void {
    const uid = pod.metadata.uid!;
    const running = statuses.filter((s) => s.state.running !== undefined).length;
    const terminated = statuses.map((s) => s.state.terminated as { exitCode: number } | undefined);
    const policy = pod.spec.restartPolicy ?? 'Always';
    let phase = 'Pending';
    if (o.initFailed) phase = 'Failed';
    else if (!o.initialized) phase = 'Pending';
    else if (terminated.every((t) => t !== undefined) && policy !== 'Always') {
      if (terminated.every((t) => t!.exitCode === 0)) phase = 'Succeeded';
      else if (policy === 'Never') phase = 'Failed';
      else phase = 'Running';
    } else if (running > 0 || statuses.some((s) => s.restartCount > 0)) phase = 'Running';
    const unready = statuses.filter((s) => !s.ready).map((s) => s.name);
    const ready = unready.length === 0 && phase === 'Running';
    const at = now();
    const prev = this.reported.get(uid);
    const prevConditions = prev
      ? (
          JSON.parse(prev) as {
            conditions: { type: string; status: string; lastTransitionTime: string }[];
          }
        ).conditions
      : [];
    const cond = (type: string, ok: boolean, reason?: string, message?: string) => {
      const status = ok ? 'True' : 'False';
      const was = prevConditions.find((c) => c.type === type);
      return {
        type,
        status,
        lastTransitionTime: was?.status === status ? was.lastTransitionTime : at,
        ...(!ok && reason ? { reason, message } : {}),
      };
    };
    const notReady = `containers with unready status: [${unready.join(' ')}]`;
    const uninit = initStatuses.filter((s) => !s.ready).map((s) => s.name);
    const status = {
      phase,
      hostIP: this.address,
      hostIPs: [{ ip: this.address }],
      ...(o.podIP ? { podIP: o.podIP, podIPs: [{ ip: o.podIP }] } : {}),
      startTime: this.startedAt.get(uid) ?? at,
      conditions: [
        cond('PodScheduled', true),
        cond(
          'Initialized',
          o.initialized,
          'ContainersNotInitialized',
          `containers with incomplete status: [${uninit.join(' ')}]`,
        ),
        cond('ContainersReady', ready, 'ContainersNotReady', notReady),
        cond('Ready', ready, 'ContainersNotReady', notReady),
      ],
      ...(initStatuses.length ? { initContainerStatuses: initStatuses } : {}),
      containerStatuses: statuses,
    };
    this.phases.set(uid, phase);
    const json = JSON.stringify(status);
    if (json === prev) return;
    this.reported.set(uid, json);
    this.session.reportStatus(pod, status);
  }
}

interface SyncContext {
  pod: Pod;
  policy: string;
  /** The running sandbox, or undefined when none (the pod finished). */
  sandboxId: string | undefined;
  podIP: string | undefined;
  cs: RuntimeContainer[];
  finished: boolean;
  /** The pod's volumes as host paths, prepared on first use in a sync. */
  volumes(): Promise<Map<string, string>>;
  /** Containers whose probes this sync looked at (the others' are stopped). */
  probed: Set<string>;
}
