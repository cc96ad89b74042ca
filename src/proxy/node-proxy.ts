/**
 * Everything a node does for Services, fed by its session with the leader:
 * the service table (Services and Endpoints), the proxy that programs it
 * (iptables when the daemon may change the host's rules, else userspace),
 * the cluster DNS its pods use, and the routes to other nodes' pod CIDRs.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Endpoints, Service } from '../api/schema';
import { ApiObject } from '../api/types';
import { Coalescer } from '../common/coalescer';
import { silentLogger } from '../common/log';
import { ClusterDns, ListenAddress } from './dns';
import {
  hostRunner,
  IptablesProxy,
  iptablesUnavailableReason,
  Runner,
  SyncStats,
} from './iptables';
import { PodRoutes } from './routes';
import { ServiceTable, serviceKey } from './service-table';
import { loopbackAddress, UserspaceProxy } from './userspace';

export type ProxyMode = 'iptables' | 'userspace' | 'none';

export interface NodeProxyOptions {
  nodeName: string;
  /** 'auto': iptables when running as root and iptables works, userspace otherwise. */
  mode: ProxyMode | 'auto';
  clusterDomain?: string;
  /** The cluster's ranges, from the session (empty until the leader has said). */
  network(): { serviceCIDR: string; clusterCIDR: string };
  /** Route other nodes' pod CIDRs to them (needs root; pointless for host-process pods). */
  routes: boolean;
  /** Also serve cluster DNS here (for the host), besides the pod network's gateway. */
  dnsListen?: ListenAddress[];
  /** Remove the rules and routes on stop (default true). */
  cleanupOnStop?: boolean;
  /**
   * Another node daemon on this host programs the service rules (a local
   * cluster from `baton up`): pick the mode as usual, serve cluster DNS and
   * hand out the mode's addresses, but program no rules and open no
   * userspace listeners here.
   */
  sharedHost?: boolean;
  run?: Runner;
  log?: Logger;
  onSync?(stats: SyncStats): void;
}

/** Node objects as sessions carry them: the pod CIDR and addresses only. */
interface SlimNode {
  metadata: { name: string };
  spec?: { podCIDR?: string };
  status?: { addresses?: { type: string; address: string }[] };
}

export class NodeProxy {
  readonly table = new ServiceTable();
  private readonly nodes = new Map<string, SlimNode>();
  private readonly log: Logger;
  private readonly run: Runner;
  mode: ProxyMode = 'none';
  private iptables?: IptablesProxy;
  private userspace?: UserspaceProxy;
  readonly dns: ClusterDns;
  private routes?: PodRoutes;
  private readonly routing = new Coalescer(
    () => this.syncRoutesOnce(),
    (err) => this.log.warn({ err: (err as Error).message }, 'pod routes not synced'),
  );
  private readonly dnsHosts = new Set<string>();
  private started = false;

  constructor(private readonly opts: NodeProxyOptions) {
    this.log = (opts.log ?? silentLogger()).child({ component: 'proxy' });
    this.run = opts.run ?? hostRunner();
    this.dns = new ClusterDns({
      table: this.table,
      clusterDomain: opts.clusterDomain,
      log: opts.log,
      addressOf: (ip) => this.address(ip),
    });
    if (opts.routes) this.routes = new PodRoutes(opts.nodeName, { run: this.run, log: opts.log });
  }

  /** The address clients use for a ClusterIP: itself, or its loopback stand-in in userspace mode. */
  address(clusterIP: string): string {
    if (this.mode !== 'userspace') return clusterIP;
    try {
      return loopbackAddress(clusterIP, this.opts.network().serviceCIDR);
    } catch {
      return clusterIP;
    }
  }

  /** Picks the mode and starts the proxy and the host DNS listeners. */
  async start(): Promise<void> {
    let mode = this.opts.mode;
    if (mode === 'auto') {
      const why =
        process.getuid?.() !== 0
          ? 'not running as root'
          : await iptablesUnavailableReason(this.run);
      mode = why ? 'userspace' : 'iptables';
      if (why) this.log.warn({ reason: why }, 'service proxy in userspace mode');
    }
    this.mode = mode;
    if (mode === 'iptables' && !this.opts.sharedHost) {
      this.kernelSettings();
      this.iptables = new IptablesProxy({
        table: this.table,
        clusterCIDR: () => this.opts.network().clusterCIDR,
        run: this.run,
        log: this.opts.log,
        onSync: this.opts.onSync,
      });
      await this.iptables.start();
    }
    // The userspace proxy starts once the leader has told the service CIDR (see onObjects).
    this.started = true;
    if (this.opts.dnsListen?.length) await this.dns.listen(this.opts.dnsListen);
    this.log.info({ mode }, 'service proxy started');
  }

