import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse } from 'yaml';
import {
  ConfigMap,
  Deployment,
  Endpoints,
  Event,
  formatIssues,
  Job,
  LimitRange,
  Namespace,
  Node,
  Pod,
  ReplicaSet,
  ResourceQuota,
  Secret,
  Service,
  validateObject,
} from '../../src/api/schema';
import { parseQuantity } from '../../src/api/schema/quantity';

/** Validates a YAML manifest that must be accepted; returns the defaulted object and warnings. */
function accept<T>(manifest: string | unknown): { object: T; warnings: string[] } {
  const raw = typeof manifest === 'string' ? parse(manifest) : manifest;
  const r = validateObject(raw);
  if (!r.ok) assert.fail(`expected the manifest to validate, got:\n${formatIssues(r.errors)}`);
  return { object: r.object as unknown as T, warnings: r.warnings };
}

/** Validates a manifest that must be rejected; returns the error lines. */
function reject(manifest: string | unknown): string[] {
  const raw = typeof manifest === 'string' ? parse(manifest) : manifest;
  const r = validateObject(raw);
  if (r.ok) assert.fail(`expected errors, got a valid ${r.object.kind}`);
  return formatIssues(r.errors).split('\n');
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

const NGINX = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  labels:
    app.kubernetes.io/name: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
    matchExpressions:
      - { key: tier, operator: In, values: [web, frontend] }
  template:
    metadata:
      labels:
        app: nginx
        tier: web
    spec:
      containers:
        - name: nginx
          image: nginx:1.25.3
          ports:
            - name: http
              containerPort: 80
          resources:
            requests: { cpu: 100m, memory: 128Mi }
            limits: { cpu: "1", memory: 256Mi }
          readinessProbe:
            httpGet: { path: /, port: http }
`;

/** What `kubectl create deployment web --image=nginx --dry-run=client -o yaml` prints. */
const KUBECTL_DRY_RUN = `
apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: web
    spec:
      containers:
      - image: nginx
        name: nginx
        resources: {}
status: {}
`;

const POD = `
apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: shop
  annotations:
    example.com/owner: team-a
spec:
  nodeSelector: { disktype: ssd }
  tolerations:
    - { key: dedicated, operator: Equal, value: shop, effect: NoSchedule }
    - { operator: Exists, effect: NoExecute, tolerationSeconds: 300 }
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions:
              - { key: kubernetes.io/arch, operator: In, values: [amd64] }
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 10
          preference:
            matchExpressions: [{ key: zone, operator: NotIn, values: [a] }]
  initContainers:
    - name: migrate
      image: registry.example.com:5000/shop/migrate@sha256:0123456789abcdef
      command: [sh, -c]
      args: ["./migrate up"]
  containers:
    - name: app
      image: registry.example.com:5000/shop/app
      workingDir: /srv
      stdin: true
      tty: true
      env:
        - { name: MODE, value: production }
        - name: DB_HOST
          valueFrom: { configMapKeyRef: { name: shop-config, key: db.host } }
        - name: DB_PASSWORD
          valueFrom: { secretKeyRef: { name: shop-secret, key: password, optional: false } }
        - name: POD_IP
          valueFrom: { fieldRef: { fieldPath: status.podIP } }
        - name: TEAM
          valueFrom: { fieldRef: { fieldPath: "metadata.labels['team']" } }
      envFrom:
        - configMapRef: { name: shop-config }
        - prefix: SECRET_
          secretRef: { name: shop-secret }
      ports:
        - { name: http, containerPort: 8080, hostPort: 30080 }
        - { name: metrics, containerPort: 9090, protocol: UDP }
      resources:
        requests: { cpu: 0.5, memory: 1e9, nvidia.com/gpu: 1 }
        limits: { cpu: 2, memory: 1Gi, nvidia.com/gpu: 1 }
      volumeMounts:
        - { name: cache, mountPath: /cache }
        - { name: config, mountPath: /etc/shop, readOnly: true }
        - { name: tls, mountPath: /etc/tls }
        - { name: logs, mountPath: /var/log/host }
      livenessProbe:
        tcpSocket: { port: 8080 }
        initialDelaySeconds: 5
      readinessProbe:
        httpGet: { path: /healthz, port: http, httpHeaders: [{ name: X-Probe, value: "1" }] }
        periodSeconds: 5
        failureThreshold: 1
      startupProbe:
        exec: { command: [cat, /tmp/ready] }
        timeoutSeconds: 3
    - name: sidecar
      image: busybox:latest
      command: [sleep, infinity]
  volumes:
    - { name: cache, emptyDir: { medium: Memory, sizeLimit: 64Mi } }
    - { name: config, configMap: { name: shop-config, items: [{ key: app.yaml, path: app.yaml }] } }
    - { name: tls, secret: { secretName: shop-tls, defaultMode: 0400 } }
    - { name: logs, hostPath: { path: /var/log, type: Directory } }
  hostname: app-0
  subdomain: shop
  activeDeadlineSeconds: 3600
`;

const SERVICE = `
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: nginx }
  ports:
    - { name: http, port: 80, targetPort: http }
    - { name: https, port: 443 }
    - { name: dns, port: 53, protocol: UDP, targetPort: 5353 }
