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
    await this.docker.createNetwork({
      Name: name,
      Driver: 'bridge',
      CheckDuplicate: true,
      IPAM: { Driver: 'default', Config: [{ Subnet: `${base}/${bits}`, Gateway: gateway }] },
      Labels: { [LABEL.node]: this.nodeName },
      Options: { 'com.docker.network.bridge.enable_ip_masquerade': 'true' },
    });
    return (this.network = name);
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
