/**
 * Pods on Docker, as Kubernetes runs them: an infra ("pause") container
 * holds the pod's network and IPC namespaces, and every app container joins
 * them, so they share one IP and reach each other on localhost. Every
 * container is labelled with its pod, so a restarted daemon finds (adopts)
 * what is already running and removes what is no longer assigned.
 */
import Docker from 'dockerode';
import { PassThrough, Readable } from 'node:stream';
import {
  ContainerDetail,
  ContainerLaunch,
  ContainerUsageSample,
  ExecSession,
  INFRA,
  LABEL,
  LogOptions,
  PodRef,
  Runtime,
  containerLabels,
  RuntimeContainer,
  RuntimeError,
  SandboxSpec,
} from './runtime';

export const PAUSE_IMAGE = 'baton/pause:latest';

function containerName(pod: PodRef, name: string, restarts: number): string {
  const clean = (s: string) => s.replace(/[^a-zA-Z0-9_.-]/g, '-');
  return `baton_${clean(name)}_${clean(pod.name)}_${clean(pod.namespace)}_${pod.uid.slice(0, 8)}_${restarts}`;
}

/** Docker's first line of an error: the rest is a stack or a repeat. */
const firstLine = (err: unknown) => (err as Error).message.split('\n')[0];

/**
 * Splits Docker's multiplexed stdout/stderr framing (8-byte headers: stream
 * type, 3 zero bytes, big-endian length) held in one buffer.
 */
export function demuxBuffer(buf: Buffer): { stdout: Buffer; stderr: Buffer; all: Buffer } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const all: Buffer[] = [];
  for (let i = 0; i + 8 <= buf.length;) {
    const len = buf.readUInt32BE(i + 4);
    const part = buf.subarray(i + 8, i + 8 + len);
    (buf[i] === 2 ? err : out).push(part);
    all.push(part);
    i += 8 + len;
  }
  return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), all: Buffer.concat(all) };
}

/**
 * A container's working set as the kubelet (cAdvisor) and `docker stats`
 * count it: memory usage less the inactive page cache, which the kernel
 * would reclaim first. cgroup v1 reports the hierarchy's in
 * total_inactive_file, v2 in inactive_file.
 */
export function workingSetBytes(memory: {
  usage?: number;
  stats?: Record<string, number | undefined>;
}): number {
  const usage = memory.usage ?? 0;
  const inactive = memory.stats?.total_inactive_file ?? memory.stats?.inactive_file ?? 0;
  return inactive < usage ? usage - inactive : usage;
}

/** The usage sample in one Docker stats answer (`at` from its "read" time, else `fallbackAt`). */
export function dockerUsage(
  stats: Pick<Docker.ContainerStats, 'read' | 'cpu_stats' | 'memory_stats'>,
  fallbackAt: number,
): { cpuNanos: number; memoryBytes: number; at: number } {
  const read = Date.parse(stats.read);
  return {
    cpuNanos: stats.cpu_stats?.cpu_usage?.total_usage ?? 0,
    memoryBytes: workingSetBytes(
      (stats.memory_stats ?? {}) as Parameters<typeof workingSetBytes>[0],
    ),
    // "0001-01-01T00:00:00Z" when Docker has not read the cgroup.
    at: Number.isFinite(read) && read > 0 ? read : fallbackAt,
  };
}

export class DockerRuntime implements Runtime {
  readonly name = 'docker';
  /** Images known to be present. */
  private readonly images = new Set<string>();
  /** The Docker network sandboxes join: the node's own (on its pod CIDR) once made. */
  private network = 'bridge';

  constructor(
    private readonly nodeName: string,
    readonly docker = new Docker(),
  ) {}

  /** Whether a Docker daemon answers. */
  async available(): Promise<boolean> {
    try {
      await this.docker.ping();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Makes (or finds) this node's bridge network on `cidr`, so pod IPs come
   * from the node's pod CIDR and are unique across the cluster. A network
   * of that name on another subnet (the CIDR changed) is replaced once no
   * container uses it.
   */
  async ensureNetwork(cidr: string): Promise<string> {
    const name = `baton-${this.nodeName}`.slice(0, 60);
    const [base, bits] = cidr.split('/');
    const gateway = base.replace(/\.\d+$/, (m) => `.${Number(m.slice(1)) + 1}`);
    try {
      const n = (await this.docker.getNetwork(name).inspect()) as {
        IPAM?: { Config?: { Subnet?: string }[] };
      };
      if (n.IPAM?.Config?.some((c) => c.Subnet === cidr)) return (this.network = name);
      await this.docker.getNetwork(name).remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
    const create = () =>
      this.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        IPAM: { Driver: 'default', Config: [{ Subnet: `${base}/${bits}`, Gateway: gateway }] },
        Labels: { [LABEL.node]: this.nodeName },
        Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'true' },
      });
    try {
      await create();
    } catch (err) {
      // A network another Baton node left behind on this host (a node gone, a cluster
      // torn down) may hold the subnet: an unused one is stale and goes.
      if (!/overlap/i.test((err as Error).message) || !(await this.removeStaleNetworks(cidr)))
        throw err;
      await create();
    }
    return (this.network = name);
  }