`;

const JOB = `
apiVersion: batch/v1
kind: Job
metadata: { name: pi }
spec:
  activeDeadlineSeconds: 600
  template:
    metadata: { labels: { job: pi } }
    spec:
      restartPolicy: Never
      containers:
        - name: pi
          image: perl:5.34.0
          command: [perl, -Mbignum=bpi, -wle, "print bpi(2000)"]
`;

describe('api schema: quantities', () => {
  const cases: [string | number, number][] = [
    ['100m', 0.1],
    ['0.5', 0.5],
    ['128Mi', 128 * 2 ** 20],
    ['1Gi', 2 ** 30],
    ['2', 2],
    ['1e3', 1000],
    ['1E3', 1000],
    ['1k', 1000],
    ['1M', 1e6],
    ['2G', 2e9],
    ['1E', 1e18],
    ['1Ki', 1024],
    ['1Ei', 2 ** 60],
    ['.5', 0.5],
    ['+1', 1],
    ['250u', 0.00025],
    ['-1', -1],
    [1, 1],
    [0.25, 0.25],
  ];
  for (const [input, want] of cases)
    it(`parses ${JSON.stringify(input)} as ${want}`, () => {
      const got = parseQuantity(input);
      assert.ok(Math.abs(got - want) <= Math.abs(want) * 1e-12, `got ${got}`);
    });

  for (const bad of ['abc', '', '1.2.3', '1 Gi', '1gi', 'Mi', '1e', '1KiB', '--1'])
    it(`rejects ${JSON.stringify(bad)} with a clear error`, () => {
      assert.throws(() => parseQuantity(bad), {
        name: 'QuantityError',
        message: new RegExp(`^invalid quantity "${bad.replace(/\./g, '\\.')}": expected a number`),
      });
    });

  it('rejects non-finite numbers', () => {
    assert.throws(() => parseQuantity(Infinity), /not a finite number/);
    assert.throws(() => parseQuantity(NaN), /not a finite number/);
  });
});

describe('api schema: real manifests validate and get Kubernetes defaults', () => {
  it('an nginx Deployment', () => {
    const { object: d, warnings } = accept<Deployment>(NGINX);
    assert.deepEqual(warnings, []);
    assert.equal(d.spec.replicas, 3);
    assert.deepEqual(d.spec.strategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' },
    });
    assert.equal(d.spec.revisionHistoryLimit, 10);
    assert.equal(d.spec.progressDeadlineSeconds, 600);
    assert.equal(d.spec.minReadySeconds, 0);
    const pod = d.spec.template.spec;
    assert.equal(pod.restartPolicy, 'Always');
    assert.equal(pod.dnsPolicy, 'ClusterFirst');
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    const c = pod.containers[0];
    assert.equal(c.imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(c.ports, [{ name: 'http', containerPort: 80, protocol: 'TCP' }]);
    assert.deepEqual(c.readinessProbe, {
      httpGet: { path: '/', port: 'http', scheme: 'HTTP' },
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
    assert.equal(d.metadata.namespace, undefined, 'the server fills the namespace, not validation');
  });

  it('kubectl --dry-run output (creationTimestamp: null, strategy: {}, status: {})', () => {
    const { object: d } = accept<Deployment>(KUBECTL_DRY_RUN);
    assert.equal('creationTimestamp' in d.metadata, false);
    assert.deepEqual(d.spec.template.metadata, { labels: { app: 'web' } });
    assert.deepEqual(d.spec.strategy.rollingUpdate, { maxSurge: '25%', maxUnavailable: '25%' });
    assert.equal(d.spec.template.spec.containers[0].imagePullPolicy, 'Always');
  });

  it('a Deployment with Recreate and explicit rolling-update numbers', () => {
    const recreate = parse(NGINX);
    recreate.spec.strategy = { type: 'Recreate' };
    assert.deepEqual(accept<Deployment>(recreate).object.spec.strategy, { type: 'Recreate' });
    const rolling = parse(NGINX);
    rolling.spec.strategy = { rollingUpdate: { maxSurge: 1 } };
    assert.deepEqual(accept<Deployment>(rolling).object.spec.strategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: '25%' },
    });
  });

  it('a ReplicaSet', () => {
    const rs = parse(NGINX);
    rs.kind = 'ReplicaSet';
    delete rs.spec.replicas;
    delete rs.spec.strategy;
    rs.status = {
      replicas: 3,
      fullyLabeledReplicas: 3,
      readyReplicas: 2,
      availableReplicas: 2,
      observedGeneration: 4,
    };
    const { object } = accept<ReplicaSet>(rs);
    assert.equal(object.spec.replicas, 1);
    assert.equal(object.status?.readyReplicas, 2);
  });

  it('a Pod with probes, env, volumes and scheduling', () => {
    const { object: pod, warnings } = accept<Pod>(POD);
    assert.deepEqual(warnings, []);
    const [app, sidecar] = pod.spec.containers;
    assert.equal(app.imagePullPolicy, 'Always', 'no tag means latest');
    assert.equal(sidecar.imagePullPolicy, 'Always', 'latest');
    assert.equal(
      pod.spec.initContainers?.[0].imagePullPolicy,
      'IfNotPresent',
      'a digest pins the image',
    );
    assert.deepEqual(app.livenessProbe, {
      tcpSocket: { port: 8080 },
      initialDelaySeconds: 5,
      periodSeconds: 10,
      timeoutSeconds: 1,
      successThreshold: 1,
      failureThreshold: 3,
    });
    assert.equal(app.readinessProbe?.periodSeconds, 5);
    assert.equal(app.readinessProbe?.failureThreshold, 1);
    assert.equal(app.startupProbe?.timeoutSeconds, 3);
    assert.deepEqual(
      app.ports?.map((p) => p.protocol),
      ['TCP', 'UDP'],
    );
    assert.deepEqual(app.resources?.requests, { cpu: 0.5, memory: 1e9, 'nvidia.com/gpu': 1 });
    assert.equal(pod.spec.volumes?.length, 4);
    assert.equal(pod.spec.restartPolicy, 'Always');
  });

  it('a Pod as `kubectl get -o yaml` prints it: managedFields dropped, status validated', () => {
    const raw = parse(`
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: "2024-05-01T10:00:00Z"
  generateName: web-7d9c5b8f4-
  labels: { app: web, pod-template-hash: 7d9c5b8f4 }
  managedFields:
    - apiVersion: v1
      fieldsType: FieldsV1
      fieldsV1: { f:metadata: { f:labels: {} } }
      manager: kube-controller-manager
      operation: Update
      time: "2024-05-01T10:00:00Z"
  name: web-7d9c5b8f4-x2x9z
  namespace: default
  ownerReferences:
    - { apiVersion: apps/v1, kind: ReplicaSet, name: web-7d9c5b8f4, uid: 0b7c, controller: true, blockOwnerDeletion: true }
  resourceVersion: "1234"
  selfLink: /api/v1/namespaces/default/pods/web-7d9c5b8f4-x2x9z
  uid: 5f1e
