import assert from 'node:assert/strict';
import {
  deploymentRolloutStatus,
  rollbackAnnotations,
  RevisionEntry,
  sameTemplate,
} from '../../src/api/rollout';
import type { Deployment } from '../../src/api/schema';

type Status = NonNullable<Deployment['status']>;

function deployment(
  replicas: number,
  generation: number,
  status: Status,
  revision = '2',
): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'web',
      generation,
      annotations: { 'deployment.kubernetes.io/revision': revision },
    },
    spec: { replicas },
    status,
  } as unknown as Deployment;
}

const deadline = {
  type: 'Progressing',
  status: 'False',
  reason: 'ProgressDeadlineExceeded',
  message: 'x',
};

describe('rollout status (kubectl DeploymentStatusViewer)', () => {
  const cases: [string, Deployment, number, string, string][] = [
    [
      'spec not yet observed',
      deployment(3, 2, {
        observedGeneration: 1,
        updatedReplicas: 3,
        replicas: 3,
        availableReplicas: 3,
      }),
      0,
      'progressing',
      'Waiting for deployment spec update to be observed...',
    ],
    [
      'new replicas being created',
      deployment(3, 2, { observedGeneration: 2, updatedReplicas: 1, replicas: 4 }),
      0,
      'progressing',
      'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
    ],
    [
      'old replicas still terminating',
      deployment(3, 2, { observedGeneration: 2, updatedReplicas: 3, replicas: 5 }),
      0,
      'progressing',
      'Waiting for deployment "web" rollout to finish: 2 old replicas are pending termination...',
    ],
    [
      'updated replicas not all available',
      deployment(3, 2, {
        observedGeneration: 2,
        updatedReplicas: 3,
        replicas: 3,
        availableReplicas: 2,
      }),
      0,
      'progressing',
      'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...',
    ],
    [
      'complete',
      deployment(3, 2, {
        observedGeneration: 2,
        updatedReplicas: 3,
        replicas: 3,
        availableReplicas: 3,
      }),
      0,
      'complete',
      'deployment "web" successfully rolled out',
    ],
    [
      'progress deadline exceeded',
      deployment(3, 2, {
        observedGeneration: 2,
        updatedReplicas: 1,
        conditions: [deadline],
      } as Status),
      0,
      'failed',
      'deployment "web" exceeded its progress deadline',
    ],
    [
      'a deadline from an older generation does not count yet',
      deployment(3, 3, { observedGeneration: 2, conditions: [deadline] } as Status),
      0,
      'progressing',
      'Waiting for deployment spec update to be observed...',
    ],
    [
      'another revision than asked for',
      deployment(1, 1, { observedGeneration: 1 }, '4'),
      3,
      'failed',
      'desired revision (3) is different from the running revision (4)',
    ],
  ];
  for (const [name, d, revision, state, message] of cases)
    it(name, () => assert.deepEqual(deploymentRolloutStatus(d, revision), { state, message }));
});

describe('rollback helpers', () => {
  it('keeps the Deployment’s own annotations and takes the rest from the revision', () => {
    const d = deployment(1, 1, {});
    d.metadata.annotations = {
      'deployment.kubernetes.io/revision': '5',
      'kubernetes.io/change-cause': 'now',
      team: 'a',
    };
    const to = {
      annotations: {
        'deployment.kubernetes.io/revision': '2',
        'deployment.kubernetes.io/desired-replicas': '3',
        'kubernetes.io/change-cause': 'then',
      },
    } as unknown as RevisionEntry;
    assert.deepEqual(rollbackAnnotations(d, to), {
      'deployment.kubernetes.io/revision': '5',
      'kubernetes.io/change-cause': 'then',
    });
  });

  it('compares templates ignoring key order and the pod-template-hash label', () => {
    const a = {
      metadata: { labels: { app: 'web', 'pod-template-hash': 'h' } },
      spec: { containers: [{ name: 'w', image: 'v1' }] },
    };
    const b = {
      spec: { containers: [{ image: 'v1', name: 'w' }] },
      metadata: { labels: { app: 'web' } },
    };
    type T = Parameters<typeof sameTemplate>[0];
    assert.equal(sameTemplate(a as unknown as T, b as unknown as T), true);
    b.spec.containers[0].image = 'v2';
    assert.equal(sameTemplate(a as unknown as T, b as unknown as T), false);
  });
});
