import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ApiObject } from '../../src/api/types';
import { ClusterStore } from '../../src/master/store/cluster-store';
import { carriesSealedKind } from '../../src/master/store/command-codec';
import { Command, CommandResult } from '../../src/master/store/commands';
import { RequestLog } from '../../src/master/store/request-log';
import { TooOldError } from '../../src/master/store/watch-hub';

const ns = (name: string): ApiObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, uid: `uid-ns-${name}` },
  spec: {},
});
const cm = (
  name: string,
  data: Record<string, string> = {},
  extra: Partial<ApiObject['metadata']> = {},
  namespace = 'default',
): ApiObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace, uid: `uid-cm-${namespace}-${name}`, ...extra },
  data,
});
const rs = (name: string, replicas = 1, namespace = 'default'): ApiObject => ({
  apiVersion: 'apps/v1',
  kind: 'ReplicaSet',
  metadata: { name, namespace, uid: `uid-rs-${namespace}-${name}`, labels: { app: name } },
  spec: { replicas },
});
const pod = (name: string, owner?: ApiObject, cpu = '100m', namespace = 'default'): ApiObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name,
    namespace,
    uid: `uid-pod-${namespace}-${name}`,
    labels: { app: owner?.metadata.name ?? 'none' },
    ownerReferences: owner
      ? [
          {
            apiVersion: owner.apiVersion,
            kind: owner.kind,
            name: owner.metadata.name,
            uid: owner.metadata.uid!,
            controller: true,
          },
        ]
      : undefined,
  },
  spec: {
    containers: [
      { name: 'c', image: 'busybox', resources: { requests: { cpu }, limits: { cpu } } },
    ],
  },
});

/** Applies commands at consecutive indexes and returns the results. */
function run(store: ClusterStore, cmds: Command[], start = store.revision + 1): CommandResult[] {
  return cmds.map((c, i) => store.apply(Buffer.from(JSON.stringify(c)), start + i));
}
const ok = (r: CommandResult) => {
  assert.ok(r.ok, r.ok ? '' : `${r.code}: ${r.message}`);
  return r;
};
const fail = (r: CommandResult, code: string, message: RegExp) => {
  assert.ok(!r.ok, 'expected a failure');
  assert.equal(r.code, code);
  assert.match(r.message, message);
};