spec:
  containers:
    - image: nginx:1.25
      imagePullPolicy: IfNotPresent
      name: nginx
      resources: {}
      terminationMessagePath: /dev/termination-log
      terminationMessagePolicy: File
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  nodeName: worker-1
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Always
  schedulerName: default-scheduler
  securityContext: {}
  serviceAccount: default
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
status:
  conditions:
    - { lastProbeTime: null, lastTransitionTime: "2024-05-01T10:00:01Z", status: "True", type: Ready }
  containerStatuses:
    - containerID: docker://abc
      image: nginx:1.25
      imageID: docker-pullable://nginx@sha256:abc
      lastState:
        terminated: { exitCode: 137, reason: OOMKilled, finishedAt: "2024-05-01T10:00:00Z" }
      name: nginx
      ready: true
      restartCount: 1
      started: true
      state:
        running: { startedAt: "2024-05-01T10:00:01Z" }
  hostIP: 10.0.0.5
  hostIPs: [{ ip: 10.0.0.5 }]
  phase: Running
  podIP: 10.244.1.7
  podIPs: [{ ip: 10.244.1.7 }]
  qosClass: BestEffort
  startTime: "2024-05-01T10:00:00Z"
`);
    const { object: pod, warnings } = accept<Pod>(raw);
    assert.deepEqual(warnings, [], 'default values of unimplemented fields do not warn');
    assert.equal('managedFields' in pod.metadata, false);
    assert.equal('selfLink' in pod.metadata, false);
    assert.equal(pod.metadata.resourceVersion, '1234');
    assert.equal(pod.status?.phase, 'Running');
    assert.equal(pod.status?.containerStatuses?.[0].lastState?.terminated?.exitCode, 137);
    assert.equal(raw.metadata.managedFields.length, 1, 'the input keeps its managedFields');
  });

  it('a Service: ClusterIP, sessionAffinity None, TCP, targetPort = port', () => {
    const { object: svc } = accept<Service>(SERVICE);
    assert.equal(svc.spec.type, 'ClusterIP');
    assert.equal(svc.spec.sessionAffinity, 'None');
    assert.deepEqual(svc.spec.ports, [
      { name: 'http', protocol: 'TCP', port: 80, targetPort: 'http' },
      { name: 'https', protocol: 'TCP', port: 443, targetPort: 443 },
      { name: 'dns', protocol: 'UDP', port: 53, targetPort: 5353 },
    ]);
  });

  it('headless, NodePort and ExternalName Services', () => {
    accept(`
apiVersion: v1
kind: Service
metadata: { name: db }
spec: { clusterIP: None, clusterIPs: [None], selector: { app: db }, publishNotReadyAddresses: true }
`);
    const { object: np } = accept<Service>(`
apiVersion: v1
kind: Service
metadata: { name: web-np }
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  externalTrafficPolicy: Cluster
  internalTrafficPolicy: Cluster
  sessionAffinity: ClientIP
  sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } }
  ports: [{ port: 80, nodePort: 30080 }]
  selector: { app: web }
status: { loadBalancer: {} }
`);
    assert.equal(np.spec.ports?.[0].nodePort, 30080);
    accept(`
