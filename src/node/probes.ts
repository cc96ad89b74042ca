/**
 * Container probes, as the kubelet runs them: startup first (liveness and
 * readiness wait until it succeeds), then liveness (failing
 * `failureThreshold` times in a row gets the container killed and restarted
 * by its restart policy) and readiness (feeds the container's `ready` and
 * so the pod's Ready condition, after `successThreshold` successes in a
 * row). Each is an HTTP GET (2xx/3xx), a TCP connect, or a command whose
 * exit code is 0, with its own delay, period and timeout.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Container } from '../api/schema';
import { execOnce, Runtime } from './runtime';

type Probe = NonNullable<Container['livenessProbe']>;
export type ProbeKind = 'Startup' | 'Liveness' | 'Readiness';

export interface ProbeResult {
  ok: boolean;
  message: string;
}

/** Where a probe goes: the pod's IP, the container (for exec), its named ports. */
export interface ProbeTarget {
  ip: string;
  containerId: string;
  ports: ReadonlyMap<string, number>;
}

/** The probe's port as a number, or the failure to report when a named port is unknown. */
function resolvePort(port: number | string, target: ProbeTarget): number | ProbeResult {
  const n = typeof port === 'number' ? port : target.ports.get(port);
  return n ?? { ok: false, message: `port "${port}" is not a named port of the container` };
}

function httpProbe(p: NonNullable<Probe['httpGet']>, t: ProbeTarget, timeoutMs: number) {
  return new Promise<ProbeResult>((resolve) => {
    const port = resolvePort(p.port, t);
    if (typeof port !== 'number') return resolve(port);
    const host = p.host ?? t.ip;
    const path = p.path ?? '/';
    const url = `${(p.scheme ?? 'HTTP').toLowerCase()}://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
    const headers: Record<string, string> = { 'User-Agent': 'baton-probe/1.0', Accept: '*/*' };
    for (const h of p.httpHeaders ?? []) headers[h.name] = h.value;
    const lib = p.scheme === 'HTTPS' ? https : http;
    const req = lib.get(
      url,
      { headers, timeout: timeoutMs, rejectUnauthorized: false, agent: false },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve(
          code >= 200 && code < 400
            ? { ok: true, message: `HTTP probe succeeded with statuscode: ${code}` }
            : { ok: false, message: `HTTP probe failed with statuscode: ${code}` },
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`Get "${url}": context deadline exceeded`)));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({
        ok: false,
        message: err.message.startsWith('Get ')
          ? err.message
          : `Get "${url}": dial tcp ${host}:${port}: connect: ${describeErrno(err)}`,
      }),
    );
  });
}

function describeErrno(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'EHOSTUNREACH':
      return 'no route to host';
    case 'ETIMEDOUT':
      return 'i/o timeout';
    default:
      return err.message;
  }
}

function tcpProbe(p: NonNullable<Probe['tcpSocket']>, t: ProbeTarget, timeoutMs: number) {
  return new Promise<ProbeResult>((resolve) => {
    const port = resolvePort(p.port, t);
    if (typeof port !== 'number') return resolve(port);
    const host = p.host ?? t.ip;
    const s = net.connect({ host, port, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve({ ok: true, message: `tcp ${host}:${port} connected` });
    });
    s.once('timeout', () => {
      s.destroy();
      resolve({ ok: false, message: `dial tcp ${host}:${port}: i/o timeout` });
    });
    s.once('error', (err: NodeJS.ErrnoException) =>
      resolve({ ok: false, message: `dial tcp ${host}:${port}: connect: ${describeErrno(err)}` }),
    );
  });
}

/** Runs one probe once. */
export async function runProbe(
  runtime: Runtime,
  p: Probe,
  target: ProbeTarget,
): Promise<ProbeResult> {
  const timeoutMs = (p.timeoutSeconds ?? 1) * 1000;
  if (p.httpGet) return httpProbe(p.httpGet, target, timeoutMs);
  if (p.tcpSocket) return tcpProbe(p.tcpSocket, target, timeoutMs);
  if (p.exec) {
    try {
      const r = await execOnce(runtime, target.containerId, p.exec.command ?? [], timeoutMs);
      if (r.timedOut)
        return { ok: false, message: `command timed out after ${p.timeoutSeconds ?? 1}s` };
      return r.exitCode === 0
        ? { ok: true, message: r.output }
        : {
            ok: false,
            message: `command ${JSON.stringify(p.exec.command)} exited with ${r.exitCode}: ${r.output.trim().slice(0, 200)}`,
          };
    } catch (err) {
      return { ok: false, message: `exec failed: ${(err as Error).message.split('\n')[0]}` };
    }
  }
  return { ok: true, message: 'no handler (grpc probes are not implemented)' };
}

export interface ProbeEvents {
  /** `started` or `ready` changed. */
  changed(): void;
  /** One failed attempt (an Unhealthy event). */
  unhealthy(kind: ProbeKind, message: string): void;
  /** Liveness or startup failed past its threshold: the container must be restarted. */
  failed(kind: 'Liveness' | 'Startup', message: string, graceSeconds?: number): void;
}

/** The probes of one running container instance; stopped when that instance goes. */
export class ContainerProbes {
  started: boolean;
  ready: boolean;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly spec: Container,
    private readonly target: ProbeTarget,
    private readonly runtime: Runtime,
    private readonly on: ProbeEvents,
  ) {
    this.started = !spec.startupProbe;
    this.ready = this.started && !spec.readinessProbe;
  }

  start(): void {
    if (this.spec.startupProbe) this.loop('Startup', this.spec.startupProbe);
    else this.afterStartup();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private afterStartup(): void {
    if (this.spec.livenessProbe) this.loop('Liveness', this.spec.livenessProbe);
    if (this.spec.readinessProbe) this.loop('Readiness', this.spec.readinessProbe);
  }

  private later(ms: number, fn: () => void): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, ms);
    this.timers.add(t);
  }

  private loop(kind: ProbeKind, p: Probe): void {
    let successes = 0;
    let failures = 0;
    const period = (p.periodSeconds ?? 10) * 1000;
    const once = async () => {
      const r = await runProbe(this.runtime, p, this.target);
      if (this.stopped) return;
      if (r.ok) {
        successes++;
        failures = 0;
      } else {
        failures++;
        successes = 0;
        this.on.unhealthy(kind, r.message);
      }
      const success = successes >= (p.successThreshold ?? 1);
      const failure = failures >= (p.failureThreshold ?? 3);
      switch (kind) {
        case 'Startup':
          if (success) {
            this.started = true;
            this.ready = !this.spec.readinessProbe;
            this.on.changed();
            this.afterStartup();
            return; // the startup probe is done for this container's life
          }
          if (failure) {
            this.on.failed(kind, r.message, p.terminationGracePeriodSeconds);
            return;
          }
          break;
        case 'Liveness':
          if (failure) {
            this.on.failed(kind, r.message, p.terminationGracePeriodSeconds);
            return;
          }
          break;
        case 'Readiness':
          if (success && !this.ready) {
            this.ready = true;
            this.on.changed();
          } else if (failure && this.ready) {
            this.ready = false;
            this.on.changed();
          }
          break;
      }
      this.later(period, () => void once());
    };
    this.later((p.initialDelaySeconds ?? 0) * 1000, () => void once());
  }
}