describe('master store: applying commands', () => {
  it('stamps resourceVersion with the Raft index, bumps generation only on spec changes', () => {
    const s = new ClusterStore();
    run(s, [{ op: 'create', object: rs('web') }]);
    const created = s.get('ReplicaSet', 'default', 'web')!;
    assert.equal(created.object.metadata.resourceVersion, '1');
    assert.equal(created.object.metadata.generation, 1);
    // A label change is not a spec change.
    const relabeled = {
      ...rs('web'),
      metadata: { ...rs('web').metadata, labels: { app: 'web', tier: 'x' } },
    };
    ok(
      run(s, [
        { op: 'update', object: relabeled, uid: 'uid-rs-default-web', expectedRevision: 1 },
      ])[0],
    );
    assert.equal(s.get('ReplicaSet', 'default', 'web')!.object.metadata.generation, 1);
    ok(run(s, [{ op: 'update', object: rs('web', 3), uid: 'uid-rs-default-web' }])[0]);
    assert.equal(s.get('ReplicaSet', 'default', 'web')!.object.metadata.generation, 2);
    // Status updates leave spec and generation alone; a main update keeps the status.
    ok(
      run(s, [
        {
          op: 'update',
          object: { ...rs('web', 99), status: { replicas: 3 } },
          uid: 'uid-rs-default-web',
          subresource: 'status',
        },
      ])[0],
    );
    const afterStatus = s.get('ReplicaSet', 'default', 'web')!.object;
    assert.deepEqual(afterStatus.spec, { replicas: 3 });
    assert.deepEqual(afterStatus.status, { replicas: 3 });
    assert.equal(afterStatus.metadata.generation, 2);
    ok(run(s, [{ op: 'update', object: rs('web', 4), uid: 'uid-rs-default-web' }])[0]);
    assert.deepEqual(s.get('ReplicaSet', 'default', 'web')!.object.status, { replicas: 3 });
    assert.equal(s.revision, 5);
  });

  it('refuses a stale resourceVersion, a recreated object and a duplicate, changing nothing', () => {
    const s = new ClusterStore();
    run(s, [
      { op: 'create', object: cm('a', { k: '1' }) },
      { op: 'update', object: cm('a', { k: '2' }), uid: 'uid-cm-default-a' },
    ]);
    const before = Buffer.from(s.snapshot()).toString();
    fail(
      run(s, [
        { op: 'update', object: cm('a', { k: '3' }), uid: 'uid-cm-default-a', expectedRevision: 1 },
      ])[0],
      'CONFLICT',
      /you sent resourceVersion 1, it is now 2/,
    );
    fail(
      run(s, [{ op: 'update', object: cm('a', { k: '3' }), uid: 'other-uid' }])[0],
      'NOT_FOUND',
      /deleted and created again/,
    );
    fail(
      run(s, [{ op: 'create', object: cm('a') }])[0],
      'ALREADY_EXISTS',
      /ConfigMap "a" in namespace "default" already exists/,
    );
    fail(
      run(s, [{ op: 'create', object: cm('b', {}, {}, 'nope') }])[0],
      'NOT_FOUND',
      /namespace "nope" not found/,
    );
    fail(
      run(s, [
        {
          op: 'delete',
          kind: 'ConfigMap',
          namespace: 'default',
          name: 'a',
          expectedRevision: 1,
          propagation: 'Background',
        },
      ])[0],
      'CONFLICT',
      /resourceVersion is 2, not 1/,
    );
    assert.equal(
      Buffer.from(s.snapshot())
        .toString()
        .replace(/"revision":\d+/, ''),
      before.replace(/"revision":\d+/, ''),
    );
  });

  it('deletes dependents with their owner, or orphans them, and empties a deleted namespace', () => {
    const s = new ClusterStore();
    const owner = rs('web');
    run(s, [
      { op: 'create', object: owner },
      { op: 'create', object: pod('p1', owner) },
      { op: 'create', object: pod('p2', owner) },
    ]);
    const r = ok(
      run(s, [
        {
          op: 'delete',
          kind: 'ReplicaSet',
          namespace: 'default',
          name: 'web',
          propagation: 'Background',
        },
      ])[0],
    );
    assert.ok(r.ok);
    assert.deepEqual([...r.alsoDeleted].sort(), ['Pod/default/p1', 'Pod/default/p2']);
    assert.equal(s.list({ kind: 'Pod' }).length, 0);

    run(s, [
      { op: 'create', object: owner },
      { op: 'create', object: pod('p3', owner) },
    ]);
    ok(
      run(s, [
        {
          op: 'delete',
          kind: 'ReplicaSet',
          namespace: 'default',
          name: 'web',
          propagation: 'Orphan',
        },
      ])[0],
    );
    const orphan = s.get('Pod', 'default', 'p3')!.object;
    assert.equal(orphan.metadata.ownerReferences, undefined);

    run(s, [
      { op: 'create', object: ns('team') },
      { op: 'create', object: cm('x', {}, {}, 'team') },
      { op: 'create', object: rs('y', 1, 'team') },
    ]);
    const d = ok(
      run(s, [{ op: 'delete', kind: 'Namespace', name: 'team', propagation: 'Background' }])[0],
    );
    assert.ok(d.ok);
    assert.deepEqual([...d.alsoDeleted].sort(), ['ConfigMap/team/x', 'ReplicaSet/team/y']);
    assert.equal(s.list({ namespace: 'team' }).length, 0);
    // The default namespace may not be deleted, before or after its object exists.
    fail(
      run(s, [{ op: 'delete', kind: 'Namespace', name: 'default', propagation: 'Background' }])[0],
      'FORBIDDEN',
      /may not be deleted/,
    );
    run(s, [{ op: 'create', object: ns('default') }]);
    fail(
      run(s, [{ op: 'delete', kind: 'Namespace', name: 'default', propagation: 'Background' }])[0],
      'FORBIDDEN',
      /may not be deleted/,
    );
  });

  it('refuses a dependent whose owner does not exist', () => {
    const s = new ClusterStore();
    fail(
      run(s, [{ op: 'create', object: pod('p', rs('ghost')) }])[0],
      'NOT_FOUND',
      /ownerReferences\[0\]: owner ReplicaSet "ghost"/,
    );
  });

  it('applies a batch all or nothing', () => {
    const s = new ClusterStore();
    run(s, [{ op: 'create', object: cm('exists') }]);
    const r = run(s, [
      {
        op: 'batch',
        commands: [
          { op: 'create', object: cm('new') },
          { op: 'create', object: cm('exists') },
        ],
      },
    ])[0];
    fail(r, 'ALREADY_EXISTS', /"exists"/);
    assert.equal(s.get('ConfigMap', 'default', 'new'), undefined);
    ok(
      run(s, [
        {
          op: 'batch',
          commands: [
            { op: 'create', object: cm('new') },
            { op: 'create', object: cm('new2') },
          ],
        },
      ])[0],
    );
    assert.equal(s.get('ConfigMap', 'default', 'new2')!.revision, 3);
  });

  it('enforces ResourceQuota counts and compute requests exactly at the limit', () => {
    const s = new ClusterStore();
    const quota: ApiObject = {
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'compute', namespace: 'default', uid: 'q' },
      spec: { hard: { pods: '2', 'requests.cpu': '250m' } },
    };
    run(s, [{ op: 'create', object: quota }]);
    ok(run(s, [{ op: 'create', object: pod('a', undefined, '100m') }])[0]);
    ok(run(s, [{ op: 'create', object: pod('b', undefined, '150m') }])[0]);
    fail(
      run(s, [{ op: 'create', object: pod('c', undefined, '1m') }])[0],
      'QUOTA',
      /exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2/,
    );
    run(s, [
      { op: 'delete', kind: 'Pod', namespace: 'default', name: 'b', propagation: 'Background' },
    ]);
    fail(
      run(s, [{ op: 'create', object: pod('c', undefined, '200m') }])[0],
      'QUOTA',
      /requested: requests.cpu=0.2, used: requests.cpu=0.1, limited: requests.cpu=250m/,
    );
    const noRequests = pod('d');
    (noRequests.spec as { containers: { resources?: unknown }[] }).containers[0].resources =
      undefined;
    fail(run(s, [{ op: 'create', object: noRequests }])[0], 'QUOTA', /must specify requests.cpu/);
  });

  it('keeps a bounded watch history and answers "too old" beyond it', () => {
    const s = new ClusterStore({ watchHistory: 3 });
    run(
      s,
      [1, 2, 3, 4, 5].map((i) => ({ op: 'create', object: cm(`c${i}`) }) as Command),
    );
    assert.deepEqual(
      s.watch.since(3, {}).map((c) => c.object.metadata.name),
      ['c4', 'c5'],
    );
    assert.throws(
      () => s.watch.since(1, {}),
      (e: Error) => e instanceof TooOldError && /revision 1 is too old/.test(e.message),
    );
  });
});

