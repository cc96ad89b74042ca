import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { ApiObject } from '../../src/api/types';
import { ApiError } from '../../src/master/api-error';
import { validateJson } from '../../src/master/admission';
import { parsePortRange, ServiceAllocator } from '../../src/master/service-alloc';
import { ClusterStore } from '../../src/master/store/cluster-store';
import { CommandResult } from '../../src/master/store/commands';

let uid = 0;
function service(name: string, spec: Record<string, unknown> = {}): ApiObject {
  const o = validateJson(
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name },
      spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec },
    }),
  ).object;
  o.metadata.uid = `uid-${++uid}`;
  return o;
}

function commit(store: ClusterStore, cmd: unknown): CommandResult {
  return store.apply(Buffer.from(JSON.stringify(cmd)), store.revision + 1);
}

/** Admits and commits a create, as the API server does; returns the stored Service. */
function create(store: ClusterStore, alloc: ServiceAllocator, o: ApiObject) {
  const release = alloc.admit(store, o);
  try {
    const r = commit(store, { op: 'create', object: o });
    assert.ok(r.ok, r.ok ? '' : r.message);
    return r.object as unknown as { spec: { clusterIP: string; ports: { nodePort?: number }[] } };
  } finally {
    release();
  }
}

function update(store: ClusterStore, alloc: ServiceAllocator, o: ApiObject) {
  const cur = store.get('Service', 'default', o.metadata.name)!.object;
  const next = { ...o, metadata: { ...o.metadata, uid: cur.metadata.uid } };
  const release = alloc.admit(store, next, cur);
  try {
    const r = commit(store, { op: 'update', object: next, uid: cur.metadata.uid });
    assert.ok(r.ok, r.ok ? '' : r.message);
    return r.object as unknown as {
      spec: { clusterIP: string; ports: { nodePort?: number }[] };
    };
  } finally {
    release();
  }
}

const refused = (fn: () => unknown, code: status, message: RegExp) =>
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ApiError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });

describe('service addresses and node ports', () => {
  it('hands out distinct ClusterIPs from the CIDR, then says the range is full', () => {
    const store = new ClusterStore();
    // A /29: 8 addresses, minus the network and broadcast ones.
    const alloc = new ServiceAllocator({
      serviceCIDR: '10.96.0.0/29',
      nodePortRange: '30000-30002',
    });
    const ips = new Set<string>();
    for (let i = 0; i < 6; i++) ips.add(create(store, alloc, service(`s${i}`)).spec.clusterIP);
    assert.deepEqual([...ips].sort(), [
      '10.96.0.1',
      '10.96.0.2',
      '10.96.0.3',
      '10.96.0.4',
      '10.96.0.5',
      '10.96.0.6',
    ]);
    refused(
      () => alloc.admit(store, service('s6')),
      status.RESOURCE_EXHAUSTED,
      /spec\.clusterIP: no address left in the service CIDR 10\.96\.0\.0\/29/,
    );
    // Deleting one frees its address.
    assert.ok(
      commit(store, { op: 'delete', kind: 'Service', namespace: 'default', name: 's2' }).ok,
    );
    assert.ok(ips.has(create(store, alloc, service('s6')).spec.clusterIP));
  });

  it('reserves what it handed out until the write is done: concurrent creates never collide', () => {
    const store = new ClusterStore();
    // The same random pick every time: only the reservation keeps them apart.
    const alloc = new ServiceAllocator(
      { serviceCIDR: '10.96.0.0/24', nodePortRange: '30000-30010' },
      () => 0,
    );
    const a = service('a', { type: 'NodePort' });
    const b = service('b', { type: 'NodePort' });
    const ra = alloc.admit(store, a);
    const rb = alloc.admit(store, b);
    const spec = (o: ApiObject) => o.spec as { clusterIP: string; ports: { nodePort: number }[] };
    assert.notEqual(spec(a).clusterIP, spec(b).clusterIP);
    assert.notEqual(spec(a).ports[0].nodePort, spec(b).ports[0].nodePort);
    ra();
    rb();
  });

  it('honours a requested ClusterIP and node port, refusing one outside the range or taken', () => {
    const store = new ClusterStore();
    const alloc = new ServiceAllocator({
      serviceCIDR: '10.96.0.0/16',
      nodePortRange: '30000-32767',
    });
    const got = create(
      store,
      alloc,
      service('dns', {
        clusterIP: '10.96.0.10',
        type: 'NodePort',
        ports: [{ port: 53, nodePort: 30053 }],
      }),
    );
    assert.equal(got.spec.clusterIP, '10.96.0.10');
    assert.equal(got.spec.ports[0].nodePort, 30053);
    refused(
      () => alloc.admit(store, service('x', { clusterIP: '10.96.0.10' })),
      status.INVALID_ARGUMENT,
      /spec\.clusterIP: Invalid value "10\.96\.0\.10": provided IP is already allocated/,
    );
    refused(
      () => alloc.admit(store, service('x', { clusterIP: '192.168.1.1' })),
      status.INVALID_ARGUMENT,
      /spec\.clusterIP: Invalid value "192\.168\.1\.1": not in the service CIDR 10\.96\.0\.0\/16/,
    );
    refused(
      () =>
        alloc.admit(
          store,
          service('x', { type: 'NodePort', ports: [{ port: 80, nodePort: 30053 }] }),
        ),
      status.INVALID_ARGUMENT,
      /spec\.ports\[0\]\.nodePort: Invalid value 30053: provided port is already allocated/,
    );
    refused(
      () =>
        alloc.admit(store, service('x', { type: 'NodePort', ports: [{ port: 80, nodePort: 80 }] })),
      status.INVALID_ARGUMENT,
      /spec\.ports\[0\]\.nodePort: Invalid value 80: provided port is not in the valid range\. The range of valid ports is 30000-32767/,
    );
    // A refused admission reserved nothing: the same IP is still free for a good request.
    assert.equal(
      create(store, alloc, service('y', { clusterIP: '10.96.0.11' })).spec.clusterIP,
      '10.96.0.11',
    );
  });

  it('keeps the ClusterIP and node ports through updates; the ClusterIP is immutable', () => {
    const store = new ClusterStore();
    const alloc = new ServiceAllocator({
      serviceCIDR: '10.96.0.0/16',
      nodePortRange: '30000-32767',
    });
    const first = create(store, alloc, service('web', { type: 'NodePort' }));
    // An update that names neither (a manifest edited by hand) keeps both.
    const second = update(store, alloc, service('web', { type: 'NodePort' }));
    assert.equal(second.spec.clusterIP, first.spec.clusterIP);
    assert.equal(second.spec.ports[0].nodePort, first.spec.ports[0].nodePort);
    refused(
      () =>
        alloc.admit(
          store,
          service('web', { clusterIP: '10.96.9.9' }),
          store.get('Service', 'default', 'web')!.object,
        ),
      status.INVALID_ARGUMENT,
      /spec\.clusterIP: Invalid value "10\.96\.9\.9": field is immutable/,
    );
    // Back to ClusterIP: the node port is given up, and another service may take it.
    const third = update(store, alloc, service('web'));
    assert.equal(third.spec.ports[0].nodePort, undefined);
    const port = first.spec.ports[0].nodePort!;
    const other = create(
      store,
      alloc,
      service('other', { type: 'NodePort', ports: [{ port: 80, nodePort: port }] }),
    );
    assert.equal(other.spec.ports[0].nodePort, port);
  });

  it('gives headless services no address', () => {
    const store = new ClusterStore();
    const alloc = new ServiceAllocator({
      serviceCIDR: '10.96.0.0/30',
      nodePortRange: '30000-30001',
    });
    for (let i = 0; i < 5; i++)
      assert.equal(
        create(store, alloc, service(`h${i}`, { clusterIP: 'None' })).spec.clusterIP,
        'None',
      );
  });

  it('the store refuses a second holder of an address on every replica, whoever admitted it', () => {
    const store = new ClusterStore();
    const a = service('a', { clusterIP: '10.96.0.10' });
    assert.ok(commit(store, { op: 'create', object: a }).ok);
    const r = commit(store, { op: 'create', object: service('b', { clusterIP: '10.96.0.10' }) });
    assert.ok(!r.ok);
    assert.equal(r.code, 'INVALID');
    assert.match(
      r.message,
      /spec\.clusterIP: Invalid value "10\.96\.0\.10": provided IP is already allocated \(to Service "default\/a"\)/,
    );
    assert.equal(store.get('Service', 'default', 'b'), undefined);
    // The holder itself may be updated with its own address.
    const cur = store.get('Service', 'default', 'a')!.object;
    assert.ok(
      commit(store, {
        op: 'update',
        object: { ...cur, metadata: { ...cur.metadata, labels: { x: 'y' } } },
        uid: cur.metadata.uid,
      }).ok,
    );
  });

  it('bad ranges are refused with the reason', () => {
    assert.throws(
      () => new ServiceAllocator({ serviceCIDR: '10.96.0.1/12', nodePortRange: '1-2' }),
      /host bits set/,
    );
    assert.throws(
      () => new ServiceAllocator({ serviceCIDR: '10.96.0.0/31', nodePortRange: '1-2' }),
      /too small/,
    );
    assert.throws(() => parsePortRange('32767-30000'), /min <= max/);
    assert.throws(() => parsePortRange('30000'), /not a port range/);
  });
});
