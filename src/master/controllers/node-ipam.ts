/**
 * Node IPAM, as kube-controller-manager's range allocator: every Node gets
 * `spec.podCIDR`, a block of the cluster CIDR no other node holds, and the
 * node daemon puts its pods' IPs there, so pod IPs are unique across the
 * cluster and routable by block. Blocks are taken synchronously from an
 * in-memory reservation before the write (one leader, one event loop: no
 * two nodes get the same block) and released when a node goes.
 */
import type { Node } from '../../api/schema';
import { ApiObject } from '../../api/types';
import { Controller } from './runtime/controller';

/** "10.244.0.0" → 32-bit number; throws on anything that is not dotted IPv4. */
export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255))
    throw new Error(`"${ip}" is not an IPv4 address`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** A CIDR split into equal blocks of `/blockBits`. */
export class CidrBlocks {
  readonly base: number;
  readonly bits: number;
  readonly count: number;

  constructor(
    readonly cidr: string,
    readonly blockBits: number,
  ) {
    const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr);
    if (!m) throw new Error(`"${cidr}" is not an IPv4 CIDR (a.b.c.d/n)`);
    this.bits = Number(m[2]);
    if (this.bits > 32) throw new Error(`"${cidr}": the prefix length must be at most 32`);
    const ip = ipv4ToInt(m[1]);
    this.base = ip - (ip % 2 ** (32 - this.bits));
    if (this.base !== ip)
      throw new Error(
        `"${cidr}" has host bits set (the network is ${intToIpv4(this.base)}/${this.bits})`,
      );
    if (blockBits < this.bits || blockBits > 30)
      throw new Error(
        `node CIDR mask size ${blockBits} must be between the cluster prefix (${this.bits}) and 30`,
      );
    this.count = 2 ** (blockBits - this.bits);
  }

  block(i: number): string {
    return `${intToIpv4(this.base + i * 2 ** (32 - this.blockBits))}/${this.blockBits}`;
  }

  /** The block index of `cidr`, or undefined when it is not one of ours. */
  indexOf(cidr: string): number | undefined {
    const m = /^([\d.]+)\/(\d+)$/.exec(cidr);
    if (!m || Number(m[2]) !== this.blockBits) return undefined;
    const off = ipv4ToInt(m[1]) - this.base;
    const size = 2 ** (32 - this.blockBits);
    return off >= 0 && off % size === 0 && off / size < this.count ? off / size : undefined;
  }
}

export class NodeIpamController extends Controller {
  readonly name = 'node-ipam';
  protected readonly kind = 'Node';
  /** Blocks written or being written, by node name. */
  private readonly taken = new Map<string, number>();
  private blocks?: CidrBlocks;

  private range(): CidrBlocks {
    const s = this.ctx.settings;
    return (this.blocks ??= new CidrBlocks(s.clusterCIDR, s.nodeCIDRMaskSize));
  }

  protected async reconcile(key: string): Promise<void> {
    const blocks = this.range();
    const node = this.ctx.store.get('Node', undefined, key)?.object as Node | undefined;
    if (!node) {
      this.taken.delete(key);
      return;
    }
    const have = node.spec?.podCIDR;
    if (have !== undefined) {
      const i = blocks.indexOf(have);
      if (i !== undefined) this.taken.set(key, i);
      return;
    }
    // Everything held, by the store or by a write in flight.
    const used = new Set(this.taken.values());
    for (const n of this.ctx.store.list({ kind: 'Node' })) {
      const c = (n.object as Node).spec?.podCIDR;
      const i = c === undefined ? undefined : blocks.indexOf(c);
      if (i !== undefined) used.add(i);
    }
    let free = -1;
    for (let i = 0; i < blocks.count && free < 0; i++) if (!used.has(i)) free = i;
    if (free < 0) {
      this.ctx.events.record(
        node as ApiObject,
        'node-ipam',
        'Warning',
        'CIDRNotAvailable',
        `no pod CIDR left in ${blocks.cidr} (${blocks.count} blocks of /${blocks.blockBits}): raise the cluster CIDR or the mask size`,
      );
      return;
    }
    this.taken.set(key, free);
    const cidr = blocks.block(free);
    try {
      await this.ctx.writer.update({
        ...node,
        spec: { ...node.spec, podCIDR: cidr, podCIDRs: [cidr] },
      } as ApiObject);
      this.ctx.events.record(
        node as ApiObject,
        'node-ipam',
        'Normal',
        'CIDRAssigned',
        `pod CIDR ${cidr} assigned`,
      );
    } catch (err) {
      this.taken.delete(key);
      throw err;
    }
  }
}
