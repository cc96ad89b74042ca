/**
 * The userspace proxy mode, for nodes whose daemon has no root and so cannot
 * program iptables (kube-proxy's old userspace mode, minus the iptables
 * redirect it used). Every service port gets its own listening socket on a
 * loopback address derived from its ClusterIP, and the proxy itself carries
 * each TCP connection or UDP flow to an endpoint. Nothing rewrites packets
 * sent to the ClusterIP itself, so clients dial `address(entry)` instead.
 *
 * Linux routes all of 127.0.0.0/8 to `lo`, so binding 127.x.y.z needs no
 * configuration; ports below net.ipv4.ip_unprivileged_port_start (1024 by
 * default) still need CAP_NET_BIND_SERVICE, and a listener that cannot bind
 * is reported and retried rather than failing the proxy.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { intToIpv4, ipv4ToInt, parseCidr } from '../common/cidr';
import { type Logger, silentLogger } from '../common/log';
import type { Endpoint, ServicePortEntry, ServiceTable } from './service-table';

/** 127.128.0.0/9: the upper half of loopback, clear of 127.0.0.1 and 127.0.0.53. */
const LOOPBACK_BASE = ipv4ToInt('127.128.0.0');
const LOOPBACK_SIZE = 2 ** 23;
/** Datagrams held per UDP flow while its upstream socket connects; more are dropped. */
const MAX_PENDING_DATAGRAMS = 64;

/**
 * The loopback address that stands for `clusterIP`: its offset within
 * `serviceCIDR` added to 127.128.0.0. Deterministic, so every node (and
 * every restart) agrees on it without coordination.
 */
export function loopbackAddress(clusterIP: string, serviceCIDR: string): string {
  const cidr = parseCidr(serviceCIDR);
  if (!net.isIPv4(clusterIP)) throw new Error(`cluster IP "${clusterIP}" is not an IPv4 address`);
  const offset = ipv4ToInt(clusterIP) - cidr.base;
  if (offset < 0 || offset >= cidr.size)
    throw new Error(`cluster IP ${clusterIP} is outside the service CIDR ${serviceCIDR}`);
  if (offset >= LOOPBACK_SIZE)
    throw new Error(
      `cluster IP ${clusterIP} is ${offset} addresses into ${serviceCIDR}; ` +
        `the userspace proxy maps only the first ${LOOPBACK_SIZE} onto 127.128.0.0/9`,
    );
  return intToIpv4(LOOPBACK_BASE + offset);
}

const endpointKey = (ep: Endpoint): string => `${ep.ip}:${ep.port}`;

/**
 * Which endpoint a new connection goes to: a uniformly random first choice
 * (the rest, also shuffled, are fallbacks when it does not answer), or under
 * ClientIP affinity the endpoint this client last used while that is within
 * the timeout. Pure apart from the injected `rng` and `now`.
 */
export class EndpointPicker {
  private endpoints: Endpoint[] = [];
  private affinityMs?: number;
  private readonly sticky = new Map<string, { key: string; at: number }>();
  private lastSweep = 0;

  constructor(
    private readonly rng: () => number,
    private readonly now: () => number,
  ) {}

  /** New endpoints and affinity; stickiness to endpoints that are gone is forgotten. */
  set(endpoints: Endpoint[], affinitySeconds: number | undefined): void {
    const affinityMs = affinitySeconds === undefined ? undefined : affinitySeconds * 1000;
    if (affinityMs !== this.affinityMs) this.sticky.clear();
    this.affinityMs = affinityMs;
    this.endpoints = [...endpoints];
    const live = new Set(endpoints.map(endpointKey));
    for (const [ip, s] of this.sticky) if (!live.has(s.key)) this.sticky.delete(ip);
  }

  /** Endpoints to try for a connection from `clientIP`, first choice first. */
  order(clientIP: string): Endpoint[] {
    const out = [...this.endpoints];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    const s = this.affinityMs === undefined ? undefined : this.sticky.get(clientIP);
    if (s && this.now() - s.at < (this.affinityMs ?? 0)) {
      const i = out.findIndex((ep) => endpointKey(ep) === s.key);
      if (i > 0) out.unshift(...out.splice(i, 1));
    }
    return out;
  }

