import { strict as assert } from 'node:assert';
import { ApiObject } from '../../src/api/types';
import {
  NodeLifecycleController,
  UNREACHABLE_TAINT,
} from '../../src/master/controllers/node-lifecycle';
import { ControllerBed } from '../support/controller-bed';
import { DEFAULT_SETTINGS } from '../../src/master/controllers/runtime/controller';

function ready(bed: ControllerBed, name: string): string | undefined {
  const n = bed.get('Node', undefined, name)?.object as
    { status?: { conditions?: { type: string; status: string }[] } } | undefined;
  return n?.status?.conditions?.find((c) => c.type === 'Ready')?.status;
}

function taints(bed: ControllerBed, name: string): string[] {
  const n = bed.get('Node', undefined, name)!.object as { spec?: { taints?: { key: string }[] } };
  return (n.spec?.taints ?? []).map((t) => t.key);
}

function boundPod(bed: ControllerBed, name: string, node: string, tolerations?: unknown[]) {
  const p = bed.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      containers: [{ name: 'c', image: 'baton/busybox' }],
      ...(tolerations ? { tolerations } : {}),
    },
  } as ApiObject);
  bed.applyNow({ op: 'bind', namespace: 'default', name, uid: p.metadata.uid!, node });
  return p;
}

describe('node lifecycle controller', () => {
  let bed: ControllerBed;
  beforeEach(() => {
    // The times below are for a 10 s grace period and a 5 s eviction delay (not the defaults).
    bed = new ControllerBed({
      ...DEFAULT_SETTINGS,
      nodeGracePeriodMs: 10_000,
      podEvictionDelayMs: 5_000,
      resyncMs: 50,
    });
  });
  afterEach(() => bed.stop());

  it('marks a silent node NotReady with the unreachable taint after its grace period, not before', async () => {
    bed.addNode('n1');
    bed.start(new NodeLifecycleController(bed.ctx));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ready(bed, 'n1'), 'True');
    bed.advance(9_000);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ready(bed, 'n1'), 'True', 'still within its grace period');
    bed.advance(2_000);
    await bed.until('NotReady', () => ready(bed, 'n1') === 'Unknown');
    assert.deepEqual(taints(bed, 'n1'), [UNREACHABLE_TAINT]);
    // The event is recorded after the status write, in a batch of its own.
    await bed.until('a NodeNotReady event', () =>
      bed.list('Event').some((e) => e.reason === 'NodeNotReady'),
    );
  });

  it('evicts pods after the eviction delay, keeping pods that tolerate the taint', async () => {
    bed.addNode('n1');
    boundPod(bed, 'plain', 'n1');
    boundPod(bed, 'forever', 'n1', [
      { key: UNREACHABLE_TAINT, operator: 'Exists', effect: 'NoExecute' },
    ]);
    boundPod(bed, 'for-20s', 'n1', [
      { key: UNREACHABLE_TAINT, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 20 },
    ]);
    bed.start(new NodeLifecycleController(bed.ctx));
    bed.advance(11_000);
    await bed.until('NotReady', () => ready(bed, 'n1') === 'Unknown');
    await new Promise((r) => setTimeout(r, 150));
    assert.ok(bed.get('Pod', 'default', 'plain'), 'not before the eviction delay');
    bed.advance(6_000);
    await bed.until('plain evicted', () => !bed.get('Pod', 'default', 'plain'));
    assert.ok(bed.get('Pod', 'default', 'for-20s'));
    bed.advance(20_000);
    await bed.until('for-20s evicted', () => !bed.get('Pod', 'default', 'for-20s'));
    assert.ok(bed.get('Pod', 'default', 'forever'), 'tolerates the taint for good');
  });

  it('a node that reconnects is Ready again at once, without its taint', async () => {
    bed.addNode('n1');
    bed.start(new NodeLifecycleController(bed.ctx));
    bed.advance(11_000);
    await bed.until('NotReady', () => ready(bed, 'n1') === 'Unknown');
    bed.heartbeats.connect('n1');
    await bed.until('Ready', () => ready(bed, 'n1') === 'True', 1000);
    assert.deepEqual(taints(bed, 'n1'), []);
  });

  it('a new leader gives every node a full grace period from its election', async () => {
    bed.addNode('n1');
    bed.heartbeats.beats.clear(); // this leader never heard from n1
    bed.start(new NodeLifecycleController(bed.ctx));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(ready(bed, 'n1'), 'True');
    bed.advance(11_000);
    await bed.until('NotReady', () => ready(bed, 'n1') === 'Unknown');
  });
});
