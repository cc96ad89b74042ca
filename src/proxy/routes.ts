/**
 * Cross-node pod routing (host-gateway, like flannel's host-gw backend):
 * every other node's pod CIDR is routed to that node's InternalIP, so a
 * packet from a pod here (or a VIP rewritten here) reaches a pod there.
 * Routes are tagged with their own protocol number, so the ones Baton added
 * can be found after a restart and removed when their node goes.
 */
import type { Logger } from 'pino';
import { silentLogger } from '../common/log';
import { hostRunner, Runner } from './iptables';

/** The `proto` of Baton's routes (a free number: /etc/iproute2/rt_protos names 0–4 and some > 8). */
export const ROUTE_PROTO = '177';

export interface NodeRoute {
  node: string;
  podCIDR: string;
  via: string;
}

export class PodRoutes {
  private readonly run: Runner;
  private readonly log: Logger;
  /** What the kernel holds, by pod CIDR. */
  private readonly have = new Map<string, string>();
  private loaded = false;
  private readonly warned = new Set<string>();

  constructor(
    private readonly self: string,
    opts: { run?: Runner; log?: Logger } = {},
  ) {
    this.run = opts.run ?? hostRunner();
    this.log = (opts.log ?? silentLogger()).child({ component: 'routes' });
  }

  /** Makes the kernel's Baton routes exactly `routes` (minus this node's own). */
  async sync(routes: NodeRoute[]): Promise<void> {
    if (!this.loaded) {
      const r = await this.run('ip', ['-4', 'route', 'show', 'proto', ROUTE_PROTO]);
      if (r.code !== 0) throw new Error(`ip route show: ${r.stderr.trim()}`);
      for (const line of r.stdout.split('\n')) {
        const m = /^(\S+) via (\S+)/.exec(line.trim());
        if (m) this.have.set(m[1], m[2]);
      }
      this.loaded = true;
    }
    const want = new Map<string, string>();
    for (const r of routes) if (r.node !== this.self) want.set(r.podCIDR, r.via);
    for (const [cidr, via] of want) {
      if (this.have.get(cidr) === via) continue;
      const r = await this.run('ip', ['route', 'replace', cidr, 'via', via, 'proto', ROUTE_PROTO]);
      if (r.code !== 0) {
        // Typically: the other node is not on a network this one is directly attached to.
        const key = `${cidr} via ${via}`;
        if (!this.warned.has(key))
          this.log.warn(
            { route: key, err: r.stderr.trim() },
            'cannot route to a pod CIDR (host-gateway routing needs the nodes on one network)',
          );
        this.warned.add(key);
        continue;
      }
      this.have.set(cidr, via);
      this.log.info({ podCIDR: cidr, via }, 'pod route added');
    }
    for (const cidr of [...this.have.keys()]) if (!want.has(cidr)) await this.remove(cidr);
  }

  private async remove(cidr: string): Promise<void> {
    const r = await this.run('ip', ['route', 'del', cidr, 'proto', ROUTE_PROTO]);
    if (r.code !== 0 && !/No such process/.test(r.stderr))
      throw new Error(`ip route del ${cidr}: ${r.stderr.trim()}`);
    this.have.delete(cidr);
    this.log.info({ podCIDR: cidr }, 'pod route removed');
  }

  /** Removes every route Baton added. */
  async cleanup(): Promise<void> {
    this.loaded = false;
    this.have.clear();
    await this.sync([]);
  }
}
