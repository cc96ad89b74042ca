import assert from 'node:assert/strict';
import { ApiObject } from '../../src/api/types';
import {
  LAST_APPLIED,
  mergeForApply,
  recordLastApplied,
  validateJson,
} from '../../src/master/admission';

interface Manifest {
  labels: Record<string, string>;
  replicas?: number;
  image?: string;
}

const manifest = ({ labels, replicas, image = 'nginx:1.27' }: Manifest) =>
  JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', labels },
    spec: {
      ...(replicas === undefined ? {} : { replicas }),
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'web', image }] },
      },
    },
  });

/** What `apply` hands to mergeForApply: the manifest recorded, validated and defaulted. */
const applied = (m: Manifest) => validateJson(recordLastApplied(manifest(m))).object;

/** A stored object as the server keeps it: system fields, status, a controller's annotation. */
function stored(o: ApiObject, extra: (o: ApiObject) => void = () => {}): ApiObject {
  const s = structuredClone(o);
  Object.assign(s.metadata, {
    uid: '6b1f4f2e-0000-4000-8000-000000000001',
    resourceVersion: '7',
    generation: 1,
    creationTimestamp: '2026-11-23T00:00:00Z',
  });
  s.metadata.annotations = { ...s.metadata.annotations, 'deployment.kubernetes.io/revision': '1' };
  s.status = { observedGeneration: 1, replicas: 2 };
  extra(s);
  return s;
}

const spec = (o: ApiObject) =>
  o.spec as { replicas: number; template: { spec: { containers: { image: string }[] } } };

describe('apply: a three-way merge with the last applied manifest, as kubectl does', () => {
  const first: Manifest = { labels: { app: 'web', tier: 'front' } };

  it('records the manifest as given, without defaults or the annotation itself', () => {
    const o = applied(first);
    const recorded = JSON.parse(o.metadata.annotations![LAST_APPLIED]!) as {
      metadata: { annotations?: unknown };
      spec: { replicas?: number; strategy?: unknown };
    };
    assert.equal(recorded.spec.replicas, undefined);
    assert.equal(recorded.spec.strategy, undefined);
    assert.equal(recorded.metadata.annotations, undefined);
    // Re-recording an object that carries the annotation does not nest it.
    const again = JSON.parse(recordLastApplied(JSON.stringify(o))) as ApiObject;
    assert.ok(!again.metadata.annotations![LAST_APPLIED]!.includes(LAST_APPLIED));
  });

  it('is unchanged when the same manifest comes again, whatever controllers added', () => {
    const cur = stored(applied(first));
    assert.equal(mergeForApply(cur, applied(first)), undefined);
  });

  it('keeps fields nobody applied: a controller annotation, a scale of a manifest without replicas', () => {
    const cur = stored(applied(first), (s) => (spec(s).replicas = 5));
    assert.equal(mergeForApply(cur, applied(first)), undefined);
    const next = mergeForApply(cur, applied({ ...first, image: 'nginx:1.28' }))!;
    assert.equal(spec(next).replicas, 5);
    assert.equal(spec(next).template.spec.containers[0]!.image, 'nginx:1.28');
    assert.equal(next.metadata.annotations!['deployment.kubernetes.io/revision'], '1');
    assert.deepEqual(next.status, cur.status);
    assert.equal(next.metadata.uid, cur.metadata.uid);
    assert.equal(next.metadata.resourceVersion, '7');
  });

  it('removes what the previous manifest set and this one drops', () => {
    const cur = stored(applied({ ...first, replicas: 4 }));
    const next = mergeForApply(cur, applied({ labels: { app: 'web' } }))!;
    assert.deepEqual(next.metadata.labels, { app: 'web' });
    // replicas was applied before and is gone now: back to the default.
    assert.equal(spec(next).replicas, 1);
    assert.equal(
      JSON.parse(next.metadata.annotations![LAST_APPLIED]!).metadata.labels.tier,
      undefined,
    );
  });

  it('leaves fields of an object made by create alone unless the manifest sets them', () => {
    const created = validateJson(manifest({ labels: { app: 'web', owner: 'ops' } })).object;
    const cur = stored(created);
    const next = mergeForApply(cur, applied({ labels: { app: 'web', tier: 'front' } }))!;
    assert.deepEqual(next.metadata.labels, { app: 'web', owner: 'ops', tier: 'front' });
    assert.ok(next.metadata.annotations![LAST_APPLIED]);
  });
});