// ---- property: replicas that apply the same log agree, and snapshots restore exactly ----

const names = ['a', 'b', 'c'];
const arbCommand: fc.Arbitrary<Command> = fc.oneof(
  fc
    .record({
      n: fc.constantFrom(...names),
      v: fc.string({ maxLength: 3 }),
      ns: fc.constantFrom('default', 'team'),
    })
    .map(({ n, v, ns: space }) => ({ op: 'create', object: cm(n, { v }, {}, space) }) as Command),
  fc
    .record({ n: fc.constantFrom(...names), r: fc.nat(5) })
    .map(({ n, r }) => ({ op: 'create', object: rs(n, r) }) as Command),
  fc
    .record({ n: fc.constantFrom(...names), o: fc.constantFrom(...names) })
    .map(({ n, o }) => ({ op: 'create', object: pod(`p-${n}`, rs(o)) }) as Command),
  fc
    .record({
      n: fc.constantFrom(...names),
      r: fc.nat(5),
      rv: fc.option(fc.nat(30), { nil: undefined }),
    })
    .map(
      ({ n, r, rv }) =>
        ({
          op: 'update',
          object: rs(n, r),
          uid: `uid-rs-default-${n}`,
          expectedRevision: rv,
        }) as Command,
    ),
  fc.record({ n: fc.constantFrom(...names), r: fc.nat(5) }).map(
    ({ n, r }) =>
      ({
        op: 'update',
        object: { ...rs(n), status: { replicas: r } },
        uid: `uid-rs-default-${n}`,
        subresource: 'status',
      }) as Command,
  ),
  fc
    .record({
      k: fc.constantFrom('ConfigMap', 'ReplicaSet', 'Pod'),
      n: fc.constantFrom(...names),
      p: fc.constantFrom('Background', 'Orphan'),
    })
    .map(
      ({ k, n, p }) =>
        ({
          op: 'delete',
          kind: k,
          namespace: 'default',
          name: k === 'Pod' ? `p-${n}` : n,
          propagation: p,
        }) as Command,
    ),
  fc.constantFrom<Command>(
    { op: 'create', object: ns('team') },
    { op: 'delete', kind: 'Namespace', name: 'team', propagation: 'Background' },
  ),
);