  /**
   * What the iptables mode needs of the kernel, as kube-proxy does: packets
   * forwarded between interfaces, and bridged packets (a pod reaching a pod
   * of its own node through a VIP) seen by iptables, so replies are
   * un-NATed, and loopback routable so node ports answer on 127.0.0.1.
   * Set when possible, else said.
   */
  private kernelSettings(): void {
    for (const [path, want] of [
      ['/proc/sys/net/ipv4/ip_forward', '1'],
      ['/proc/sys/net/bridge/bridge-nf-call-iptables', '1'],
      // Node ports on 127.0.0.1: DNAT from loopback to a pod needs loopback routable.
      ['/proc/sys/net/ipv4/conf/all/route_localnet', '1'],
    ]) {
      try {
        if (!existsSync(path)) {
          this.log.warn(
            { path },
            'missing (is br_netfilter loaded?): same-node VIP traffic may fail',
          );
          continue;
        }
        if (readFileSync(path, 'utf8').trim() !== want) writeFileSync(path, want);
      } catch (err) {
        this.log.warn({ path, err: (err as Error).message }, `cannot set ${path} to ${want}`);
      }
    }
  }

  /** Serves cluster DNS on `host`:53 (the pod network's gateway), once. */
  async serveDns(host: string): Promise<void> {
    if (this.dnsHosts.has(host)) return;
    this.dnsHosts.add(host);
    try {
      await this.dns.listen([{ host, port: 53 }]);
      this.log.info({ address: `${host}:53` }, 'cluster DNS serving');
    } catch (err) {
      this.dnsHosts.delete(host);
      throw err;
    }
  }

  /** The session's cluster objects changed (`full`: a complete set). */
  onObjects(changed: ApiObject[], removed: string[], full: boolean): void {
    const serviceCIDR = this.opts.network().serviceCIDR;
    if (
      this.started &&
      this.mode === 'userspace' &&
      !this.opts.sharedHost &&
      !this.userspace &&
      serviceCIDR
    ) {
      this.userspace = new UserspaceProxy({ table: this.table, serviceCIDR, log: this.opts.log });
      this.userspace.start();
    }
    if (full) {
      this.nodes.clear();
      const services: Service[] = [];
      const endpoints: Endpoints[] = [];
      for (const o of changed)
        if (o.kind === 'Service') services.push(o as unknown as Service);
        else if (o.kind === 'Endpoints') endpoints.push(o as unknown as Endpoints);
        else if (o.kind === 'Node') this.nodes.set(o.metadata.name, o as unknown as SlimNode);
      this.table.replaceAll(services, endpoints);
    } else {
      for (const o of changed) {
        if (o.kind === 'Service') this.table.setService(o as unknown as Service);
        else if (o.kind === 'Endpoints') this.table.setEndpoints(o as unknown as Endpoints);
        else if (o.kind === 'Node') this.nodes.set(o.metadata.name, o as unknown as SlimNode);
      }
      for (const key of removed) {
        const [kind, ns, name] = key.split('/');
        if (kind === 'Service') this.table.deleteService(serviceKey(ns, name));
        else if (kind === 'Endpoints') this.table.deleteEndpoints(serviceKey(ns, name));
        else if (kind === 'Node') this.nodes.delete(name);
      }
    }
    const nodesChanged =
      full || changed.some((o) => o.kind === 'Node') || removed.some((k) => k.startsWith('Node/'));
    if (this.routes && nodesChanged) this.syncRoutes();
  }

  /** Services of a namespace, for the environment of a starting container. */
  servicesIn(namespace: string): Service[] {
    const out: Service[] = [];
    for (const [key, svc] of this.table.services)
      if (key.startsWith(`${namespace}/`)) out.push(svc);
    return out;
  }

  private syncRoutes(): void {
    this.routing.kick();
  }

  private async syncRoutesOnce(): Promise<void> {
    const want = [];
    for (const n of this.nodes.values()) {
      const via = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
      // A node reached over loopback shares this host: its pod network is already local.
      if (n.spec?.podCIDR && via && !via.startsWith('127.'))
        want.push({ node: n.metadata.name, podCIDR: n.spec.podCIDR, via });
    }
    await this.routes!.sync(want);
  }

  /** Resolves once the iptables rules reflect everything the table holds now. */
  async settled(): Promise<void> {
    await this.iptables?.settled();
    await this.userspace?.sync();
    await this.routing.settled();
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    const cleanup = this.opts.cleanupOnStop ?? true;
    await this.dns.close();
    await this.userspace?.close();
    await this.routing.settled();
    if (this.iptables) {
      if (cleanup)
        await this.iptables
          .cleanup()
          .catch((err: Error) => this.log.warn({ err }, 'iptables cleanup failed'));
      else await this.iptables.stop();
    }
    if (cleanup && this.routes)
      await this.routes
        .cleanup()
        .catch((err: Error) => this.log.warn({ err }, 'route cleanup failed'));
  }
}
