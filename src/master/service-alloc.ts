/**
 * Service address and node port allocation, done at admission on the
 * master that admits writes (the leader): a new Service gets a free
 * ClusterIP from the service CIDR (unless it is headless or names one) and,
 * for `type: NodePort`, a free port from the node port range for each port
 * that does not name one. Updates keep what the Service holds: a ClusterIP
 * is immutable, and a port keeps its node port unless it names another.
 *
 * Allocations handed out but not yet committed are reserved in memory, so
 * two concurrent creates cannot pick the same address; the store's apply
 * checks uniqueness again on every replica (see ClusterStore), which is what
 * makes a duplicate impossible whoever admitted it.
 */
import { status } from '@grpc/grpc-js';
import type { Service, ServiceSpec } from '../api/schema';
import { ApiObject } from '../api/types';
import { cidrContains, intToIpv4, parseCidr, type Cidr } from '../common/cidr';
import { ApiError } from './api-error';
import { ClusterStore, describe } from './store/cluster-store';

export interface ServiceNetwork {
  /** ClusterIPs come from here (the network and broadcast addresses are never handed out). */
  serviceCIDR: string;
  /** Inclusive range of node ports, such as "30000-32767". */
  nodePortRange: string;
}

export const DEFAULT_SERVICE_NETWORK: ServiceNetwork = {
  serviceCIDR: '10.96.0.0/12',
  nodePortRange: '30000-32767',
};

/** "30000-32767" → { min, max }; throws naming what is wrong. */
export function parsePortRange(range: string): { min: number; max: number } {
  const m = /^(\d+)-(\d+)$/.exec(range);
  if (!m) throw new Error(`"${range}" is not a port range (min-max)`);
  const min = Number(m[1]);
  const max = Number(m[2]);
  if (min < 1 || max > 65535 || min > max)
    throw new Error(`"${range}": ports must satisfy 1 <= min <= max <= 65535`);
  return { min, max };
}

type Ports = NonNullable<ServiceSpec['ports']>;

export class ServiceAllocator {
  readonly cidr: Cidr;
  readonly ports: { min: number; max: number };
  private readonly pending = new Set<string>();

  constructor(
    readonly network: ServiceNetwork,
    private readonly random: () => number = Math.random,
  ) {
    this.cidr = parseCidr(network.serviceCIDR);
    if (this.cidr.size < 4)
      throw new Error(`"${network.serviceCIDR}" is too small for services (at least a /30)`);
    this.ports = parsePortRange(network.nodePortRange);
  }