describe('master store: determinism (property)', () => {
  it('two replicas applying the same commands hold identical stores and snapshots; a restored snapshot equals its store', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            arbCommand,
            fc
              .array(arbCommand, { maxLength: 3 })
              .map((cs) => ({ op: 'batch', commands: cs }) as Command),
            // Keyed writes, some keys retried: the request log is replicated state too.
            // Some retried with another request (another digest), which is refused.
            fc
              .record({
                c: arbCommand,
                key: fc.constantFrom('k1', 'k2', 'k3'),
                digest: fc.constantFrom(undefined, 'd1', 'd2'),
                t: fc.nat(5),
              })
              .map(
                ({ c, key, digest, t }) =>
                  ({
                    op: 'once',
                    key,
                    ...(digest === undefined ? {} : { digest }),
                    at: t * 1000,
                    command: c,
                  }) as Command,
              ),
          ),
          { maxLength: 40 },
        ),
        (cmds) => {
          const a = new ClusterStore();
          const b = new ClusterStore();
          const ra = run(a, cmds);
          const rb = run(b, cmds);
          assert.deepEqual(ra, rb);
          const snap = Buffer.from(a.snapshot());
          assert.ok(snap.equals(Buffer.from(b.snapshot())));
          const c = new ClusterStore();
          c.restore(snap);
          assert.ok(Buffer.from(c.snapshot()).equals(snap));
          assert.deepEqual(
            c.list({}).map((s) => s.json),
            a.list({}).map((s) => s.json),
          );
          // Indexes agree with a scan after any sequence.
          assert.deepEqual(
            a.list({ kind: 'Pod', namespace: 'default' }).map((s) => s.key),
            a
              .list({})
              .filter((s) => s.object.kind === 'Pod')
              .map((s) => s.key),
          );
          // No dangling owner references survive: every owner exists.
          for (const s of a.list({}))
            for (const r of s.object.metadata.ownerReferences ?? [])
              assert.ok(a.objects.getByUid(r.uid), `${s.key} has a dangling owner ${r.uid}`);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('store: commands of the leader loops', () => {
  const at = (store: ClusterStore, c: Command, term: number): CommandResult =>
    store.apply(Buffer.from(JSON.stringify(c)), store.revision + 1, term);

  it('applies a fenced command only in the term it was written for', () => {
    const store = new ClusterStore();
    const create: Command = { op: 'create', object: cm('a') };
    const late = at(store, { op: 'fenced', term: 3, command: create }, 4);
    assert.equal(late.ok, false);
    assert.equal(!late.ok && late.code, 'FENCED');
    assert.equal(store.get('ConfigMap', 'default', 'a'), undefined);
    assert.equal(at(store, { op: 'fenced', term: 4, command: create }, 4).ok, true);
    assert.ok(store.get('ConfigMap', 'default', 'a'));
  });

  it('each: commands stand or fall alone, in one entry', () => {
    const store = new ClusterStore();
    const r = at(
      store,
      {
        op: 'each',
        commands: [
          { op: 'create', object: cm('a') },
          { op: 'create', object: cm('a') },
          { op: 'create', object: cm('b') },
        ],
      },
      1,
    );
    assert.ok(r.ok);
    assert.deepEqual(
      r.results!.map((x) => (x.ok ? 'ok' : x.code)),
      ['ok', 'ALREADY_EXISTS', 'ok'],
    );
    assert.ok(store.get('ConfigMap', 'default', 'b'));
    assert.equal(store.get('ConfigMap', 'default', 'a')!.revision, 1);
  });

  it('bind: sets the node once, refuses a second binding and a recreated pod', () => {
    const store = new ClusterStore();
    run(store, [{ op: 'create', object: pod('p') }]);
    const uid = 'uid-pod-default-p';
    const bind = (node: string, u = uid) =>
      at(store, { op: 'bind', namespace: 'default', name: 'p', uid: u, node }, 1);
    assert.equal(bind('n1').ok, true);
    const stored = store.get('Pod', 'default', 'p')!;
    assert.equal((stored.object.spec as { nodeName: string }).nodeName, 'n1');
    assert.equal(stored.revision, store.revision);
    const again = bind('n2');
    assert.equal(!again.ok && again.code, 'CONFLICT');
    assert.match(!again.ok ? again.message : '', /already assigned to node "n1"/);
    const other = bind('n2', 'someone-else');
    assert.equal(!other.ok && other.code, 'NOT_FOUND');
    assert.deepEqual(
      store.list({ kind: 'Pod' }).map((s) => (s.object.spec as { nodeName: string }).nodeName),
      ['n1'],
    );
  });
});

describe('store: keyed writes (a retried write is applied once)', () => {
  const keyed = (key: string, command: Command, at = 1000, digest?: string): Command => ({
    op: 'once',
    key,
    ...(digest === undefined ? {} : { digest }),
    at,
    command,
  });
  const ok = (r: CommandResult) => {
    assert.ok(r.ok, !r.ok ? r.message : '');
    return r;
  };

  it('applies a key once: its retry after a later write changes nothing and answers with the original', () => {
    const store = new ClusterStore();
    const first = keyed('-/w1', { op: 'create', object: cm('a', { v: '1' }) });
    const [r1] = run(store, [first]);
    // Another client's write, then the first write again (its answer was lost and it was retried).
    run(store, [
      { op: 'update', object: cm('a', { v: '2' }), uid: 'uid-cm-default-a' },
      keyed('-/w1', { op: 'update', object: cm('a', { v: '1' }), uid: 'uid-cm-default-a' }),
    ]);
    const again = ok(run(store, [first])[0]);
    assert.equal(again.duplicateOf, 1);
    assert.equal(again.object, ok(r1).object);
    const a = store.get('ConfigMap', 'default', 'a')!;
    assert.deepEqual(a.object.data, { v: '2' });
    assert.equal(a.revision, 2);
  });

  it('does not remember a write that failed: its retry is applied', () => {
    const store = new ClusterStore();
    const update = keyed('-/w', {
      op: 'update',
      object: cm('a', { v: '2' }),
      uid: 'uid-cm-default-a',
    });
    const [failed] = run(store, [update]);
    assert.equal(!failed.ok && failed.code, 'NOT_FOUND');
    run(store, [{ op: 'create', object: cm('a', { v: '1' }) }]);
    const [retried] = run(store, [update]);
    assert.equal(ok(retried).duplicateOf, undefined);
    assert.deepEqual(store.get('ConfigMap', 'default', 'a')!.object.data, { v: '2' });
  });

  it('refuses a key sent again with another request, changing nothing, and says which write used it', () => {
    const store = new ClusterStore();
    const [first] = run(store, [
      keyed('-/w', { op: 'create', object: cm('a', { v: '1' }) }, 1000, 'digest-1'),
    ]);
    const [other] = run(store, [keyed('-/w', { op: 'create', object: cm('b') }, 1000, 'digest-2')]);
    assert.equal(!other.ok && other.code, 'INVALID');
    assert.match(
      !other.ok ? other.message : '',
      /^metadata idempotency-key: already used by another write \(the one applied at revision 1\)/,
    );
    assert.equal(store.get('ConfigMap', 'default', 'b'), undefined);
    assert.equal(store.revision, 2, 'the refused entry changed nothing but the revision');
    // Its true retry is still answered as the original.
    const [again] = run(store, [
      keyed('-/w', { op: 'create', object: cm('a', { v: '1' }) }, 1000, 'digest-1'),
    ]);
    assert.equal(ok(again).duplicateOf, 1);
    assert.equal(ok(again).object, ok(first).object);
    // The log remembers whether the write created its object (a retried apply says "created").
    assert.equal(store.requests.lookup('-/w')?.created, true);
  });

  it('keys are scoped as given: the same client key of two callers are two writes', () => {
    const store = new ClusterStore();
    run(store, [
      keyed('admin:alice/k', { op: 'create', object: cm('a') }),
      keyed('admin:bob/k', { op: 'create', object: cm('b') }),
    ]);
    assert.ok(store.get('ConfigMap', 'default', 'b'));
  });

  it('forgets keys by age (the leaders clocks in the log) and by count, alike on every replica', () => {
    const replicas = [
      new ClusterStore({ requests: new RequestLog(60_000, 3, 0) }),
      new ClusterStore({ requests: new RequestLog(60_000, 3, 0) }),
    ];
    const cmds: Command[] = [
      keyed('-/old', { op: 'create', object: cm('old') }, 0),
      keyed('-/mid', { op: 'create', object: cm('mid') }, 30_000),
      // 61 s after "old": it is forgotten, "mid" is not.
      keyed('-/new', { op: 'create', object: cm('new') }, 61_000),
    ];
    for (const store of replicas) {
      run(store, cmds);
      assert.equal(store.requests.lookup('-/old'), undefined);
      assert.equal(store.requests.lookup('-/mid')?.index, 2);
      run(
        store,
        ['x', 'y', 'z'].map((n) => keyed(`-/${n}`, { op: 'create', object: cm(n) }, 62_000)),
      );
      // Three at most: the oldest went first.
      assert.deepEqual(
        store.requests.entries().map(([k]) => k),
        ['-/x', '-/y', '-/z'],
      );
      // A leader whose clock ran a day ahead makes the log forget early, once; the next
      // leader's keys, by a right clock, are remembered again.
      run(store, [keyed('-/ahead', { op: 'create', object: cm('ahead') }, 86_400_000)]);
      assert.deepEqual(
        store.requests.entries().map(([k]) => k),
        ['-/ahead'],
      );
      run(store, [keyed('-/back', { op: 'create', object: cm('back') }, 63_000)]);
      assert.ok(store.requests.lookup('-/back'));
    }
    assert.ok(Buffer.from(replicas[0].snapshot()).equals(Buffer.from(replicas[1].snapshot())));
    // With a floor, the latest keys outlive any clock: here the latest two.
    const floored = new ClusterStore({ requests: new RequestLog(60_000, 100, 2) });
    run(
      floored,
      ['p', 'q', 'r'].map((n) => keyed(`-/${n}`, { op: 'create', object: cm(n) }, 1000)),
    );
    run(floored, [keyed('-/skewed', { op: 'create', object: cm('skewed') }, 86_400_000)]);
    assert.deepEqual(
      floored.requests.entries().map(([k]) => k),
      ['-/r', '-/skewed'],
    );
  });

  it('travels in snapshots: a master restored from one still refuses to apply a key twice', async () => {
    const store = new ClusterStore();
    const write = keyed('-/w1', { op: 'create', object: cm('a', { v: '1' }) }, 1000, 'd1');
    run(store, [
      write,
      {
        op: 'delete',
        kind: 'ConfigMap',
        namespace: 'default',
        name: 'a',
        propagation: 'Background',
      },
    ]);
    for (const snap of [store.snapshot(), await store.capture()]) {
      const restored = new ClusterStore();
      restored.restore(snap);
      assert.equal(restored.requests.lookup('-/w1')?.index, 1);
      const [again] = run(restored, [write]);
      assert.equal(ok(again).duplicateOf, 1);
      assert.equal(restored.get('ConfigMap', 'default', 'a'), undefined);
      assert.deepEqual(
        { ...restored.requests.lookup('-/w1'), result: undefined },
        { index: 1, at: 1000, digest: 'd1', created: true, result: undefined },
      );
      const [reused] = run(restored, [
        keyed('-/w1', { op: 'create', object: cm('z') }, 1000, 'd2'),
      ]);
      assert.equal(!reused.ok && reused.code, 'INVALID');
    }
    // A snapshot written before keyed writes existed has no request log.
    const old = new ClusterStore();
    old.restore(Buffer.from('{"revision":7,"objects":[]}'));
    assert.equal(old.requests.size, 0);
    assert.equal(old.revision, 7);
  });

  it('a keyed write of a Secret is sealed at rest like any other', () => {
    const secret: ApiObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } };
    assert.ok(carriesSealedKind(keyed('-/s', { op: 'create', object: secret })));
    assert.ok(!carriesSealedKind(keyed('-/c', { op: 'create', object: cm('c') })));
  });
});

describe('master store: snapshots for Raft', () => {
  it('captures the state when asked and serializes it later, in slices', async () => {
    const s = new ClusterStore();
    const cmds: Command[] = [{ op: 'create', object: ns('default') }];
    for (let i = 0; i < 4500; i++) cmds.push({ op: 'create', object: cm(`c${i}`, { i: `${i}` }) });
    run(s, cmds);
    const expected = new ClusterStore();
    expected.restore(s.snapshot());
    const captured = s.capture();
    // Changes after the capture are not in it.
    run(s, [
      { op: 'create', object: cm('later') },
      {
        op: 'delete',
        kind: 'ConfigMap',
        namespace: 'default',
        name: 'c7',
        propagation: 'Background',
      },
    ]);
    const c = new ClusterStore();
    c.restore(await captured);
    assert.equal(c.revision, expected.revision);
    assert.ok(Buffer.from(c.snapshot()).equals(Buffer.from(expected.snapshot())));
    assert.equal(c.get('ConfigMap', 'default', 'later'), undefined);
    assert.ok(c.get('ConfigMap', 'default', 'c7'));
    assert.equal(c.list({ kind: 'ConfigMap' }).length, 4500);
  });
});