  /** Records that `clientIP` was served by `ep`, which it then sticks to under affinity. */
  chose(clientIP: string, ep: Endpoint): void {
    if (this.affinityMs === undefined) return;
    const now = this.now();
    this.sticky.set(clientIP, { key: endpointKey(ep), at: now });
    // Expired entries are dropped once per timeout so one-off clients do not pile up.
    if (now - this.lastSweep < this.affinityMs) return;
    this.lastSweep = now;
    for (const [ip, s] of this.sticky) if (now - s.at >= this.affinityMs) this.sticky.delete(ip);
  }
}

/** Counters per service port, for tests and debugging. */
export interface PortStats {
  /** TCP connections accepted, or UDP flows opened. */
  accepted: number;
  /** Upstream TCP connects that failed or timed out (another endpoint was then tried). */
  dialFailures: number;
  /** UDP flows currently mapped to an upstream socket. */
  udpFlows: number;
}

export interface UserspaceProxyOptions {
  table: ServiceTable;
  /** The range ClusterIPs come from; each maps to 127.128.0.0 plus its offset. */
  serviceCIDR: string;
  log?: Logger;
  /** How long to wait for an endpoint to accept before trying the next one. */
  connectTimeoutMs?: number;
  /** A UDP client silent this long loses its upstream socket (and its endpoint pick). */
  udpIdleMs?: number;
  /** Address NodePorts listen on. */
  nodePortHost?: string;
  /** Listeners that could not bind are retried after this long even if nothing changes. */
  bindRetryMs?: number;
  /** Uniform in [0, 1); endpoint choice. */
  rng?: () => number;
  /** Monotonic milliseconds; affinity timeouts. */
  now?: () => number;
}

interface PortContext {
  log: Logger;
  nodePortHost: string;
  rng: () => number;
  now: () => number;
  connectTimeoutMs: number;
  udpIdleMs: number;
  /** Every proxied socket, so close() can end connections of ports already removed. */
  conns: Set<net.Socket>;
}

interface Listener<S> {
  host: string;
  port: number;
  socket?: S;
}

/** One service port's listeners (its loopback address and its NodePort) and picker. */
abstract class ServicePort<S extends { close(cb: () => void): unknown }> {
  readonly stats: PortStats = { accepted: 0, dialFailures: 0, udpFlows: 0 };
  protected readonly picker: EndpointPicker;
  protected readonly listeners: Listener<S>[];

  constructor(
    public entry: ServicePortEntry,
    loopback: string,
    protected readonly ctx: PortContext,
  ) {
    this.picker = new EndpointPicker(ctx.rng, ctx.now);
    this.picker.set(entry.endpoints, entry.affinitySeconds);
    this.listeners = [{ host: loopback, port: entry.port }];
    if (entry.nodePort !== undefined)
      this.listeners.push({ host: ctx.nodePortHost, port: entry.nodePort });
  }

  get bound(): boolean {
    return this.listeners.every((l) => l.socket !== undefined);
  }

  /** Binds the listeners not yet bound; a failure is logged, not thrown. */
  async open(): Promise<void> {
    for (const [i, l] of this.listeners.entries()) {
      if (l.socket !== undefined) continue;
      try {
        l.socket = await this.listen(l.host, l.port, i);
        this.ctx.log.info(
          { service: this.entry.id, address: `${l.host}:${l.port}` },
          'proxying service port',
        );
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        this.ctx.log.warn(
          {
            service: this.entry.id,
            address: `${l.host}:${l.port}`,
            err: (err as Error).message,
            ...(code === 'EACCES' ? { hint: 'ports below 1024 need CAP_NET_BIND_SERVICE' } : {}),
          },
          'cannot listen for service port; will retry',
        );
      }
    }
  }

  /** Takes the entry's new endpoints and affinity without touching the listeners. */
  update(entry: ServicePortEntry): void {
    this.entry = entry;
    this.picker.set(entry.endpoints, entry.affinitySeconds);
  }

  /** Whether `entry` would listen where this port does. */
  sameListeners(entry: ServicePortEntry): boolean {
    return (
      entry.clusterIP === this.entry.clusterIP &&
      entry.port === this.entry.port &&
      entry.nodePort === this.entry.nodePort
    );
  }