apiVersion: v1
kind: Service
metadata: { name: search }
spec: { type: ExternalName, externalName: search.example.com }
`);
  });

  it('Endpoints', () => {
    const { object: ep } = accept<Endpoints>(`
apiVersion: v1
kind: Endpoints
metadata: { name: web }
subsets:
  - addresses:
      - ip: 10.244.1.7
        nodeName: worker-1
        targetRef: { kind: Pod, name: web-1, namespace: default, uid: 5f1e }
    notReadyAddresses:
      - { ip: 10.244.2.3, hostname: web-2 }
    ports:
      - { name: http, port: 8080 }
`);
    assert.equal(ep.subsets?.[0].ports?.[0].protocol, 'TCP');
  });

  it('a Job: one completion, parallelism 1, backoffLimit 6', () => {
    const { object: job, warnings } = accept<Job>(JOB);
    assert.deepEqual(warnings, []);
    assert.equal(job.spec.completions, 1);
    assert.equal(job.spec.parallelism, 1);
    assert.equal(job.spec.backoffLimit, 6);
    assert.equal(job.spec.selector, undefined, 'the server generates the selector');
  });

  it('a work-queue Job (parallelism only) leaves completions unset', () => {
    const raw = parse(JOB);
    raw.spec.parallelism = 5;
    const { object: job } = accept<Job>(raw);
    assert.equal(job.spec.parallelism, 5);
    assert.equal('completions' in job.spec, false);
  });

  it('a Job with status', () => {
    const raw = parse(JOB);
    raw.spec.completions = 3;
    raw.spec.template.spec.restartPolicy = 'OnFailure';
    raw.status = {
      active: 1,
      succeeded: 2,
      failed: 0,
      startTime: '2024-05-01T10:00:00Z',
      conditions: [{ type: 'Complete', status: 'False', lastProbeTime: '2024-05-01T10:00:00Z' }],
    };
    const { object: job } = accept<Job>(raw);
    assert.equal(job.spec.completions, 3);
    assert.equal(job.spec.parallelism, 1);
  });

  it('a Secret: type Opaque; stringData merged into data as Kubernetes does', () => {
    const { object: s } = accept<Secret>(`
apiVersion: v1
kind: Secret
metadata: { name: shop-secret }
data:
  password: czNjcjN0
  empty: ""
stringData:
  user: admin
`);
    assert.equal(s.type, 'Opaque');
    assert.deepEqual(s.data, { password: 'czNjcjN0', empty: '', user: 'YWRtaW4=' });
    assert.equal('stringData' in s, false);
  });

  it('a TLS Secret needs tls.crt and tls.key', () => {
    accept(`
apiVersion: v1
kind: Secret
metadata: { name: shop-tls }
type: kubernetes.io/tls
data: { tls.crt: Y2VydA==, tls.key: a2V5 }
immutable: true
`);
  });

  it('a ConfigMap', () => {
    const { object: cm } = accept<ConfigMap>(`
apiVersion: v1
kind: ConfigMap
metadata: { name: shop-config, labels: { app: shop } }
data:
  db.host: postgres
  app.yaml: |
    log: debug
  _UNDER-score.ok: "1"
binaryData:
  logo.png: iVBORw0KGgo=
immutable: false
`);
    assert.equal(cm.data?.['db.host'], 'postgres');
  });

  it('a LimitRange', () => {
    const { object: lr } = accept<LimitRange>(`
apiVersion: v1
kind: LimitRange
metadata: { name: limits }
spec:
  limits:
    - type: Container
      default: { cpu: 500m, memory: 512Mi }
      defaultRequest: { cpu: 100m, memory: 128Mi }
      max: { cpu: "2", memory: 1Gi }
      min: { cpu: 50m }
      maxLimitRequestRatio: { cpu: 10 }
    - type: Pod
      max: { cpu: "4" }
`);
    assert.equal(lr.spec.limits.length, 2);
  });

  it('a ResourceQuota with status', () => {
    const { object: q } = accept<ResourceQuota>(`
apiVersion: v1
kind: ResourceQuota
metadata: { name: quota, namespace: shop }
spec:
  hard:
    pods: "10"
    requests.cpu: "4"
    limits.memory: 8Gi
    count/deployments.apps: 5
    requests.nvidia.com/gpu: 2
status:
  hard: { pods: "10" }
  used: { pods: "3" }
`);
    assert.equal(q.status?.used?.pods, '3');
  });

  it('a Namespace', () => {
    const { object: ns } = accept<Namespace>(`
apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { team: a } }
spec: { finalizers: [kubernetes] }
status: { phase: Active }
`);
    assert.equal(ns.status?.phase, 'Active');
  });

  it('a Node with status', () => {
    const { object: node } = accept<Node>(`
apiVersion: v1
kind: Node
metadata:
  name: worker-1
  labels: { kubernetes.io/hostname: worker-1, kubernetes.io/arch: amd64 }
spec:
  podCIDR: 10.244.1.0/24
  podCIDRs: [10.244.1.0/24]
  providerID: baton://worker-1
  unschedulable: false
  taints:
    - { key: node-role.kubernetes.io/control-plane, effect: NoSchedule }
    - { key: dedicated, value: gpu, effect: NoExecute, timeAdded: "2024-05-01T10:00:00Z" }