  /** Removes Baton's networks on `cidr` that no container uses; whether any went. */
  private async removeStaleNetworks(cidr: string): Promise<boolean> {
    const nets = await this.docker.listNetworks({ filters: { label: [LABEL.node] } });
    let removed = false;
    for (const n of nets) {
      if (!n.IPAM?.Config?.some((c) => c.Subnet === cidr)) continue;
      const full = (await this.docker.getNetwork(n.Id).inspect()) as {
        Containers?: Record<string, unknown>;
      };
      if (Object.keys(full.Containers ?? {}).length > 0) continue;
      await this.docker.getNetwork(n.Id).remove();
      removed = true;
    }
    return removed;
  }

  /** Removes this node's network (when the node goes away for good); quiet when absent. */
  async removeNodeResources(): Promise<void> {
    const name = `baton-${this.nodeName}`.slice(0, 60);
    try {
      await this.docker.getNetwork(name).remove();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }

  async list(podUid?: string): Promise<RuntimeContainer[]> {
    const label = [`${LABEL.node}=${this.nodeName}`];
    if (podUid !== undefined) label.push(`${LABEL.uid}=${podUid}`);
    const all = await this.docker.listContainers({ all: true, filters: { label } });
    return all.map((c) => ({
      id: c.Id,
      podUid: c.Labels[LABEL.uid] ?? '',
      namespace: c.Labels[LABEL.namespace] ?? '',
      podName: c.Labels[LABEL.pod] ?? '',
      name: c.Labels[LABEL.container] ?? '',
      init: c.Labels[LABEL.kind] === 'init',
      restarts: Number(c.Labels[LABEL.restarts] ?? 0),
      running: c.State === 'running',
      image: c.Image,
    }));
  }

  async inspect(id: string): Promise<ContainerDetail> {
    const i = await this.docker.getContainer(id).inspect();
    const zero = (t: string) => (t.startsWith('0001-') ? undefined : t.replace(/\.\d+Z$/, 'Z'));
    return {
      running: i.State.Running,
      exitCode: i.State.ExitCode,
      startedAt: zero(i.State.StartedAt),
      finishedAt: zero(i.State.FinishedAt),
      oomKilled: i.State.OOMKilled,
      error: i.State.Error || undefined,
      ip: Object.values(i.NetworkSettings.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress,
    };
  }

  /** Makes sure `image` is present, pulling it as the policy says. */
  async ensureImage(image: string, policy: string | undefined): Promise<void> {
    // Seen present before: no need to ask (a create that finds it gone forgets it).
    if (policy !== 'Always' && this.images.has(image)) return;
    let present = true;
    try {
      await this.docker.getImage(image).inspect();
    } catch {
      present = false;
    }
    if (present) this.images.add(image);
    if (present && policy !== 'Always') return;
    if (!present && policy === 'Never')
      throw new RuntimeError(
        'ErrImageNeverPull',
        `Container image "${image}" is not present with pull policy of Never`,
      );
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) =>
          err ? reject(err) : resolve(),
        ),
      );
      this.images.add(image);
    } catch (err) {
      if (present) return; // Always, but the registry is unreachable: use what we have
      throw new RuntimeError('ErrImagePull', `failed to pull image "${image}": ${firstLine(err)}`);
    }
  }

  async startSandbox(spec: SandboxSpec): Promise<string> {
    await this.ensureImage(PAUSE_IMAGE, 'IfNotPresent');
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostPort: string; HostIp?: string }[]> = {};
    for (const p of spec.hostPorts) {
      const key = `${p.containerPort}/${p.protocol.toLowerCase()}`;
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostPort: String(p.hostPort), HostIp: p.hostIP });
    }
    let id: string;
    try {
      const c = await this.docker.createContainer({
        name: containerName(spec.pod, INFRA, 0),
        Image: PAUSE_IMAGE,
        Hostname: spec.hostname.slice(0, 63),
        Labels: containerLabels(this.nodeName, spec.pod, INFRA, 0),
        ExposedPorts: exposed,
        HostConfig: {
          NetworkMode: this.network,
          IpcMode: 'shareable',
          RestartPolicy: { Name: 'no' },
          PortBindings: bindings,
          ...(spec.dns
            ? { Dns: spec.dns.servers, DnsSearch: spec.dns.searches, DnsOptions: spec.dns.options }
            : {}),
        },
      });
      id = c.id;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) this.images.delete(PAUSE_IMAGE);
      throw new RuntimeError('CreateContainerError', `pod sandbox: ${firstLine(err)}`);
    }
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      await this.remove(id, 0);
      throw new RuntimeError('RunContainerError', `pod sandbox: ${firstLine(err)}`);
    }
    return id;
  }

  async startContainer(spec: ContainerLaunch, sandboxId: string): Promise<string> {
    await this.ensureImage(spec.image, spec.imagePullPolicy);
    let id: string;
    try {
      const c = await this.docker.createContainer({
        name: containerName(spec.pod, spec.name, spec.restarts),
        Image: spec.image,
        Entrypoint: spec.command?.length ? spec.command : undefined,
        Cmd: spec.args?.length ? spec.args : undefined,
        Env: spec.env.map(([k, v]) => `${k}=${v}`),
        WorkingDir: spec.workingDir,
        Labels: containerLabels(this.nodeName, spec.pod, spec.name, spec.restarts, spec.init),
        Tty: spec.tty ?? false,
        OpenStdin: spec.stdin ?? false,
        HostConfig: {
          NetworkMode: `container:${sandboxId}`,
          IpcMode: `container:${sandboxId}`,
          RestartPolicy: { Name: 'no' },
          Binds: spec.mounts.map(
            (m) => `${m.hostPath}:${m.containerPath}${m.readOnly ? ':ro' : ''}`,
          ),
          Memory: spec.memoryBytes,
          // Docker refuses a limit without swap headroom under 6 MB; keep swap off like Kubernetes.
          MemorySwap: spec.memoryBytes,
          NanoCpus: spec.nanoCpus,
          CpuShares: spec.cpuShares,
        },
      });
      id = c.id;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) this.images.delete(spec.image);
      throw new RuntimeError('CreateContainerError', firstLine(err));
    }
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      throw new RuntimeError('RunContainerError', firstLine(err));
    }
    return id;
  }

  async stop(id: string, graceSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.round(graceSeconds)) });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 304 && code !== 404) throw err; // 304: already stopped
    }
  }

  async remove(id: string, graceSeconds: number): Promise<void> {
    await this.stop(id, graceSeconds);
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      const code = (err as { statusCode?: number }).statusCode;
      if (code !== 404 && code !== 409) throw err; // 409: removal already in progress
    }
  }

  async logs(id: string, opts: LogOptions): Promise<Readable> {
    const c = this.docker.getContainer(id);
    const base = {
      stdout: true,
      stderr: true,
      ...(opts.tail !== undefined && opts.tail >= 0 ? { tail: opts.tail } : {}),
    };
    if (!opts.follow) {
      const buf = (await c.logs({ ...base, follow: false })) as unknown as Buffer;
      const i = await c.inspect();
      return Readable.from([i.Config.Tty ? buf : demuxBuffer(buf).all]);
    }
    const stream = (await c.logs({ ...base, follow: true })) as unknown as Readable;
    const out = new PassThrough();
    this.docker.modem.demuxStream(stream, out, out);
    stream.on('end', () => out.end());
    stream.on('error', (err) => out.destroy(err));
    out.on('close', () => stream.destroy());
    opts.signal?.addEventListener('abort', () => out.end(), { once: true });
    return out;
  }

  /**
   * One stats answer per running container, all at once. `one-shot` skips
   * the second read Docker would otherwise wait for (precpu_stats): rates
   * come from two of our own samples, as for the exec runtime.
   */
  async stats(podUids?: string[]): Promise<ContainerUsageSample[]> {
    const wanted = podUids && new Set(podUids);
    const running = (await this.list()).filter(
      (c) => c.running && c.name !== INFRA && (!wanted || wanted.has(c.podUid)),
    );
    const samples = await Promise.all(
      running.map(async ({ id, podUid, namespace, podName, name }) => {
        try {
          const s = await this.docker.getContainer(id).stats({ stream: false, 'one-shot': true });
          return { id, podUid, namespace, podName, name, ...dockerUsage(s, Date.now()) };
        } catch {
          return undefined; // ended since it was listed
        }
      }),
    );
    return samples.filter((s) => s !== undefined);
  }

  async exec(id: string, command: string[], opts: { stdin: boolean }): Promise<ExecSession> {
    const c = this.docker.getContainer(id);
    const e = await c.exec({
      Cmd: command,
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: opts.stdin,
    });
    const stream = await e.start({ hijack: true, stdin: opts.stdin });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.docker.modem.demuxStream(stream, stdout, stderr);
    const exitCode = new Promise<number>((resolve, reject) => {
      let ended = false;
      const done = () => {
        if (ended) return;
        ended = true;
        stdout.end();
        stderr.end();
        e.inspect().then(
          (r) => resolve(r.ExitCode ?? -1),
          (err: Error) => reject(err),
        );
      };
      stream.once('end', done);
      stream.once('close', done);
      stream.once('error', reject);
    });
    exitCode.catch(() => undefined);
    return {
      stdout,
      stderr,
      // Ending our stdin half-closes the hijacked connection, as `docker exec -i` does.
      stdin: opts.stdin ? stream : undefined,
      exitCode,
      // Docker has no API to kill an exec'd process; closing the stream detaches from it.
      kill: () => stream.destroy(),
    };
  }
}
