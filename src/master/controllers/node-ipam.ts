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
import { CidrBlocks } from '../../common/cidr';
import { Controller } from './runtime/controller';

export { CidrBlocks };

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