status:
  capacity: { cpu: "8", memory: 32Gi, pods: "110", ephemeral-storage: 100Gi }
  allocatable: { cpu: 7800m, memory: 31Gi, pods: "110" }
  conditions:
    - type: Ready
      status: "True"
      lastHeartbeatTime: "2024-05-01T10:00:00Z"
      lastTransitionTime: "2024-05-01T09:00:00Z"
      reason: KubeletReady
      message: kubelet is posting ready status
  addresses:
    - { type: InternalIP, address: 10.0.0.5 }
    - { type: Hostname, address: worker-1 }
  daemonEndpoints: { kubeletEndpoint: { Port: 10250 } }
  nodeInfo:
    machineID: m
    systemUUID: s
    bootID: b
    kernelVersion: 6.1.0
    osImage: Debian GNU/Linux 12 (bookworm)
    containerRuntimeVersion: docker://24.0.7
    kubeletVersion: baton-0.1.0
    kubeProxyVersion: baton-0.1.0
    operatingSystem: linux
    architecture: amd64
`);
    assert.equal(node.status?.allocatable?.cpu, '7800m');
  });

  it('an Event', () => {
    const { object: ev } = accept<Event>(`
apiVersion: v1
kind: Event
metadata: { name: web-1.17c2a1b3, namespace: default }
involvedObject: { kind: Pod, name: web-1, namespace: default, uid: 5f1e, apiVersion: v1, fieldPath: "spec.containers{nginx}" }
reason: Pulled
message: Successfully pulled image "nginx:1.25"
type: Normal
count: 2
firstTimestamp: "2024-05-01T10:00:00Z"
lastTimestamp: "2024-05-01T10:00:05Z"
eventTime: "2024-05-01T10:00:05.123456Z"
source: { component: baton-node, host: worker-1 }
reportingComponent: baton-node
reportingInstance: worker-1
action: Pull
related: { kind: Node, name: worker-1 }
`);
    assert.equal(ev.count, 2);
  });
});

describe('api schema: errors are `path: reason`', () => {
  const pod = (patch: (p: { spec: Record<string, unknown> } & Record<string, unknown>) => void) => {
    const p = parse(`
apiVersion: v1
kind: Pod
metadata: { name: p }
spec:
  containers: [{ name: c, image: busybox }]