  /**
   * Fills in `o`'s ClusterIP and node ports (in place) for a create
   * (`old` undefined) or an update of `old`. Throws an ApiError naming the
   * field when a requested address or port is outside its range or taken,
   * when a range is full, or when an update changes the ClusterIP. Returns
   * the function that releases the in-memory reservations: call it once the
   * write is committed or failed.
   */
  admit(store: ClusterStore, o: ApiObject, old?: ApiObject): () => void {
    if (o.kind !== 'Service') return () => {};
    const spec = (o as unknown as Service).spec;
    const prev = (old as unknown as Service | undefined)?.spec;
    const key = `${o.metadata.namespace}/${o.metadata.name}`;
    const held: string[] = [];
    const release = () => {
      for (const h of held) this.pending.delete(h);
    };
    try {
      this.clusterIP(store, o, spec, prev, key, held);
      this.nodePorts(store, spec, prev, key, held);
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  private clusterIP(
    store: ClusterStore,
    o: ApiObject,
    spec: ServiceSpec,
    prev: ServiceSpec | undefined,
    key: string,
    held: string[],
  ): void {
    if (spec.type === 'ExternalName') {
      delete spec.clusterIP;
      delete spec.clusterIPs;
      return;
    }
    const had = prev?.type === 'ExternalName' ? undefined : prev?.clusterIP;
    if (had !== undefined) {
      if (spec.clusterIP !== undefined && spec.clusterIP !== '' && spec.clusterIP !== had)
        throw new ApiError(
          status.INVALID_ARGUMENT,
          `${describe(o)} is invalid: spec.clusterIP: Invalid value "${spec.clusterIP}": field is immutable (it is ${had})`,
        );
      spec.clusterIP = had;
      spec.clusterIPs = [had];
      return;
    }
    if (spec.clusterIP === 'None') {
      spec.clusterIPs = ['None'];
      return;
    }
    const asked = spec.clusterIP || undefined;
    if (asked !== undefined) {
      if (!cidrContains(this.cidr, asked))
        throw new ApiError(
          status.INVALID_ARGUMENT,
          `${describe(o)} is invalid: spec.clusterIP: Invalid value "${asked}": not in the service CIDR ${this.cidr.cidr}`,
        );
      this.take(
        store,
        `ip:${asked}`,
        key,
        held,
        () =>
          new ApiError(
            status.INVALID_ARGUMENT,
            `${describe(o)} is invalid: spec.clusterIP: Invalid value "${asked}": provided IP is already allocated`,
          ),
      );
      spec.clusterIPs = [asked];
      return;
    }
    // Usable addresses are offsets 1 .. size-2; probe from a random one.
    const usable = this.cidr.size - 2;
    const start = Math.floor(this.random() * usable);
    for (let i = 0; i < usable; i++) {
      const ip = intToIpv4(this.cidr.base + 1 + ((start + i) % usable));
      if (this.free(store, `ip:${ip}`, key)) {
        this.take(store, `ip:${ip}`, key, held);
        spec.clusterIP = ip;
        spec.clusterIPs = [ip];
        return;
      }
    }
    throw new ApiError(
      status.RESOURCE_EXHAUSTED,
      `${describe(o)}: spec.clusterIP: no address left in the service CIDR ${this.cidr.cidr} (${usable} in use): delete unused services or widen --service-cidr`,
    );
  }

  private nodePorts(
    store: ClusterStore,
    spec: ServiceSpec,
    prev: ServiceSpec | undefined,
    key: string,
    held: string[],
  ): void {
    const ports: Ports = spec.ports ?? [];
    const wants = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
    const prevPorts: Ports =
      prev?.type === 'NodePort' || prev?.type === 'LoadBalancer' ? (prev.ports ?? []) : [];
    const what = `Service "${key.split('/')[1]}" in namespace "${key.split('/')[0]}"`;
    for (const [i, p] of ports.entries()) {
      if (!wants) {
        delete p.nodePort;
        continue;
      }
      const proto = p.protocol ?? 'TCP';
      if (p.nodePort !== undefined) {
        if (p.nodePort < this.ports.min || p.nodePort > this.ports.max)
          throw new ApiError(
            status.INVALID_ARGUMENT,
            `${what} is invalid: spec.ports[${i}].nodePort: Invalid value ${p.nodePort}: provided port is not in the valid range. The range of valid ports is ${this.ports.min}-${this.ports.max}`,
          );
        this.take(
          store,
          `nodePort:${p.nodePort}/${proto}`,
          key,
          held,
          () =>
            new ApiError(
              status.INVALID_ARGUMENT,
              `${what} is invalid: spec.ports[${i}].nodePort: Invalid value ${p.nodePort}: provided port is already allocated`,
            ),
        );
        continue;
      }
      // The same port (by name, else by number and protocol) keeps its node port.
      const before = prevPorts.find((q) =>
        p.name ? q.name === p.name : q.port === p.port && (q.protocol ?? 'TCP') === proto,
      );
      if (before?.nodePort !== undefined && (before.protocol ?? 'TCP') === proto) {
        p.nodePort = before.nodePort;
        continue;
      }
      const span = this.ports.max - this.ports.min + 1;
      const start = Math.floor(this.random() * span);
      for (let j = 0; j < span && p.nodePort === undefined; j++) {
        const port = this.ports.min + ((start + j) % span);
        const a = `nodePort:${port}/${proto}`;
        if (this.free(store, a, key)) {
          this.take(store, a, key, held);
          p.nodePort = port;
        }
      }
      if (p.nodePort === undefined)
        throw new ApiError(
          status.RESOURCE_EXHAUSTED,
          `${what}: spec.ports[${i}].nodePort: no port left in the node port range ${this.ports.min}-${this.ports.max}`,
        );
    }
  }

  private free(store: ClusterStore, a: string, key: string): boolean {
    const holder = store.objects.allocatedTo(a);
    return (holder === undefined || holder === `Service/${key}`) && !this.pending.has(a);
  }

  private take(
    store: ClusterStore,
    a: string,
    key: string,
    held: string[],
    taken?: () => ApiError,
  ): void {
    if (held.includes(a)) return;
    if (!this.free(store, a, key)) throw taken!();
    this.pending.add(a);
    held.push(a);
  }
}