  /**
   * Stops listening. Established TCP connections are left to finish (the
   * promise resolves when they have); UserspaceProxy.close() ends them.
   */
  async close(): Promise<void> {
    const sockets = this.listeners.flatMap((l) => (l.socket ? [l.socket] : []));
    for (const l of this.listeners) l.socket = undefined;
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  /** Binds listener `index` (0: the loopback address, 1: the NodePort). */
  protected abstract listen(host: string, port: number, index: number): Promise<S>;
}

class TcpServicePort extends ServicePort<net.Server> {
  protected listen(host: string, port: number): Promise<net.Server> {
    // pauseOnConnect: the client's bytes wait in the kernel until an endpoint is connected.
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) =>
      this.accept(c),
    );
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        server.on('error', (err) =>
          this.ctx.log.warn({ service: this.entry.id, err: err.message }, 'listener error'),
        );
        resolve(server);
      });
    });
  }

  private accept(client: net.Socket): void {
    this.track(client);
    // Before the splice a client error only matters as the 'close' that follows it.
    client.on('error', () => {});
    this.stats.accepted++;
    const clientIP = client.remoteAddress ?? '';
    const order = this.picker.order(clientIP);
    if (order.length === 0) {
      this.ctx.log.debug({ service: this.entry.id, client: clientIP }, 'no endpoints; reset');
      client.resetAndDestroy();
      return;
    }
    this.dial(client, clientIP, order, 0);
  }

  /** Connects to `order[i]`, falling through the rest; resets the client when none answers. */
  private dial(client: net.Socket, clientIP: string, order: Endpoint[], i: number): void {
    if (client.destroyed) return;
    if (i >= order.length) {
      this.ctx.log.warn(
        { service: this.entry.id, tried: order.map(endpointKey) },
        'no endpoint accepted the connection',
      );
      client.resetAndDestroy();
      return;
    }
    const ep = order[i];
    const upstream = net.connect({ host: ep.ip, port: ep.port, allowHalfOpen: true });
    this.track(upstream);
    const clientGone = () => {
      clearTimeout(timer);
      upstream.destroy();
    };
    const fail = (err: Error) => {
      clearTimeout(timer);
      client.off('close', clientGone);
      upstream.destroy();
      this.stats.dialFailures++;
      this.ctx.log.debug(
        { service: this.entry.id, endpoint: endpointKey(ep), err: err.message },
        'endpoint did not accept; trying the next',
      );
      this.dial(client, clientIP, order, i + 1);
    };
    const timer = setTimeout(
      () => fail(new Error(`no answer within ${this.ctx.connectTimeoutMs} ms`)),
      this.ctx.connectTimeoutMs,
    );
    client.once('close', clientGone);
    upstream.once('error', fail);
    upstream.once('connect', () => {
      clearTimeout(timer);
      upstream.off('error', fail);
      client.off('close', clientGone);
      this.picker.chose(clientIP, ep);
      splice(client, upstream);
    });
  }

  private track(s: net.Socket): void {
    this.ctx.conns.add(s);
    s.once('close', () => this.ctx.conns.delete(s));
  }
}

/**
 * Pipes two connected sockets into each other. Each side's FIN is passed on
 * (both allow half-open), so a client that ends its request still gets the
 * whole reply; an error on either side resets both.
 */
function splice(a: net.Socket, b: net.Socket): void {
  const reset = () => {
    for (const s of [a, b]) if (!s.destroyed) s.resetAndDestroy();
  };
  a.on('error', reset);
  b.on('error', reset);
  a.pipe(b);
  b.pipe(a);
}

interface UdpFlow {
  upstream: dgram.Socket;
  endpoint: string;
  /** Datagrams waiting for the upstream connect; undefined once connected. */
  pending?: Buffer[];
  idle: NodeJS.Timeout;
}

class UdpServicePort extends ServicePort<dgram.Socket> {
  /** By listener index and client `address:port`. */
  private readonly flows = new Map<string, UdpFlow>();