`);
    patch(p);
    return p;
  };
  const nameError = (rule: string) =>
    rule === 'label'
      ? "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
      : "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

  const cases: { name: string; manifest: unknown; errors: string[] }[] = [
    {
      name: 'unknown field at depth',
      manifest: (() => {
        const d = parse(NGINX);
        d.spec.template.spec.containers[0].imagePullPolicyy = 'Always';
        return d;
      })(),
      errors: ['spec.template.spec.containers[0].imagePullPolicyy: unknown field'],
    },
    {
      name: 'unknown top-level fields, one line each',
      manifest: pod((p) => {
        p.spce = {};
        p.extra = 1;
      }),
      errors: ['spce: unknown field', 'extra: unknown field'],
    },
    {
      name: 'wrong type',
      manifest: (() => {
        const d = parse(NGINX);
        d.spec.replicas = '3';
        return d;
      })(),
      errors: ['spec.replicas: expected integer, got string'],
    },
    {
      name: 'wrong types: string, array, object, non-integer',
      manifest: pod((p) => {
        p.spec.containers = [{ name: 'c', image: 5, command: 'sleep 1', env: { A: 'b' } }];
        p.spec.terminationGracePeriodSeconds = 1.5;
      }),
      errors: [
        'spec.containers[0].image: expected string, got integer',
        'spec.containers[0].command: expected array, got string',
        'spec.containers[0].env: expected array, got object',
        'spec.terminationGracePeriodSeconds: expected integer, got number',
      ],
    },
    {
      name: 'required fields',
      manifest: pod((p) => {
        p.spec.containers = [{ name: 'c' }];
      }),
      errors: ['spec.containers[0].image: required'],
    },
    {
      name: 'unsupported enum value',
      manifest: pod((p) => {
        p.spec.restartPolicy = 'Sometimes';
      }),
      errors: [
        'spec.restartPolicy: unsupported value "Sometimes": supported values: "Always", "OnFailure", "Never"',
      ],
    },
    {
      name: 'uppercase name',
      manifest: pod((p) => {
        p.metadata = { name: 'Web' };
      }),
      errors: [`metadata.name: invalid name "Web": ${nameError('subdomain')}`],
    },
    {
      name: 'name too long',
      manifest: pod((p) => {
        p.metadata = { name: 'a'.repeat(254) };
      }),
      errors: [
        `metadata.name: invalid name "${'a'.repeat(254)}": must be no more than 253 characters`,
      ],
    },
    {
      name: 'leading dash',
      manifest: pod((p) => {
        p.metadata = { name: '-web' };
      }),
      errors: [`metadata.name: invalid name "-web": ${nameError('subdomain')}`],
    },
    {
      name: 'a Service name is a DNS label (no dots)',
      manifest: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web.v2' },
        spec: { ports: [{ port: 80 }] },
      },
      errors: [`metadata.name: invalid name "web.v2": ${nameError('label')}`],
    },
    {
      name: 'a Namespace name is at most 63 characters',
      manifest: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n'.repeat(64) } },
      errors: [
        `metadata.name: invalid name "${'n'.repeat(64)}": must be no more than 63 characters`,
      ],
    },
    {
      name: 'missing name',
      manifest: pod((p) => {
        p.metadata = { labels: { a: 'b' } };
      }),
      errors: ['metadata.name: required (or set metadata.generateName)'],
    },
    {
      name: 'bad label key and value',
      manifest: pod((p) => {
        p.metadata = {
          name: 'p',
          labels: {
            'Example.com/app': 'x',
            'app/': 'x',
            tier: '-web',
            version: 'v'.repeat(64),
          },
        };
      }),
      errors: [
        `metadata.labels.Example.com/app: invalid label key "Example.com/app": prefix part ${nameError('subdomain')}`,
        'metadata.labels.app/: invalid label key "app/": name part must be non-empty',
        "metadata.labels.tier: invalid label value \"-web\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
        `metadata.labels.version: invalid label value "${'v'.repeat(64)}": must be no more than 63 characters`,
      ],
    },
    {
      name: 'cluster-scoped object with a namespace',
      manifest: {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: 'worker-1', namespace: 'default' },
      },
      errors: ['metadata.namespace: not allowed: Node is cluster-scoped'],
    },
    {
      name: 'selector does not match the template labels',
      manifest: (() => {
        const d = parse(NGINX);
        d.spec.template.metadata.labels = { app: 'nginx', tier: 'db' };
        return d;
      })(),
      errors: ['spec.selector: does not match template labels'],
    },
    {
      name: 'Deployment without selector (apps/v1)',
      manifest: (() => {
        const d = parse(NGINX);
        delete d.spec.selector;
        return d;
      })(),
      errors: ['spec.selector: required'],
    },
    {
      name: 'Deployment with an empty selector',
      manifest: (() => {
        const d = parse(NGINX);
        d.spec.selector = {};
        return d;
      })(),
      errors: ['spec.selector: empty selector is invalid for Deployment'],
    },
    {
      name: 'Job selector that does not match',
      manifest: (() => {
        const j = parse(JOB);
        j.spec.selector = { matchLabels: { job: 'other' } };
        j.spec.manualSelector = true;
        return j;
      })(),
      errors: ['spec.selector: does not match template labels'],
    },
    {
      name: 'Job whose template restarts Always (explicitly)',
      manifest: (() => {
        const j = parse(JOB);
        j.spec.template.spec.restartPolicy = 'Always';
        return j;
      })(),
      errors: [
        'spec.template.spec.restartPolicy: unsupported value "Always": a Job supports only "Never" or "OnFailure"',
      ],
    },
    {
      name: 'Job whose template has no restartPolicy (defaults to Always)',
      manifest: (() => {
        const j = parse(JOB);
        delete j.spec.template.spec.restartPolicy;
        return j;
      })(),
      errors: [
        'spec.template.spec.restartPolicy: unsupported value "Always": a Job supports only "Never" or "OnFailure"',
      ],
    },
    {
      name: 'duplicate container names (across init containers too)',
      manifest: pod((p) => {
        p.spec.containers = [
          { name: 'c', image: 'a' },
          { name: 'c', image: 'b' },
        ];
        p.spec.initContainers = [{ name: 'c', image: 'i' }];
      }),
      errors: [
        'spec.containers[1].name: duplicate container name "c"',
        'spec.initContainers[0].name: duplicate container name "c"',
      ],
    },
    {
      name: 'container name must be a DNS label',
      manifest: pod((p) => {
        p.spec.containers = [{ name: 'my_app', image: 'a' }];
      }),
      errors: [`spec.containers[0].name: invalid container name "my_app": ${nameError('label')}`],
    },
    {
      name: 'bad ports',
      manifest: pod((p) => {
        p.spec.containers = [
          { name: 'c', image: 'a', ports: [{ containerPort: 0 }, { containerPort: 70000 }] },
        ];
      }),
      errors: [
        'spec.containers[0].ports[0].containerPort: must be between 1 and 65535, inclusive',
        'spec.containers[0].ports[1].containerPort: must be between 1 and 65535, inclusive',
      ],
    },
    {
      name: 'bad Service targetPort',
      manifest: {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 's' },
        spec: { ports: [{ port: 80, targetPort: 'HTTP_PORT' }] },
      },
      errors: [
        "spec.ports[0].targetPort: must contain only lower-case alphanumeric characters and '-'",
      ],
    },
    {
      name: 'bad quantity',
      manifest: pod((p) => {
        p.spec.containers = [
          { name: 'c', image: 'a', resources: { limits: { cpu: 'lots', memory: '1GB' } } },
        ];
      }),
      errors: [
        'spec.containers[0].resources.limits.cpu: invalid quantity "lots": expected a number with an optional suffix (n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei) or exponent (1e3)',
        'spec.containers[0].resources.limits.memory: invalid quantity "1GB": expected a number with an optional suffix (n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei) or exponent (1e3)',
      ],
    },
    {
      name: 'request above limit',
      manifest: pod((p) => {
        p.spec.containers = [
          { name: 'c', image: 'a', resources: { requests: { cpu: '2' }, limits: { cpu: '500m' } } },
        ];
      }),
      errors: [
        'spec.containers[0].resources.requests.cpu: must be less than or equal to cpu limit of 500m',
      ],
    },
    {
      name: 'bad base64 in a Secret',
      manifest: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 's' },
        data: { password: 'not base64!' },
      },
      errors: ['data.password: invalid base64 value'],
    },
    {
      name: 'bad ConfigMap key',
      manifest: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'c' },
        data: { 'a b': 'x' },
      },
      errors: [
        `data.a b: invalid key "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.'`,
      ],
    },
    {
      name: 'volume mount without a volume',
      manifest: pod((p) => {
        p.spec.containers = [
          { name: 'c', image: 'a', volumeMounts: [{ name: 'data', mountPath: '/data' }] },
        ];
      }),
      errors: ['spec.containers[0].volumeMounts[0].name: volume "data" not found in spec.volumes'],
    },
    {
      name: 'probe without a handler, and two volume types',
      manifest: pod((p) => {
        p.spec.containers = [{ name: 'c', image: 'a', livenessProbe: { periodSeconds: 5 } }];
        p.spec.volumes = [{ name: 'v', emptyDir: {}, hostPath: { path: '/x' } }];
      }),
      errors: [
        'spec.containers[0].livenessProbe: must specify one handler: httpGet, tcpSocket, exec, grpc',
        'spec.volumes[0].hostPath: may not specify more than one volume type (emptyDir and hostPath given)',
      ],
    },
    {
      name: 'unknown kind',
      manifest: { apiVersion: 'v1', kind: 'Ingress', metadata: { name: 'i' } },
      errors: [
        'kind: unknown kind "Ingress"; known kinds: Namespace, Node, Pod, Service, Endpoints, ConfigMap, Secret, LimitRange, ResourceQuota, Event, Deployment, ReplicaSet, Job, CronJob',
      ],
    },
    {
      name: 'wrong apiVersion',
      manifest: (() => {
        const d = parse(NGINX);
        d.apiVersion = 'v1';
        return d;
      })(),
      errors: ['apiVersion: expected "apps/v1" for Deployment, got "v1"'],
    },
    {
      name: 'missing apiVersion and kind',
      manifest: { metadata: { name: 'x' } },
      errors: ['apiVersion: required', 'kind: required'],
    },
    {
      name: 'not an object',
      manifest: ['a list'],
      errors: ['(root): expected object, got array'],
    },
  ];

  for (const c of cases)
    it(c.name, () => {
      assert.deepEqual(reject(c.manifest), c.errors);
    });

  it('generateName alone is accepted (admission assigns the name)', () => {
    const { object } = accept<Pod>(
      pod((p) => {
        p.metadata = { generateName: 'web-' };
      }),
    );
    assert.equal(object.metadata.name, undefined);
  });
});

