/**
 * What a node knows of the cluster's Services and Endpoints (fed by its
 * session with the leader), and the flat view the proxies program: one
 * entry per service port with its virtual address and ready endpoints.
 * Pure data: no I/O. Consumers ask which service ports changed since they
 * last looked, so a sync touches only those.
 */
import { isIPv4 } from 'node:net';
import type { Endpoints, Service } from '../api/schema';

export type Protocol = 'TCP' | 'UDP' | 'SCTP';

export interface Endpoint {
  ip: string;
  port: number;
  nodeName?: string;
}

/** One port of one service, as a proxy programs it. */
export interface ServicePortEntry {
  /** `namespace/name:port-name/protocol` (port name empty for a single unnamed port). */
  id: string;
  namespace: string;
  name: string;
  portName: string;
  protocol: Protocol;
  clusterIP: string;
  port: number;
  nodePort?: number;
  externalIPs: string[];
  /** Seconds a client IP sticks to its endpoint (`sessionAffinity: ClientIP`), else undefined. */
  affinitySeconds?: number;
  /** Ready endpoints (plus not-ready ones when the service publishes them), sorted by ip then port. */
  endpoints: Endpoint[];
}

/** `namespace/name`. */
export const serviceKey = (namespace: string, name: string): string => `${namespace}/${name}`;

const DEFAULT_AFFINITY_SECONDS = 10800;

/** The service ports of `svc` with `eps`'s endpoints (none for headless or ExternalName services). */
export function servicePortEntries(svc: Service, eps: Endpoints | undefined): ServicePortEntry[] {
  const spec = svc.spec;
  const ip = spec.clusterIP;
  // IPv4 only (as the proxies are): one IPv6 address must not break every service's rules.
  if (spec.type === 'ExternalName' || !ip || !isIPv4(ip)) return [];
  const namespace = svc.metadata.namespace ?? 'default';
  const name = svc.metadata.name;
  const affinitySeconds =
    spec.sessionAffinity === 'ClientIP'
      ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_SECONDS)
      : undefined;
  const out: ServicePortEntry[] = [];
  for (const p of spec.ports ?? []) {
    const portName = p.name ?? '';
    const protocol = (p.protocol ?? 'TCP') as Protocol;
    const endpoints: Endpoint[] = [];
    for (const sub of eps?.subsets ?? []) {
      const ep = (sub.ports ?? []).find(
        (x) => (x.name ?? '') === portName && (x.protocol ?? 'TCP') === protocol,
      );
      if (!ep) continue;
      const addrs = [
        ...(sub.addresses ?? []),
        ...(spec.publishNotReadyAddresses ? (sub.notReadyAddresses ?? []) : []),
      ];
      for (const a of addrs)
        if (isIPv4(a.ip)) endpoints.push({ ip: a.ip, port: ep.port, nodeName: a.nodeName });
    }
    endpoints.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.port - b.port));
    out.push({
      id: `${namespace}/${name}:${portName}/${protocol}`,
      namespace,
      name,
      portName,
      protocol,
      clusterIP: ip,
      port: p.port,
      ...(p.nodePort !== undefined && (spec.type === 'NodePort' || spec.type === 'LoadBalancer')
        ? { nodePort: p.nodePort }
        : {}),
      externalIPs: (spec.externalIPs ?? []).filter((x) => isIPv4(x)),
      ...(affinitySeconds !== undefined ? { affinitySeconds } : {}),
      endpoints,
    });
  }
  return out;
}

/**
 * Services and Endpoints by `namespace/name`, with the service keys changed
 * since each consumer last took them.
 */
export class ServiceTable {
  readonly services = new Map<string, Service>();
  readonly endpoints = new Map<string, Endpoints>();
  private readonly dirty = new Map<string, Set<string>>();
  private readonly listeners = new Set<() => void>();

  /** Registers a consumer; it starts with every known service dirty. */
  consumer(name: string, onChange?: () => void): { take(): Set<string>; close(): void } {
    this.dirty.set(name, new Set(this.services.keys()));
    if (onChange) this.listeners.add(onChange);
    return {
      take: () => {
        const d = this.dirty.get(name) ?? new Set();
        this.dirty.set(name, new Set());
        return d;
      },
      close: () => {
        this.dirty.delete(name);
        if (onChange) this.listeners.delete(onChange);
      },
    };
  }

  /** Every service port, in key order. */
  entries(): ServicePortEntry[] {
    const out: ServicePortEntry[] = [];
    for (const key of [...this.services.keys()].sort()) out.push(...this.entriesOf(key));
    return out;
  }

  /** The ports of one service (none when it is gone). */
  entriesOf(key: string): ServicePortEntry[] {
    const svc = this.services.get(key);
    return svc ? servicePortEntries(svc, this.endpoints.get(key)) : [];
  }

  setService(svc: Service): void {
    const key = serviceKey(svc.metadata.namespace ?? 'default', svc.metadata.name);
    this.services.set(key, svc);
    this.touch(key);
  }

  deleteService(key: string): void {
    if (this.services.delete(key)) this.touch(key);
  }

  setEndpoints(eps: Endpoints): void {
    const key = serviceKey(eps.metadata.namespace ?? 'default', eps.metadata.name);
    this.endpoints.set(key, eps);
    this.touch(key);
  }

  deleteEndpoints(key: string): void {
    if (this.endpoints.delete(key)) this.touch(key);
  }

  /** Replaces everything (a full resync): keys that changed or went away are marked. */
  replaceAll(services: Service[], endpoints: Endpoints[]): void {
    const keys = new Set([...this.services.keys(), ...this.endpoints.keys()]);
    this.services.clear();
    this.endpoints.clear();
    for (const s of services) {
      const k = serviceKey(s.metadata.namespace ?? 'default', s.metadata.name);
      this.services.set(k, s);
      keys.add(k);
    }
    for (const e of endpoints) {
      const k = serviceKey(e.metadata.namespace ?? 'default', e.metadata.name);
      this.endpoints.set(k, e);
      keys.add(k);
    }
    for (const k of keys) this.mark(k);
    this.notify();
  }

  private touch(key: string): void {
    this.mark(key);
    this.notify();
  }

  private mark(key: string): void {
    for (const d of this.dirty.values()) d.add(key);
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }
}