  protected listen(host: string, port: number, index: number): Promise<dgram.Socket> {
    const socket = dgram.createSocket('udp4');
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', failed);
      socket.bind({ address: host, port }, () => {
        socket.off('error', failed);
        socket.on('error', (err) =>
          this.ctx.log.warn({ service: this.entry.id, err: err.message }, 'listener error'),
        );
        socket.on('message', (msg, from) => this.relay(index, socket, msg, from));
        resolve(socket);
      });
    });
  }

  private relay(index: number, listener: dgram.Socket, msg: Buffer, from: dgram.RemoteInfo) {
    const key = `${index}/${from.address}:${from.port}`;
    const flow = this.flows.get(key) ?? this.openFlow(key, listener, from);
    if (!flow) return;
    flow.idle.refresh();
    if (flow.pending) {
      if (flow.pending.length < MAX_PENDING_DATAGRAMS) flow.pending.push(msg);
    } else {
      flow.upstream.send(msg);
    }
  }

  private openFlow(key: string, listener: dgram.Socket, from: dgram.RemoteInfo) {
    const ep = this.picker.order(from.address)[0];
    if (!ep) {
      this.ctx.log.debug({ service: this.entry.id, client: from.address }, 'no endpoints; drop');
      return undefined;
    }
    this.picker.chose(from.address, ep);
    this.stats.accepted++;
    const upstream = dgram.createSocket('udp4');
    const flow: UdpFlow = {
      upstream,
      endpoint: endpointKey(ep),
      pending: [],
      idle: setTimeout(() => this.closeFlow(key), this.ctx.udpIdleMs),
    };
    this.flows.set(key, flow);
    this.stats.udpFlows = this.flows.size;
    upstream.on('message', (reply) => {
      flow.idle.refresh();
      listener.send(reply, from.port, from.address);
    });
    // A connected UDP socket reports ICMP port-unreachable as an error: drop the
    // flow so the client's next datagram picks again.
    upstream.on('error', (err) => {
      this.ctx.log.debug(
        { service: this.entry.id, endpoint: flow.endpoint, err: err.message },
        'udp upstream error',
      );
      this.closeFlow(key);
    });
    upstream.connect(ep.port, ep.ip, () => {
      if (this.flows.get(key) !== flow) return;
      const pending = flow.pending ?? [];
      flow.pending = undefined;
      for (const m of pending) upstream.send(m);
    });
    return flow;
  }

  private closeFlow(key: string): void {
    const flow = this.flows.get(key);
    if (!flow) return;
    this.flows.delete(key);
    this.stats.udpFlows = this.flows.size;
    clearTimeout(flow.idle);
    flow.upstream.close();
  }

  override update(entry: ServicePortEntry): void {
    super.update(entry);
    const live = new Set(entry.endpoints.map(endpointKey));
    for (const [key, flow] of this.flows) if (!live.has(flow.endpoint)) this.closeFlow(key);
  }

  override close(): Promise<void> {
    for (const key of [...this.flows.keys()]) this.closeFlow(key);
    return super.close();
  }
}

type AnyPort = TcpServicePort | UdpServicePort;

/**
 * Keeps one proxy per service port of `table` listening, level-triggered:
 * each sync looks at the services changed since the last one (plus any whose
 * listeners failed to bind) and converges their listeners and endpoints.
 */
export class UserspaceProxy {
  private readonly table: ServiceTable;
  private readonly serviceCIDR: string;
  private readonly log: Logger;
  private readonly bindRetryMs: number;
  private readonly ctx: PortContext;
  /** By service key, then entry id. */
  private readonly ports = new Map<string, Map<string, AnyPort>>();
  /** Removed ports whose listeners are still closing. */
  private readonly retiring = new Set<Promise<void>>();
  private feed?: { take(): Set<string>; close(): void };
  private started = false;
  private closed = false;
  private scheduled = false;
  private retryTimer?: NodeJS.Timeout;
  private chain: Promise<void> = Promise.resolve();