describe('api schema: warnings for what Baton accepts but ignores', () => {
  it('lists each unimplemented field by its path', () => {
    const d = parse(NGINX);
    const spec = d.spec.template.spec;
    spec.affinity = {
      podAntiAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: [
          {
            labelSelector: { matchLabels: { app: 'nginx' } },
            topologyKey: 'kubernetes.io/hostname',
          },
        ],
      },
    };
    spec.securityContext = { runAsNonRoot: true };
    spec.serviceAccountName = 'builder';
    spec.imagePullSecrets = [{ name: 'registry' }];
    spec.priorityClassName = 'high';
    spec.containers[0].lifecycle = { preStop: { exec: { command: ['nginx', '-s', 'quit'] } } };
    spec.containers[0].volumeMounts = [{ name: 'data', mountPath: '/data' }];
    spec.volumes = [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }];
    const { warnings } = accept(d);
    assert.deepEqual(warnings, [
      'spec.template.spec.containers[0].lifecycle: accepted but not implemented by Baton, ignored',
      'spec.template.spec.securityContext: accepted but not implemented by Baton, ignored',
      'spec.template.spec.serviceAccountName: "builder" accepted but not implemented by Baton, ignored',
      'spec.template.spec.imagePullSecrets: accepted but not implemented by Baton, ignored',
      'spec.template.spec.priorityClassName: accepted but not implemented by Baton, ignored',
      'spec.template.spec.affinity.podAntiAffinity: accepted but not implemented by Baton, ignored',
      'spec.template.spec.volumes[0].persistentVolumeClaim: accepted but not implemented by Baton, the volume is not mounted',
    ]);
  });

  it('Service and Job features', () => {
    const svc = accept(`
apiVersion: v1
kind: Service
metadata: { name: lb }
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ports: [{ port: 80 }]
`);
    assert.deepEqual(svc.warnings, [
      'spec.type: "LoadBalancer" accepted but not implemented by Baton, no load balancer is provisioned',
      'spec.externalTrafficPolicy: "Local" accepted but not implemented by Baton, treated as Cluster',
    ]);
    const j = parse(JOB);
    j.spec.ttlSecondsAfterFinished = 100;
    j.spec.completionMode = 'Indexed';
    j.spec.completions = 3;
    j.spec.backoffLimitPerIndex = 1;
    assert.deepEqual(accept(j).warnings, [
      'spec.backoffLimitPerIndex: accepted but not implemented by Baton, ignored',
    ]);
  });

  it('are reported alongside errors too', () => {
    const r = validateObject({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p' },
      spec: {
        containers: [{ name: 'c' }],
        affinity: { podAffinity: {} },
        imagePullSecrets: [{ name: 'r' }],
      },
    });
    assert.equal(r.ok, false);
    assert.deepEqual(r.warnings, [
      'spec.imagePullSecrets: accepted but not implemented by Baton, ignored',
    ]);
  });
});

