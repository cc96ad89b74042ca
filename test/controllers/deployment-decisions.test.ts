/**
 * The Deployment controller's pure decisions, case by case: rollout
 * arithmetic, proportional scaling, Recreate, status and conditions,
 * revisions. The scenarios with real controllers are in deployment.test.ts.
 */
import { strict as assert } from 'node:assert';
import type { Deployment, ReplicaSet } from '../../src/api/schema';
import { newReplicaSetAnnotations } from '../../src/master/controllers/deployment/annotations';
import { claimDecisions } from '../../src/master/controllers/deployment/claim';
import { oldPodsRunning, recreateStep } from '../../src/master/controllers/deployment/recreate';
import { RsState } from '../../src/master/controllers/deployment/replica-set-state';
import { sameTemplate } from '../../src/master/controllers/deployment/replica-sets';
import {
  replicaSetsToPrune,
  rollbackTemplate,
  RollbackError,
  rolloutHistory,
} from '../../src/master/controllers/deployment/revisions';
import {
  maxSurge,
  maxUnavailable,
  newReplicaSetSize,
  resolveFenceposts,
  RollingInput,
  rollingStep,
  scaledValue,
} from '../../src/master/controllers/deployment/rolling';
import {
  activeOrLatest,
  isScalingEvent,
  proportionalPlan,
  scalePlan,
} from '../../src/master/controllers/deployment/scaling';
import {
  calculateStatus,
  deploymentProgressing,
  DeploymentStatus,
  msUntilStuck,
  newCondition,
  pausedStatus,
  rolloutStatus,
  setCondition,
} from '../../src/master/controllers/deployment/status';

/** A ReplicaSet's counts: spec replicas, and (by default) as many pods, all available. */
function rs(name: string, replicas: number, more: Partial<RsState> = {}): RsState {
  return {
    name,
    replicas,
    current: replicas,
    ready: replicas,
    available: replicas,
    created: 0,
    ...more,
  };
}

function deployment(spec: Record<string, unknown> = {}, status?: DeploymentStatus): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', uid: 'd-uid', generation: 2 },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'c', image: 'app:v1' }] },
      },
      strategy: {
        type: 'RollingUpdate',
        rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' },
      },
      minReadySeconds: 0,
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
      ...spec,
    },
    ...(status ? { status } : {}),
  } as unknown as Deployment;
}

