/**
 * Pods on Docker, as Kubernetes runs them: an infra ("pause") container
 * holds the pod's network namespace, and every app container joins it, so
 * they share one IP and reach each other on localhost. Every container is
 * labelled with its pod, so a restarted daemon finds (adopts) what is
 * already running and removes what is no longer assigned.
 */
import Docker from 'dockerode';
import type { Container, Pod } from '../api/schema';
import { parseQuantity } from '../api/schema/quantity';

export const PAUSE_IMAGE = 'baton/pause:latest';

/** Labels on every container Baton makes. */
export const LABEL = {
  node: 'baton.node',
  uid: 'baton.pod.uid',
  namespace: 'baton.pod.namespace',
  pod: 'baton.pod.name',
  /** The container's name in the pod spec; "POD" for the infra container. */
  container: 'baton.container',
  /** How many times this container was restarted before this one. */
  restarts: 'baton.restarts',
} as const;

export const INFRA = 'POD';

/** One Docker container of a pod, as listed. */
export interface RuntimeContainer {
  id: string;
  podUid: string;
  namespace: string;
  podName: string;
  /** Name in the pod spec, or INFRA. */
  name: string;
  restarts: number;
  running: boolean;
  image: string;
}

/** What inspecting a container says about its state. */
export interface ContainerDetail {
  running: boolean;
  exitCode: number;
  startedAt?: string;
  finishedAt?: string;
  /** Docker's OOM flag. */
  oomKilled: boolean;
  error?: string;
  ip?: string;
}

/** A pull or start failure whose reason becomes the container's waiting reason. */
export class RuntimeError extends Error {
  constructor(
    readonly reason:
      'ErrImagePull' | 'ErrImageNeverPull' | 'CreateContainerError' | 'RunContainerError',
    message: string,
  ) {
    super(message);
  }
}

function containerName(pod: Pod, name: string, restarts: number): string {
  const clean = (s: string) => s.replace(/[^a-zA-Z0-9_.-]/g, '-');
  return `baton_${clean(name)}_${clean(pod.metadata.name)}_${clean(pod.metadata.namespace ?? 'default')}_${pod.metadata.uid!.slice(0, 8)}_${restarts}`;
}

/** A cpu quantity ("250m", "2") in Docker's NanoCpus; 0 when absent. */
function nanoCpus(q: string | number | undefined): number {
  return q === undefined ? 0 : Math.round(parseQuantity(q) * 1e9);
}

export class DockerRuntime {
  readonly name = 'docker';

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

  /** Every container this node made, running or not. */
  async list(): Promise<RuntimeContainer[]> {
    const all = await this.docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.node}=${this.nodeName}`] },
    });
    return all.map((c) => ({
      id: c.Id,
      podUid: c.Labels[LABEL.uid] ?? '',
      namespace: c.Labels[LABEL.namespace] ?? '',
      podName: c.Labels[LABEL.pod] ?? '',
      name: c.Labels[LABEL.container] ?? '',
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
    let present = true;
    try {
      await this.docker.getImage(image).inspect();
    } catch {
      present = false;
    }
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
    } catch (err) {
      if (present) return; // Always, but the registry is unreachable: use what we have
      throw new RuntimeError(
        'ErrImagePull',
        `failed to pull image "${image}": ${(err as Error).message.split('\n')[0]}`,
      );
    }
  }

  private labels(pod: Pod, name: string, restarts: number): Record<string, string> {
    return {
      [LABEL.node]: this.nodeName,
      [LABEL.uid]: pod.metadata.uid!,
      [LABEL.namespace]: pod.metadata.namespace ?? 'default',
      [LABEL.pod]: pod.metadata.name,
      [LABEL.container]: name,
      [LABEL.restarts]: String(restarts),
    };
  }

  /** Starts the pod's infra container; returns its id. */
  async startSandbox(pod: Pod): Promise<string> {
    await this.ensureImage(PAUSE_IMAGE, 'IfNotPresent');
    const c = await this.docker.createContainer({
      name: containerName(pod, INFRA, 0),
      Image: PAUSE_IMAGE,
      Hostname: pod.metadata.name.slice(0, 63),
      Labels: this.labels(pod, INFRA, 0),
      HostConfig: { NetworkMode: 'bridge', IpcMode: 'shareable', RestartPolicy: { Name: 'no' } },
    });
    await c.start();
    return c.id;
  }

  /** Creates and starts one app container inside the pod's sandbox. */
  async startContainer(
    pod: Pod,
    spec: Container,
    sandboxId: string,
    restarts: number,
  ): Promise<string> {
    await this.ensureImage(spec.image, spec.imagePullPolicy);
    const limits = spec.resources?.limits ?? {};
    const requests = spec.resources?.requests ?? {};
    let id: string;
    try {
      const c = await this.docker.createContainer({
        name: containerName(pod, spec.name, restarts),
        Image: spec.image,
        Entrypoint: spec.command,
        Cmd: spec.args,
        Env: (spec.env ?? [])
          .filter((e) => e.value !== undefined)
          .map((e) => `${e.name}=${e.value}`),
        WorkingDir: spec.workingDir,
        Labels: this.labels(pod, spec.name, restarts),
        HostConfig: {
          NetworkMode: `container:${sandboxId}`,
          IpcMode: `container:${sandboxId}`,
          RestartPolicy: { Name: 'no' },
          Memory: limits.memory !== undefined ? parseQuantity(limits.memory) : undefined,
          NanoCpus: nanoCpus(limits.cpu) || undefined,
          CpuShares:
            requests.cpu !== undefined
              ? Math.max(2, Math.round(parseQuantity(requests.cpu) * 1024))
              : undefined,
        },
      });
      id = c.id;
    } catch (err) {
      throw new RuntimeError('CreateContainerError', (err as Error).message.split('\n')[0]);
    }
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      throw new RuntimeError('RunContainerError', (err as Error).message.split('\n')[0]);
    }
    return id;
  }

  /** Stops a container (SIGTERM, then SIGKILL after `graceSeconds`) and removes it. */
  async remove(id: string, graceSeconds: number): Promise<void> {
    const c = this.docker.getContainer(id);
    try {
      await c.stop({ t: graceSeconds });
    } catch {
      // already stopped, or gone
    }
    try {
      await c.remove({ force: true, v: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
}