describe('api schema: purity', () => {
  it('never mutates its input and returns fresh objects', () => {
    const raw = deepFreeze(parse(POD));
    const before = structuredClone(raw);
    const { object } = accept<Pod>(raw);
    assert.deepEqual(raw, before);
    assert.notEqual(object.spec, raw.spec);
    assert.notEqual(object.spec.containers[0], raw.spec.containers[0]);
    object.spec.containers[0].env?.push({ name: 'X', value: 'y' });
    assert.deepEqual(raw, before);
  });
});

describe('api schema: validating a validated object changes nothing (property)', () => {
  const name = fc.stringMatching(/^[a-z]([-a-z0-9]{0,10}[a-z0-9])?$/);
  const labelValue = fc.stringMatching(/^([A-Za-z0-9]([-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?)?$/);
  const quantity = fc.oneof(
    fc.constantFrom('100m', '0.5', '128Mi', '1Gi', '2', '1e3', '250k'),
    fc.integer({ min: 0, max: 64 }),
  );
  const probe = fc.record(
    {
      httpGet: fc.record({
        path: fc.constant('/healthz'),
        port: fc.oneof(fc.constant('http'), fc.integer({ min: 1, max: 65535 })),
      }),
      periodSeconds: fc.integer({ min: 1, max: 60 }),
      failureThreshold: fc.integer({ min: 1, max: 10 }),
      initialDelaySeconds: fc.integer({ min: 0, max: 60 }),
    },
    { requiredKeys: ['httpGet'] },
  );
  const container = fc.record(
    {
      name,
      image: fc.constantFrom(
        'nginx',
        'nginx:latest',
        'nginx:1.25',
        'registry.local:5000/app',
        'app@sha256:abc',
      ),
      imagePullPolicy: fc.constantFrom('Always', 'IfNotPresent', 'Never'),
      command: fc.array(fc.string(), { maxLength: 3 }),
      env: fc.array(fc.record({ name: fc.constantFrom('A', 'B_C', 'D'), value: fc.string() }), {
        maxLength: 3,
      }),
      ports: fc.uniqueArray(
        fc.record(
          {
            containerPort: fc.integer({ min: 1, max: 65535 }),
            protocol: fc.constantFrom('TCP', 'UDP'),
          },
          { requiredKeys: ['containerPort'] },
        ),
        { maxLength: 3, selector: (p) => p.containerPort },
      ),
      resources: fc.record(
        { requests: fc.dictionary(fc.constantFrom('cpu', 'memory', 'nvidia.com/gpu'), quantity) },
        { requiredKeys: [] },
      ),
      livenessProbe: probe,
      readinessProbe: probe,
      tty: fc.boolean(),
    },
    { requiredKeys: ['name', 'image'] },
  );
  const pod = fc.record({
    apiVersion: fc.constant('v1'),
    kind: fc.constant('Pod'),
    metadata: fc.record(
      {
        name,
        namespace: name,
        labels: fc.dictionary(fc.constantFrom('app', 'example.com/tier', 'v'), labelValue),
      },
      { requiredKeys: ['name'] },
    ),
    spec: fc.record(
      {
        containers: fc.uniqueArray(container, {
          minLength: 1,
          maxLength: 3,
          selector: (c) => c.name,
        }),
        restartPolicy: fc.constantFrom('Always', 'OnFailure', 'Never'),
        terminationGracePeriodSeconds: fc.integer({ min: 0, max: 300 }),
        nodeSelector: fc.dictionary(fc.constantFrom('disk', 'zone'), labelValue),
        hostNetwork: fc.boolean(),
        tolerations: fc.array(
          fc.record({
            operator: fc.constant('Exists'),
            effect: fc.constantFrom('NoSchedule', 'NoExecute'),
          }),
        ),
      },
      { requiredKeys: ['containers'] },
    ),
  });

  it('validateObject(validateObject(pod)) equals validateObject(pod)', () => {
    fc.assert(
      fc.property(pod, (p) => {
        const first = validateObject(p);
        if (!first.ok) throw new Error(`generated pod rejected:\n${formatIssues(first.errors)}`);
        const again = validateObject(first.object);
        if (!again.ok) throw new Error(`validated pod rejected:\n${formatIssues(again.errors)}`);
        assert.deepEqual(again.object, first.object);
        assert.deepEqual(again.warnings, first.warnings);
      }),
      { numRuns: 300 },
    );
  });
});
