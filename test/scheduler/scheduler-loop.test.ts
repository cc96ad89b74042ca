import { strict as assert } from 'node:assert';
import { ApiObject } from '../../src/api/types';
import { Scheduler } from '../../src/master/scheduler/scheduler';
import { ControllerBed } from '../support/controller-bed';

function pod(
  name: string,
  spec: Record<string, unknown> = {},
  labels: Record<string, string> = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels },
    spec: {
      containers: [
        { name: 'c', image: 'baton/busybox', resources: { requests: { cpu: '1', memory: '1Gi' } } },
      ],
      ...spec,
    },
  } as unknown as ApiObject;
}

const nodeOf = (bed: ControllerBed, name: string) =>
  (bed.get('Pod', 'default', name)?.object.spec as { nodeName?: string }).nodeName;

describe('scheduler loop', () => {
  let bed: ControllerBed;
  let scheduler: Scheduler;
  beforeEach(() => {
    bed = new ControllerBed();
    scheduler = new Scheduler(bed.ctx);
  });
  afterEach(() => bed.stop());

  it('binds pods, counting each one at once so a full node is not chosen twice', async () => {
    bed.addNode('small', { cpu: '2', memory: '4Gi' });
    bed.addNode('big', { cpu: '8', memory: '16Gi' });
    bed.start(scheduler);
    for (let i = 0; i < 10; i++) bed.create(pod(`p${i}`));
    await bed.until('all bound', () => [...Array(10).keys()].every((i) => nodeOf(bed, `p${i}`)));
    const counts = new Map<string, number>();
    for (let i = 0; i < 10; i++)
      counts.set(nodeOf(bed, `p${i}`)!, (counts.get(nodeOf(bed, `p${i}`)!) ?? 0) + 1);
    assert.equal(counts.get('small'), 2);
    assert.equal(counts.get('big'), 8);
    // Events are recorded once the binding is committed.
    await bed.until(
      'a Scheduled event per pod',
      () => bed.list('Event').filter((e) => e.reason === 'Scheduled').length === 10,
    );
    assert.ok(
      bed
        .list('Event')
        .some((e) => /^Successfully assigned default\/p\d to (big|small)$/.test(String(e.message))),
    );
  });

  it('batches the bindings of many pods into few Raft entries', async () => {
    bed.addNode('n1', { cpu: '1000', memory: '1000Gi', pods: 1000 });
    for (let i = 0; i < 300; i++) bed.create(pod(`p${i}`));
    bed.start(scheduler);
    await bed.until('all bound', () => [...Array(300).keys()].every((i) => nodeOf(bed, `p${i}`)));
    const binds = bed.proposed.filter((c) => c.op === 'bind').length;
    assert.equal(binds, 300);
    // The events are written after their bindings, in entries of their own: count those too.
    await bed.until(
      'a Scheduled event per pod',
      () => bed.list('Event').filter((e) => e.reason === 'Scheduled').length === 300,
    );
    assert.ok(bed.entries < 60, `${bed.entries} entries for 300 bindings (and their events)`);
  });

  it('leaves a pod that fits nowhere Pending with the reason per filter, and places it when a node fits', async () => {
    bed.addNode('a', { cpu: '1', memory: '1Gi' });
    bed.addNode('b', {
      cpu: '8',
      memory: '16Gi',
      taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }],
    });
    bed.start(scheduler);
    bed.create(
      pod('big', {
        containers: [{ name: 'c', image: 'x', resources: { requests: { cpu: '4' } } }],
      }),
    );
    await bed.until('FailedScheduling', () =>
      bed.list('Event').some((e) => e.reason === 'FailedScheduling'),
    );
    const ev = bed.list('Event').find((e) => e.reason === 'FailedScheduling')!;
    assert.match(
      String(ev.message),
      /^0\/2 nodes are available: 1 Insufficient cpu, 1 node\(s\) had untolerated taint \{gpu: true\}/,
    );
    await bed.until('condition', () => {
      const st = bed.get('Pod', 'default', 'big')!.object.status as
        { conditions?: { type: string; reason?: string }[] } | undefined;
      return (
        st?.conditions?.some((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable') ??
        false
      );
    });
    assert.equal(nodeOf(bed, 'big'), undefined);
    bed.addNode('c', { cpu: '8', memory: '16Gi' });
    await bed.until('placed on c', () => nodeOf(bed, 'big') === 'c', 3000);
  });

  it("frees a deleted pod's resources for the next pod", async () => {
    bed.addNode('n', { cpu: '1', memory: '2Gi' });
    bed.start(scheduler);
    const first = bed.create(pod('first'));
    await bed.until('first bound', () => nodeOf(bed, 'first') === 'n');
    bed.create(pod('second'));
    await bed.until('second unschedulable', () =>
      bed.list('Event').some((e) => e.reason === 'FailedScheduling'),
    );
    bed.remove(first);
    await bed.until('second bound', () => nodeOf(bed, 'second') === 'n', 3000);
  });

  it('ignores pods for another scheduler and pods already bound', async () => {
    bed.addNode('n');
    bed.start(scheduler);
    bed.create(pod('other', { schedulerName: 'someone-else' }));
    bed.create(pod('pinned', { nodeName: 'elsewhere' }));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(nodeOf(bed, 'other'), undefined);
    assert.equal(nodeOf(bed, 'pinned'), 'elsewhere');
    assert.equal(bed.proposed.filter((c) => c.op === 'bind').length, 0);
  });
});
