/**
 * What the node agent needs from a container runtime, so Docker and the
 * host-process (`exec`) runtime are interchangeable. A pod is a sandbox
 * (Docker: the infra container holding the network namespace; exec: a
 * record of the pod) plus its containers. Everything a runtime makes is
 * findable again by `list()`, so a restarted daemon adopts it.
 */
import type { Readable, Writable } from 'node:stream';

/** Labels on every container Baton makes (Docker labels; exec runtime metadata). */
export const LABEL = {
  node: 'baton.node',
  uid: 'baton.pod.uid',
  namespace: 'baton.pod.namespace',
  pod: 'baton.pod.name',
  /** The container's name in the pod spec; "POD" for the sandbox. */
  container: 'baton.container',
  /** How many times this container was restarted before this one. */
  restarts: 'baton.restarts',
  /** "init" for init containers, "app" otherwise. */
  kind: 'baton.container.kind',
} as const;

/** The labels that tie a container (or a sandbox, `name` INFRA) to its node and pod. */
export function containerLabels(
  nodeName: string,
  pod: PodRef,
  name: string,
  restarts: number,
  init = false,
): Record<string, string> {
  return {
    [LABEL.node]: nodeName,
    [LABEL.uid]: pod.uid,
    [LABEL.namespace]: pod.namespace,
    [LABEL.pod]: pod.name,
    [LABEL.container]: name,
    [LABEL.restarts]: String(restarts),
    [LABEL.kind]: init ? 'init' : 'app',
  };
}

/** The sandbox's name among a pod's containers. */
export const INFRA = 'POD';

/** Which pod a runtime object belongs to. */
export interface PodRef {
  uid: string;
  namespace: string;
  name: string;
}

/** One container (or sandbox) of a pod, as listed. */
export interface RuntimeContainer {
  id: string;
  podUid: string;
  namespace: string;
  podName: string;
  /** Name in the pod spec, or INFRA. */
  name: string;
  init: boolean;
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
  /** Killed for exceeding its memory limit. */
  oomKilled: boolean;
  error?: string;
  /** The pod's IP (from the sandbox). */
  ip?: string;
}

/** A pull or start failure whose reason becomes the container's waiting reason. */
export class RuntimeError extends Error {
  constructor(
    readonly reason:
      | 'ErrImagePull'
      | 'ErrImageNeverPull'
      | 'CreateContainerError'
      | 'CreateContainerConfigError'
      | 'RunContainerError',
    message: string,
  ) {
    super(message);
  }
}

export interface SandboxSpec {
  pod: PodRef;
  hostname: string;
  /** The pod's resolv.conf; the host's when absent. */
  dns?: { servers: string[]; searches: string[]; options: string[] };
  /** Ports published on the host (containers' hostPort). */
  hostPorts: { containerPort: number; hostPort: number; protocol: string; hostIP?: string }[];
}

/** A container spec with everything resolved: env values, volume paths on the host, limits in runtime units. */
export interface ContainerLaunch {
  pod: PodRef;
  name: string;
  init: boolean;
  restarts: number;
  image: string;
  imagePullPolicy?: string;
  command?: string[];
  args?: string[];
  /** Resolved, in order (later entries win, as in Kubernetes). */
  env: [string, string][];
  workingDir?: string;
  mounts: { hostPath: string; containerPath: string; readOnly: boolean }[];
  memoryBytes?: number;
  nanoCpus?: number;
  cpuShares?: number;
  tty?: boolean;
  stdin?: boolean;
}

/** A command running inside a container. */
export interface ExecSession {
  stdout: Readable;
  stderr: Readable;
  /** Present when asked for. */
  stdin?: Writable;
  /** Resolves with the command's exit code once it ended. */
  exitCode: Promise<number>;
  /** Ends the command (and its streams) early. */
  kill(): void;
}

export interface LogOptions {
  follow: boolean;
  /** Only the last N lines (all when absent). */
  tail?: number;
  signal?: AbortSignal;
}

/**
 * One running container's usage at one moment, as `Runtime.stats()`
 * samples it: cumulative counters, so a rate needs two samples.
 */
export interface ContainerUsageSample extends Pick<
  RuntimeContainer,
  'id' | 'podUid' | 'namespace' | 'podName' | 'name'
> {
  /** CPU time used since the container started, in nanoseconds. */
  cpuNanos: number;
  /** Memory it holds that the kernel could not reclaim (the working set), in bytes. */
  memoryBytes: number;
  /** When the sample was taken, ms since the epoch. */
  at: number;
}

export interface Runtime {
  readonly name: 'docker' | 'exec';
  /** Every container and sandbox this node made (of one pod when `podUid` is given), running or not. */
  list(podUid?: string): Promise<RuntimeContainer[]>;
  inspect(id: string): Promise<ContainerDetail>;
  /** Starts the pod's sandbox; returns its id. */
  startSandbox(spec: SandboxSpec): Promise<string>;
  /** Pulls the image as the policy says, then creates and starts the container; returns its id. */
  startContainer(spec: ContainerLaunch, sandboxId: string): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceSeconds`; the container stays listed (exited). */
  stop(id: string, graceSeconds: number): Promise<void>;
  /** Stops (with `graceSeconds`) and forgets a container or sandbox. */
  remove(id: string, graceSeconds: number): Promise<void>;
  /** The container's output (stdout and stderr, interleaved as written). */
  logs(id: string, opts: LogOptions): Promise<Readable>;
  /** Runs `command` inside the running container. */
  exec(id: string, command: string[], opts: { stdin: boolean }): Promise<ExecSession>;
  /**
   * A usage sample of every running app and init container (of these pods
   * when `podUids` is given); sandboxes are left out. Optional: a runtime
   * that cannot measure answers `baton top` with UNIMPLEMENTED.
   */
  stats?(podUids?: string[]): Promise<ContainerUsageSample[]>;
  /** Removes what the runtime made for the node itself (Docker: its pod network), once its pods are gone. */
  removeNodeResources?(): Promise<void>;
}

/** Runs `command` in a container and collects its exit code and (truncated) output, giving up after `timeoutMs`. */
export async function execOnce(
  runtime: Runtime,
  id: string,
  command: string[],
  timeoutMs: number,
): Promise<{ exitCode: number; output: string; timedOut: boolean }> {
  const s = await runtime.exec(id, command, { stdin: false });
  let output = '';
  const keep = (d: Buffer) => {
    if (output.length < 10_240) output += d.toString();
  };
  s.stdout.on('data', keep);
  s.stderr.on('data', keep);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>(
    (r) => (timer = setTimeout(() => r('timeout'), timeoutMs)),
  );
  const exit = await Promise.race([s.exitCode, timedOut]);
  clearTimeout(timer);
  if (exit === 'timeout') {
    s.kill();
    return { exitCode: -1, output, timedOut: true };
  }
  return { exitCode: exit, output, timedOut: false };
}