describe('Deployment decisions', () => {
  describe('rollout fenceposts', () => {
    it('scales percentages: surge rounds up, unavailability rounds down', () => {
      const cases: [number | string, number, boolean, number][] = [
        ['25%', 3, true, 1],
        ['25%', 3, false, 0],
        ['25%', 4, true, 1],
        ['25%', 4, false, 1],
        ['50%', 5, true, 3],
        ['50%', 5, false, 2],
        ['100%', 7, false, 7],
        ['0%', 9, true, 0],
        ['30%', 0, true, 0],
        [2, 10, true, 2],
        [2, 10, false, 2],
      ];
      for (const [v, total, up, want] of cases)
        assert.equal(
          scaledValue(v, total, up),
          want,
          `${v} of ${total} rounded ${up ? 'up' : 'down'}`,
        );
      assert.throws(() => scaledValue('25', 4, true), /must be an integer or a percentage/);
    });

    it('lets one pod be unavailable when both round to 0', () => {
      assert.deepEqual(resolveFenceposts(0, 0, 3), { maxSurge: 0, maxUnavailable: 1 });
      assert.deepEqual(resolveFenceposts('0%', '25%', 3), { maxSurge: 0, maxUnavailable: 1 });
      assert.deepEqual(resolveFenceposts('10%', '10%', 4), { maxSurge: 1, maxUnavailable: 0 });
      assert.deepEqual(resolveFenceposts('25%', '25%', 10), { maxSurge: 3, maxUnavailable: 2 });
    });

    it('caps maxUnavailable at replicas; Recreate and 0 replicas have no fenceposts', () => {
      const ru = (maxSurge: number, maxUnavailable: number) => ({
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge, maxUnavailable } },
      });
      assert.equal(maxUnavailable(deployment(ru(0, 10))), 3);
      assert.equal(maxSurge(deployment(ru(2, 1))), 2);
      assert.equal(maxUnavailable(deployment({ ...ru(1, 1), replicas: 0 })), 0);
      const recreate = deployment({ strategy: { type: 'Recreate' } });
      assert.equal(maxSurge(recreate), 0);
      assert.equal(maxUnavailable(recreate), 0);
    });
  });

  describe('rolling steps', () => {
    const input = (
      newRS: RsState,
      oldRSs: RsState[],
      maxSurge = 1,
      maxUnavailable = 0,
    ): RollingInput => ({
      replicas: 3,
      maxSurge,
      maxUnavailable,
      newRS,
      oldRSs,
    });

    it('grows the new ReplicaSet up to replicas + maxSurge pods in all', () => {
      assert.deepEqual(rollingStep(input(rs('new', 0), [rs('old', 3)])), [
        { name: 'new', from: 0, to: 1 },
      ]);
      assert.deepEqual(rollingStep(input(rs('new', 0), [rs('old', 3)], 2)), [
        { name: 'new', from: 0, to: 2 },
      ]);
      // Never above replicas, however large the surge.
      assert.equal(newReplicaSetSize(input(rs('new', 0), [rs('old', 1)], 10)), 3);
    });

    it('counts the pods an old ReplicaSet still runs against the surge', () => {
      // Told to run 2, still reports 3: 3 + 1 = 4 pods is already the limit.
      assert.equal(newReplicaSetSize(input(rs('new', 1), [rs('old', 2, { current: 3 })])), 1);
      assert.equal(newReplicaSetSize(input(rs('new', 1), [rs('old', 2)])), 2);
    });

    it('does not shrink old ReplicaSets while new pods are not available', () => {
      assert.deepEqual(
        rollingStep(input(rs('new', 1, { available: 0, ready: 0 }), [rs('old', 3)])),
        [],
      );
      assert.deepEqual(rollingStep(input(rs('new', 1), [rs('old', 3)])), [
        { name: 'old', from: 3, to: 2 },
      ]);
    });

    it('keeps replicas - maxUnavailable available: a stuck rollout stops', () => {
      // maxSurge 1, maxUnavailable 1: 2 old (available) + 2 new (never ready) is where it stops.
      const stuck = input(rs('new', 2, { available: 0, ready: 0 }), [rs('old', 2)], 1, 1);
      assert.deepEqual(rollingStep(stuck), []);
      // One step before: 3 old + 1 new unready, one old may still go.
      const before = input(rs('new', 1, { available: 0, ready: 0 }), [rs('old', 3)], 1, 1);
      assert.deepEqual(rollingStep(before), [{ name: 'old', from: 3, to: 2 }]);
    });

    it('removes unavailable old pods first, oldest ReplicaSet first', () => {
      const i = input(
        rs('new', 1, { available: 0, ready: 0 }),
        [rs('older', 2, { available: 0, created: 1 }), rs('old', 1, { created: 2 })],
        1,
        1,
      );
      // 4 pods, 2 must stay available, 1 new unavailable: 1 may go; it is an unavailable one.
      assert.deepEqual(rollingStep(i), [{ name: 'older', from: 2, to: 1 }]);
    });

    it('shrinks the oldest ReplicaSet first', () => {
      const old = [rs('b', 1, { created: 2 }), rs('a', 1, { created: 1 })];
      assert.deepEqual(rollingStep(input(rs('new', 1), old, 0, 1)), [
        { name: 'a', from: 1, to: 0 },
      ]);
      assert.deepEqual(rollingStep(input(rs('new', 3), old, 0, 1)), [
        { name: 'a', from: 1, to: 0 },
        { name: 'b', from: 1, to: 0 },
      ]);
    });

    it('shrinks a new ReplicaSet above replicas', () => {
      assert.deepEqual(rollingStep(input(rs('new', 5), [])), [{ name: 'new', from: 5, to: 3 }]);
    });
  });

  describe('scaling', () => {
    it('is a scaling event when an active ReplicaSet was scaled for another size', () => {
      assert.equal(isScalingEvent(3, [rs('a', 3, { desired: 3 })]), false);
      assert.equal(isScalingEvent(5, [rs('a', 3, { desired: 3 })]), true);
      assert.equal(isScalingEvent(5, [rs('a', 0, { desired: 3 })]), false, 'inactive');
      assert.equal(isScalingEvent(5, [rs('a', 3)]), false, 'no annotation');
    });

    it('resizes the only active ReplicaSet, or the newest when none is active', () => {
      assert.equal(activeOrLatest(rs('new', 0), [rs('old', 2)])?.name, 'old');
      assert.equal(activeOrLatest(rs('new', 0), [rs('old', 0)])?.name, 'new');
      assert.equal(
        activeOrLatest(undefined, [rs('a', 0, { created: 1 }), rs('b', 0, { created: 2 })])?.name,
        'b',
      );
      assert.equal(activeOrLatest(rs('new', 1), [rs('old', 2)]), undefined);
      assert.deepEqual(
        scalePlan({
          replicas: 5,
          maxSurge: 1,
          rollingUpdate: true,
          statusReplicas: 3,
          oldRSs: [rs('old', 3)],
        }),
        [{ name: 'old', from: 3, to: 5 }],
      );
    });

    it('scales old ReplicaSets to 0 once the new one is saturated', () => {
      const plan = scalePlan({
        replicas: 3,
        maxSurge: 1,
        rollingUpdate: true,
        statusReplicas: 4,
        newRS: rs('new', 3, { desired: 3 }),
        oldRSs: [rs('old', 1)],
      });
      assert.deepEqual(plan, [{ name: 'old', from: 1, to: 0 }]);
    });

    it('spreads a change in proportion to sizes (Kubernetes: 10 -> 15 with maxSurge 3)', () => {
      const rss = [
        rs('old', 8, { maxReplicas: 13, created: 1 }),
        rs('new', 5, { maxReplicas: 13, created: 2 }),
      ];
      const up = proportionalPlan({
        replicas: 15,
        maxSurge: 3,
        rollingUpdate: true,
        statusReplicas: 13,
        newRS: rss[1],
        oldRSs: [rss[0]],
      });
      assert.deepEqual(up, [
        { name: 'old', from: 8, to: 11 },
        { name: 'new', from: 5, to: 7 },
      ]);
      const down = proportionalPlan({
        replicas: 5,
        maxSurge: 3,
        rollingUpdate: true,
        statusReplicas: 13,
        newRS: rss[1],
        oldRSs: [rss[0]],
      });
      assert.deepEqual(down, [
        { name: 'old', from: 8, to: 5 },
        { name: 'new', from: 5, to: 3 },
      ]);
      const zero = proportionalPlan({
        replicas: 0,
        maxSurge: 3,
        rollingUpdate: true,
        statusReplicas: 13,
        newRS: rss[1],
        oldRSs: [rss[0]],
      });
      assert.deepEqual(
        zero.map((a) => a.to),
        [0, 0],
      );
    });

    it('gives the rounding leftover to the largest (the newest of equals when growing)', () => {
      const rss = [1, 2, 3].map((i) => rs(`rs${i}`, 1, { maxReplicas: 3, created: i }));
      const plan = proportionalPlan({
        replicas: 4,
        maxSurge: 0,
        rollingUpdate: true,
        statusReplicas: 3,
        oldRSs: rss.slice(0, 2),
        newRS: rss[2],
      });
      assert.deepEqual(plan, [
        { name: 'rs3', from: 1, to: 2 },
        { name: 'rs2', from: 1, to: 1 },
        { name: 'rs1', from: 1, to: 1 },
      ]);
    });

    it('uses the Deployment status as the base when a ReplicaSet lacks max-replicas', () => {
      const plan = proportionalPlan({
        replicas: 8,
        maxSurge: 0,
        rollingUpdate: true,
        statusReplicas: 4,
        oldRSs: [rs('a', 2, { created: 1 })],
        newRS: rs('b', 2, { created: 2 }),
      });
      assert.deepEqual(plan.map((a) => a.to).sort(), [4, 4]);
    });
  });

  describe('Recreate', () => {
    it('scales old down, waits for their pods, then scales the new one up', () => {
      assert.deepEqual(recreateStep([rs('a', 2), rs('b', 0)], []), {
        kind: 'scale-down-old',
        actions: [{ name: 'a', from: 2, to: 0 }],
      });
      assert.deepEqual(recreateStep([rs('a', 0, { current: 1 })], []), {
        kind: 'wait-for-old-pods',
      });
      assert.deepEqual(recreateStep([rs('a', 0)], ['Running']), { kind: 'wait-for-old-pods' });
      assert.deepEqual(recreateStep([rs('a', 0)], ['Succeeded', 'Failed']), {
        kind: 'scale-up-new',
      });
      assert.equal(oldPodsRunning([rs('a', 0)], ['Unknown']), true);
      assert.equal(oldPodsRunning([rs('a', 0)], ['Pending']), true);
    });
  });

  describe('status', () => {
    const T0 = '2025-01-01T00:00:00Z';
    const T1 = '2025-01-01T00:00:05Z';

    it('sums the ReplicaSets and says Available against replicas - maxUnavailable', () => {
      const d = deployment({ replicas: 4 });
      const s = calculateStatus(
        d,
        [
          rs('old', 2, { ready: 2, available: 1 }),
          rs('new', 2, { current: 1, ready: 1, available: 1 }),
        ],
        rs('new', 2, { current: 1 }),
        T0,
      );
      assert.deepEqual(
        [
          s.observedGeneration,
          s.replicas,
          s.updatedReplicas,
          s.readyReplicas,
          s.availableReplicas,
          s.unavailableReplicas,
        ],
        [2, 3, 1, 3, 2, 2],
      );
      // 25% of 4 = 1 unavailable allowed; 2 < 3 available.
      assert.deepEqual(s.conditions, [
        newCondition(
          'Available',
          'False',
          'MinimumReplicasUnavailable',
          'Deployment does not have minimum availability.',
          T0,
        ),
      ]);
      const ok = calculateStatus(d, [rs('new', 4, { available: 3 })], rs('new', 4), T0);
      assert.equal(ok.conditions?.[0].reason, 'MinimumReplicasAvailable');
    });

    it('setCondition keeps an unchanged condition as it was, and lastTransitionTime while the status holds', () => {
      const s0 = setCondition({}, newCondition('Progressing', 'True', 'A', 'a', T0));
      assert.equal(setCondition(s0, newCondition('Progressing', 'True', 'A', 'again', T1)), s0);
      const s1 = setCondition(s0, newCondition('Progressing', 'True', 'B', 'b', T1));
      assert.deepEqual(s1.conditions, [
        {
          type: 'Progressing',
          status: 'True',
          reason: 'B',
          message: 'b',
          lastUpdateTime: T1,
          lastTransitionTime: T0,
        },
      ]);
      const s2 = setCondition(s1, newCondition('Progressing', 'False', 'C', 'c', T1));
      assert.equal(s2.conditions?.[0].lastTransitionTime, T1);
    });

    it('judges progress against the previous status', () => {
      const d = deployment(
        {},
        { replicas: 4, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3 },
      );
      const same = { replicas: 4, updatedReplicas: 1, readyReplicas: 3, availableReplicas: 3 };
      assert.equal(deploymentProgressing(d, same), false);
      assert.equal(deploymentProgressing(d, { ...same, updatedReplicas: 2 }), true);
      assert.equal(deploymentProgressing(d, { ...same, replicas: 3 }), true, 'fewer old pods');
      assert.equal(deploymentProgressing(d, { ...same, readyReplicas: 4 }), true);
      assert.equal(deploymentProgressing(d, { ...same, readyReplicas: 2 }), false);
    });

    it('moves Progressing: updated on progress, timed out after the deadline, available when complete', () => {
      const start = Date.parse(T0);
      const progressing = newCondition('Progressing', 'True', 'ReplicaSetUpdated', 'x', T0);
      const d = deployment(
        { progressDeadlineSeconds: 10 },
        {
          observedGeneration: 2,
          replicas: 4,
          updatedReplicas: 1,
          readyReplicas: 3,
          availableReplicas: 3,
          conditions: [progressing],
        },
      );
      const stuckRSs = [rs('old', 3), rs('new', 1, { ready: 0, available: 0 })];
      const at = (ms: number) => new Date(start + ms);
      const stamp = (ms: number) =>
        at(ms)
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z');

      const quiet = rolloutStatus(d, stuckRSs, stuckRSs[1], at(5000), stamp(5000));
      assert.deepEqual(
        quiet.conditions?.find((c) => c.type === 'Progressing'),
        progressing,
      );
      assert.equal(msUntilStuck(d, quiet, start + 5000), 5001);

      const late = rolloutStatus(d, stuckRSs, stuckRSs[1], at(10_001), stamp(10_001));
      const c = late.conditions?.find((x) => x.type === 'Progressing');
      assert.equal(c?.status, 'False');
      assert.equal(c?.reason, 'ProgressDeadlineExceeded');
      assert.equal(c?.message, 'ReplicaSet "new" has timed out progressing.');
      assert.equal(msUntilStuck(d, late, start + 10_001), undefined);

      const moved = [rs('old', 3), rs('new', 1, { ready: 1, available: 1 })];
      const next = rolloutStatus(d, moved, moved[1], at(9000), stamp(9000));
      const p = next.conditions?.find((x) => x.type === 'Progressing');
      assert.equal(p?.lastUpdateTime, stamp(9000), 'progress restarts the deadline');
      assert.equal(p?.lastTransitionTime, T0);
      assert.equal(p?.message, 'ReplicaSet "new" is progressing.');

      const done = [rs('old', 0), rs('new', 3)];
      const complete = rolloutStatus(d, done, done[1], at(9000), stamp(9000));
      const q = complete.conditions?.find((x) => x.type === 'Progressing');
      assert.equal(q?.reason, 'NewReplicaSetAvailable');
      assert.equal(q?.message, 'ReplicaSet "new" has successfully progressed.');
    });

    it('says paused and resumed, but not over a timed-out rollout', () => {
      const paused = pausedStatus(deployment({ paused: true }), T0);
      assert.deepEqual(paused?.conditions, [
        newCondition('Progressing', 'Unknown', 'DeploymentPaused', 'Deployment is paused', T0),
      ]);
      assert.equal(pausedStatus(deployment({ paused: true }, paused), T1), undefined);
      const resumed = pausedStatus(deployment({ paused: false }, paused), T1);
      assert.equal(resumed?.conditions?.[0].reason, 'DeploymentResumed');
      const timedOut = {
        conditions: [newCondition('Progressing', 'False', 'ProgressDeadlineExceeded', 'x', T0)],
      };
      assert.equal(pausedStatus(deployment({ paused: true }, timedOut), T1), undefined);
    });
  });

  describe('revisions', () => {
    function replicaSet(
      name: string,
      revision: number | undefined,
      replicas: number,
      image: string,
      more: Partial<ReplicaSet['metadata']> = {},
    ): ReplicaSet {
      return {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name,
          namespace: 'default',
          generation: 1,
          creationTimestamp: '2025-01-01T00:00:00Z',
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              name: 'web',
              uid: 'd-uid',
              controller: true,
            },
          ],
          ...(revision === undefined
            ? {}
            : { annotations: { 'deployment.kubernetes.io/revision': String(revision) } }),
          ...more,
        },
        spec: {
          replicas,
          minReadySeconds: 0,
          selector: { matchLabels: { app: 'web', 'pod-template-hash': name } },
          template: {
            metadata: { labels: { app: 'web', 'pod-template-hash': name } },
            spec: { containers: [{ name: 'c', image }] },
          },
        },
        status: { replicas, observedGeneration: 1 },
      } as unknown as ReplicaSet;
    }

    it('prunes the lowest revisions beyond the limit, only when fully scaled down', () => {
      const rss = [
        replicaSet('r3', 3, 0, 'v3'),
        replicaSet('r1', 1, 0, 'v1'),
        replicaSet('r2', 2, 1, 'v2'),
        replicaSet('r4', 4, 0, 'v4'),
      ];
      assert.deepEqual(replicaSetsToPrune(rss, 4), []);
      assert.deepEqual(
        replicaSetsToPrune(rss, 1).map((r) => r.metadata.name),
        ['r1', 'r3'],
        'r2 still runs',
      );
      assert.deepEqual(
        replicaSetsToPrune(rss, 0).map((r) => r.metadata.name),
        ['r1', 'r3', 'r4'],
      );
      const unobserved = replicaSet('r0', 0, 0, 'v0', { generation: 2 });
      assert.deepEqual(replicaSetsToPrune([unobserved], 0), [], 'scale-down not yet observed');
    });

    it('finds the template of the previous or a given revision', () => {
      const d = deployment();
      const rss = [
        replicaSet('r1', 1, 0, 'v1'),
        replicaSet('r3', 3, 3, 'v3'),
        replicaSet('r2', 2, 0, 'v2'),
        replicaSet('x', 9, 0, 'other', { ownerReferences: [] }),
      ];
      const image = (t: ReturnType<typeof rollbackTemplate>) => t.spec.containers[0].image;
      assert.equal(image(rollbackTemplate(d, rss)), 'v2');
      assert.equal(image(rollbackTemplate(d, rss, 0)), 'v2');
      assert.equal(image(rollbackTemplate(d, rss, 1)), 'v1');
      assert.deepEqual(rollbackTemplate(d, rss, 1).metadata?.labels, { app: 'web' });
      assert.throws(
        () => rollbackTemplate(d, rss, 9),
        (e: unknown) =>
          e instanceof RollbackError &&
          e.code === 'REVISION_NOT_FOUND' &&
          e.message.includes('revision 9'),
      );
      assert.throws(
        () => rollbackTemplate(d, rss.slice(1, 2)),
        (e: unknown) => e instanceof RollbackError && e.code === 'NO_HISTORY',
      );
      assert.deepEqual(
        rolloutHistory(d, rss).map((e) => [e.revision, e.replicaSet]),
        [
          [1, 'r1'],
          [2, 'r2'],
          [3, 'r3'],
        ],
      );
    });

    it('gives a ReplicaSet brought back the new revision, keeping the old one in its history', () => {
      const d = deployment();
      d.metadata.annotations = {
        'kubernetes.io/change-cause': 'undo',
        'deployment.kubernetes.io/revision': '5',
      };
      const back = newReplicaSetAnnotations(d, replicaSet('r1', 1, 0, 'v1'), 4, undefined);
      assert.deepEqual(back, {
        'deployment.kubernetes.io/revision': '4',
        'deployment.kubernetes.io/revision-history': '1',
        'kubernetes.io/change-cause': 'undo',
      });
      const current = replicaSet('r4', 4, 0, 'v1', { annotations: { ...back } });
      assert.equal(
        newReplicaSetAnnotations(d, current, 4, undefined),
        undefined,
        'nothing to change',
      );
      const fresh = newReplicaSetAnnotations(deployment(), replicaSet('n', undefined, 0, 'v5'), 5, {
        desired: 3,
        max: 4,
      });
      assert.deepEqual(fresh, {
        'deployment.kubernetes.io/revision': '5',
        'deployment.kubernetes.io/desired-replicas': '3',
        'deployment.kubernetes.io/max-replicas': '4',
      });
    });

    it('compares templates without the pod-template-hash label', () => {
      const a = replicaSet('a', 1, 1, 'app:v1').spec.template;
      const b = replicaSet('b', 1, 1, 'app:v1').spec.template;
      assert.equal(sameTemplate(a, b), true);
      assert.equal(sameTemplate(a, deployment().spec.template), true);
      assert.equal(sameTemplate(a, replicaSet('c', 1, 1, 'v2').spec.template), false);
    });

    it('claims its own, adopts matching orphans, releases what stopped matching', () => {
      const d = deployment();
      const mine = replicaSet('mine', 1, 1, 'v1');
      const orphan = replicaSet('orphan', 1, 1, 'v1', {
        ownerReferences: undefined,
        labels: { app: 'web' },
      });
      const strayed = replicaSet('strayed', 1, 1, 'v1', { labels: { app: 'other' } });
      const foreign = replicaSet('foreign', 1, 1, 'v1', {
        labels: { app: 'web' },
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'Deployment', name: 'x', uid: 'x-uid', controller: true },
        ],
      });
      const c = claimDecisions(d, [
        { ...mine, metadata: { ...mine.metadata, labels: { app: 'web' } } },
        orphan,
        strayed,
        foreign,
      ]);
      assert.deepEqual(
        [c.mine, c.adopt, c.release].map((g) => g.map((r) => r.metadata.name)),
        [['mine'], ['orphan'], ['strayed']],
      );
    });
  });
});
