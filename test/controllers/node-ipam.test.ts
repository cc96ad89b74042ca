import { strict as assert } from 'node:assert';
import { ApiObject } from '../../src/api/types';
import { CidrBlocks, NodeIpamController } from '../../src/master/controllers/node-ipam';
import { DEFAULT_SETTINGS } from '../../src/master/controllers/runtime/controller';
import { ControllerBed } from '../support/controller-bed';

const node = (name: string, podCIDR?: string) =>
  ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    spec: podCIDR ? { podCIDR, podCIDRs: [podCIDR] } : {},
  }) as ApiObject;

describe('CIDR blocks', () => {
  it('splits a cluster CIDR into node blocks and finds a block again', () => {
    const b = new CidrBlocks('10.244.0.0/16', 24);
    assert.equal(b.count, 256);
    assert.equal(b.block(0), '10.244.0.0/24');
    assert.equal(b.block(1), '10.244.1.0/24');
    assert.equal(b.block(255), '10.244.255.0/24');
    assert.equal(b.indexOf('10.244.7.0/24'), 7);
    assert.equal(b.indexOf('10.245.0.0/24'), undefined, 'outside the range');
    assert.equal(b.indexOf('10.244.7.128/24'), undefined, 'not a block boundary');
    assert.equal(b.indexOf('10.244.7.0/25'), undefined, 'another size');
    assert.equal(new CidrBlocks('192.168.0.0/22', 26).count, 16);
  });

  it('refuses bad ranges with the reason', () => {
    assert.throws(() => new CidrBlocks('10.244.1.0/16', 24), /host bits set .*10\.244\.0\.0\/16/);
    assert.throws(
      () => new CidrBlocks('10.244.0.0/16', 12),
      /between the cluster prefix \(16\) and 30/,
    );
    assert.throws(() => new CidrBlocks('10.300.0.0/16', 24), /not an IPv4 address/);
    assert.throws(() => new CidrBlocks('fd00::/64', 80), /not an IPv4 CIDR/);
  });
});

describe('node IPAM controller', () => {
  let bed: ControllerBed;
  afterEach(() => bed.stop());

  const cidrOf = (name: string) =>
    (bed.get('Node', undefined, name)?.object.spec as { podCIDR?: string } | undefined)?.podCIDR;

  it('gives every node its own block, keeps the ones it has, and reuses a freed block', async () => {
    bed = new ControllerBed({ ...DEFAULT_SETTINGS, resyncMs: 100, clusterCIDR: '10.9.0.0/16' });
    bed.create(node('kept', '10.9.0.0/24'));
    for (const n of ['a', 'b', 'c']) bed.create(node(n));
    bed.start(new NodeIpamController(bed.ctx));
    await bed.until('three CIDRs', () => ['a', 'b', 'c'].every((n) => cidrOf(n)));
    const all = ['kept', 'a', 'b', 'c'].map(cidrOf);
    assert.equal(new Set(all).size, 4, `distinct blocks: ${all.join(' ')}`);
    assert.equal(cidrOf('kept'), '10.9.0.0/24');
    assert.deepEqual(['a', 'b', 'c'].map(cidrOf).sort(), [
      '10.9.1.0/24',
      '10.9.2.0/24',
      '10.9.3.0/24',
    ]);
    const freed = cidrOf('b')!;
    bed.applyNow({ op: 'delete', kind: 'Node', name: 'b', propagation: 'Background' } as never);
    bed.create(node('d'));
    await bed.until('d gets the freed block', () => cidrOf('d') === freed);
  });

  it('says so in an event when the range is exhausted', async () => {
    bed = new ControllerBed({
      ...DEFAULT_SETTINGS,
      resyncMs: 100,
      clusterCIDR: '10.9.0.0/24',
      nodeCIDRMaskSize: 25,
    });
    for (const n of ['a', 'b', 'c']) bed.create(node(n));
    bed.start(new NodeIpamController(bed.ctx));
    await bed.until('an event about the node left without a block', () =>
      bed.store
        .list({ kind: 'Event' })
        .some(
          (e) =>
            e.object.reason === 'CIDRNotAvailable' &&
            /no pod CIDR left in 10\.9\.0\.0\/24 \(2 blocks of \/25\)/.test(
              e.object.message as string,
            ),
        ),
    );
    assert.equal(['a', 'b', 'c'].filter((n) => cidrOf(n)).length, 2);
  });
});
