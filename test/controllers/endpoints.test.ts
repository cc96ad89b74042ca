import { strict as assert } from 'node:assert';
import { ApiObject } from '../../src/api/types';
import { EndpointsController } from '../../src/master/controllers/endpoints';
import { ControllerBed } from '../support/controller-bed';

type Subsets = {
  addresses?: { ip: string; targetRef?: { name: string } }[];
  notReadyAddresses?: { ip: string }[];
  ports?: { name?: string; port: number; protocol: string }[];
}[];

function service(name: string, selector: Record<string, string> | undefined, ports: unknown[]) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: { ...(selector ? { selector } : {}), ports },
  } as unknown as ApiObject;
}

function pod(bed: ControllerBed, name: string, labels: Record<string, string>, port = 8080) {
  const p = bed.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels },
    spec: {
      containers: [
        { name: 'c', image: 'baton/busybox', ports: [{ name: 'http', containerPort: port }] },
      ],
    },
  } as ApiObject);
  bed.applyNow({ op: 'bind', namespace: 'default', name, uid: p.metadata.uid!, node: 'n1' });
  return p;
}

describe('endpoints controller', () => {
  let bed: ControllerBed;
  beforeEach(() => {
    bed = new ControllerBed();
    bed.start(new EndpointsController(bed.ctx));
  });
  afterEach(() => bed.stop());

  const subsets = (name: string) =>
    (bed.get('Endpoints', 'default', name)?.object.subsets ?? []) as Subsets;

  it('lists ready pods under addresses and the others under notReadyAddresses, with named ports resolved', async () => {
    bed.create(service('web', { app: 'web' }, [{ name: 'http', port: 80, targetPort: 'http' }]));
    const a = pod(bed, 'a', { app: 'web' });
    const b = pod(bed, 'b', { app: 'web' });
    pod(bed, 'other', { app: 'db' });
    bed.markRunning(a, true, '10.1.0.1');
    bed.markRunning(b, false, '10.1.0.2');
    await bed.until('endpoints', () => subsets('web')[0]?.notReadyAddresses?.length === 1);
    assert.deepEqual(
      subsets('web').map((s) => ({
        ready: s.addresses?.map((x) => x.ip),
        notReady: s.notReadyAddresses?.map((x) => x.ip),
        ports: s.ports,
      })),
      [
        {
          ready: ['10.1.0.1'],
          notReady: ['10.1.0.2'],
          ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
        },
      ],
    );
    assert.equal(subsets('web')[0].addresses?.[0].targetRef?.name, 'a');
  });

  it('follows readiness changes and pod deletion', async () => {
    bed.create(service('web', { app: 'web' }, [{ port: 80, targetPort: 8080 }]));
    const a = pod(bed, 'a', { app: 'web' });
    bed.markRunning(a, true, '10.1.0.1');
    await bed.until('ready', () => subsets('web')[0]?.addresses?.length === 1);
    bed.markRunning(a, false, '10.1.0.1');
    await bed.until('not ready', () => subsets('web')[0]?.notReadyAddresses?.length === 1);
    assert.equal(subsets('web')[0].addresses, undefined);
    bed.remove(bed.get('Pod', 'default', 'a')!.object);
    await bed.until('empty', () => subsets('web').length === 0);
  });

  it('groups pods whose named target port resolves differently into separate subsets', async () => {
    bed.create(service('web', { app: 'web' }, [{ port: 80, targetPort: 'http' }]));
    bed.markRunning(pod(bed, 'a', { app: 'web' }, 8080), true, '10.1.0.1');
    bed.markRunning(pod(bed, 'b', { app: 'web' }, 9090), true, '10.1.0.2');
    await bed.until('two subsets', () => subsets('web').length === 2);
    assert.deepEqual(
      subsets('web')
        .map((s) => s.ports?.[0].port)
        .sort(),
      [8080, 9090],
    );
  });

  it('leaves selector-less services alone and deletes Endpoints with their Service', async () => {
    bed.create(service('manual', undefined, [{ port: 80 }]));
    const web = bed.create(service('web', { app: 'web' }, [{ port: 80 }]));
    await bed.until('web endpoints', () => !!bed.get('Endpoints', 'default', 'web'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(bed.get('Endpoints', 'default', 'manual'), undefined);
    bed.remove(web);
    assert.equal(bed.get('Endpoints', 'default', 'web'), undefined);
  });
});