  constructor(opts: UserspaceProxyOptions) {
    parseCidr(opts.serviceCIDR); // fail at construction, not on the first service
    this.table = opts.table;
    this.serviceCIDR = opts.serviceCIDR;
    this.log = (opts.log ?? silentLogger()).child({ component: 'userspace-proxy' });
    this.bindRetryMs = opts.bindRetryMs ?? 5000;
    this.ctx = {
      log: this.log,
      nodePortHost: opts.nodePortHost ?? '0.0.0.0',
      rng: opts.rng ?? Math.random,
      now: opts.now ?? (() => performance.now()),
      connectTimeoutMs: opts.connectTimeoutMs ?? 2000,
      udpIdleMs: opts.udpIdleMs ?? 30_000,
      conns: new Set(),
    };
  }

  /** Follows the table: every change (bursts coalesced) triggers a sync. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.consumer();
    this.schedule();
  }

  /** Converges listeners with the table; concurrent calls run one after another. */
  sync(): Promise<void> {
    const run = this.chain.then(() => this.syncOnce());
    this.chain = run.catch((err: Error) => this.log.error({ err: err.message }, 'sync failed'));
    return run;
  }

  /** Stops every listener and ends every proxied connection and UDP flow. */
  async close(): Promise<void> {
    this.closed = true;
    this.feed?.close();
    clearTimeout(this.retryTimer);
    await this.chain;
    const closing = [...this.retiring];
    for (const byId of this.ports.values()) for (const p of byId.values()) closing.push(p.close());
    this.ports.clear();
    for (const s of this.ctx.conns) s.destroy();
    await Promise.all(closing);
  }

  /** Where clients reach `entry` on this node (its loopback address and port). */
  address(entry: ServicePortEntry): { host: string; port: number } {
    return { host: loopbackAddress(entry.clusterIP, this.serviceCIDR), port: entry.port };
  }

  /** Counters of the service port `id` (`ServicePortEntry.id`), while it is proxied. */
  stats(id: string): PortStats | undefined {
    const key = id.slice(0, id.indexOf(':'));
    return this.ports.get(key)?.get(id)?.stats;
  }

  private consumer(): { take(): Set<string>; close(): void } {
    this.feed ??= this.table.consumer('userspace-proxy', () => this.schedule());
    return this.feed;
  }

  private schedule(): void {
    if (!this.started || this.closed || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.closed) void this.sync().catch(() => {});
    });
  }

  private async syncOnce(): Promise<void> {
    if (this.closed) return;
    const keys = this.consumer().take();
    for (const [key, byId] of this.ports)
      if ([...byId.values()].some((p) => !p.bound)) keys.add(key);
    for (const key of [...keys].sort()) await this.syncService(key);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const unbound = [...this.ports.values()].some((m) => [...m.values()].some((p) => !p.bound));
    if (unbound && this.started && !this.closed)
      this.retryTimer = setTimeout(() => void this.sync().catch(() => {}), this.bindRetryMs);
  }

  private async syncService(key: string): Promise<void> {
    const want = new Map(this.table.entriesOf(key).map((e) => [e.id, e]));
    const have = this.ports.get(key) ?? new Map<string, AnyPort>();
    this.ports.set(key, have);
    for (const [id, port] of have) {
      const e = want.get(id);
      if (e && port.sameListeners(e)) continue;
      have.delete(id);
      const done = port.close().finally(() => this.retiring.delete(done));
      this.retiring.add(done);
      this.log.info({ service: id }, 'stopped proxying service port');
    }
    for (const [id, e] of want) {
      let port = have.get(id);
      if (port) port.update(e);
      else {
        port = this.create(e);
        if (!port) continue;
        have.set(id, port);
      }
      if (!port.bound) await port.open();
    }
    if (have.size === 0) this.ports.delete(key);
  }

  private create(e: ServicePortEntry): AnyPort | undefined {
    let loopback: string;
    try {
      loopback = loopbackAddress(e.clusterIP, this.serviceCIDR);
    } catch (err) {
      this.log.warn({ service: e.id, err: (err as Error).message }, 'cannot proxy service port');
      return undefined;
    }
    if (e.protocol === 'TCP') return new TcpServicePort(e, loopback, this.ctx);
    if (e.protocol === 'UDP') return new UdpServicePort(e, loopback, this.ctx);
    this.log.warn(
      { service: e.id, protocol: e.protocol },
      'the userspace proxy carries only TCP and UDP',
    );
    return undefined;
  }
}
