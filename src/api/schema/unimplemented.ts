/**
 * The fields Baton accepts, so Kubernetes manifests load unchanged, but
 * does not act on. Each one set to something that matters becomes a
 * warning, so nobody believes a pod anti-affinity or a PVC is in force when
 * it is not. This table is the one place to edit when a feature lands.
 */

interface Rule {
  /** Relative to the kind's root, or to a pod spec for POD_SPEC; `[*]` walks an array. */
  path: string;
  /** When given, only these values warn; otherwise any value that is set and not empty. */
  when?: (v: unknown) => boolean;
  /** What happens instead; default "ignored". */
  effect?: string;
}

const not =
  (...harmless: unknown[]) =>
  (v: unknown) =>
    !harmless.includes(v);
const is =
  (...values: unknown[]) =>
  (v: unknown) =>
    values.includes(v);

const CONTAINER: Rule[] = [
  { path: 'securityContext' },
  { path: 'lifecycle' },
  { path: 'resizePolicy' },
  { path: 'volumeDevices' },
  { path: 'resources.claims' },
  { path: 'livenessProbe.grpc' },
  { path: 'readinessProbe.grpc' },
  { path: 'startupProbe.grpc' },
  { path: 'env[*].valueFrom.resourceFieldRef' },
];

const POD_SPEC: Rule[] = [
  ...CONTAINER.map((r) => ({ ...r, path: `containers[*].${r.path}` })),
  ...CONTAINER.map((r) => ({ ...r, path: `initContainers[*].${r.path}` })),
  { path: 'initContainers[*].restartPolicy', effect: 'runs as an ordinary init container' },
  { path: 'securityContext' },
  { path: 'serviceAccountName', when: not('default') },
  { path: 'serviceAccount', when: not('default') },
  { path: 'automountServiceAccountToken', when: is(true) },
  { path: 'imagePullSecrets' },
  { path: 'priorityClassName' },
  { path: 'priority', when: not(0) },
  { path: 'preemptionPolicy', when: not('PreemptLowerPriority') },
  { path: 'schedulerName', when: not('default-scheduler') },
  { path: 'schedulingGates' },
  { path: 'affinity.podAffinity' },
  { path: 'affinity.podAntiAffinity' },
  { path: 'topologySpreadConstraints' },
  { path: 'dnsConfig' },
  { path: 'hostAliases' },
  { path: 'hostPID', when: is(true) },
  { path: 'hostIPC', when: is(true) },
  { path: 'hostUsers', when: is(false) },
  { path: 'shareProcessNamespace', when: is(true) },
  { path: 'setHostnameAsFQDN', when: is(true) },
  { path: 'runtimeClassName' },
  { path: 'overhead' },
  { path: 'readinessGates' },
  { path: 'os', when: (v) => (v as { name?: string }).name !== 'linux' },
  { path: 'volumes[*].persistentVolumeClaim', effect: 'the volume is not mounted' },
  { path: 'volumes[*].projected', effect: 'the volume is not mounted' },
  { path: 'volumes[*].downwardAPI', effect: 'the volume is not mounted' },
];

/** Job spec fields Baton accepts without acting on them, under `prefix` (a Job's or a CronJob's). */
function jobRules(prefix: string): Rule[] {
  return [
    'podFailurePolicy',
    'backoffLimitPerIndex',
    'maxFailedIndexes',
    'successPolicy',
    'podReplacementPolicy',
    'managedBy',
  ].map((f) => ({ path: prefix + f }));
}

/** Per kind: rules from the object's root, and where its pod spec is. */
const KIND_RULES: Record<string, { rules: Rule[]; podSpec?: string }> = {
  Pod: { rules: [], podSpec: 'spec' },
  Deployment: { rules: [], podSpec: 'spec.template.spec' },
  ReplicaSet: { rules: [], podSpec: 'spec.template.spec' },
  Job: { podSpec: 'spec.template.spec', rules: jobRules('spec.') },
  CronJob: {
    podSpec: 'spec.jobTemplate.spec.template.spec',
    rules: jobRules('spec.jobTemplate.spec.'),
  },
  Service: {
    rules: [
      { path: 'spec.type', when: is('LoadBalancer'), effect: 'no load balancer is provisioned' },
      { path: 'spec.externalTrafficPolicy', when: is('Local'), effect: 'treated as Cluster' },
      { path: 'spec.internalTrafficPolicy', when: is('Local'), effect: 'treated as Cluster' },
      { path: 'spec.healthCheckNodePort' },
      { path: 'spec.externalIPs' },
      { path: 'spec.loadBalancerIP' },
      { path: 'spec.loadBalancerSourceRanges' },
      { path: 'spec.loadBalancerClass' },
      { path: 'spec.allocateLoadBalancerNodePorts' },
      { path: 'spec.ipFamilyPolicy', when: not('SingleStack'), effect: 'IPv4 only' },
      { path: 'spec.trafficDistribution' },
    ],
  },
  ResourceQuota: {
    rules: [
      { path: 'spec.scopes', effect: 'the quota applies to every pod' },
      { path: 'spec.scopeSelector', effect: 'the quota applies to every pod' },
    ],
  },
  LimitRange: {
    rules: [{ path: 'spec.limits[*].type', when: is('PersistentVolumeClaim') }],
  },
};

function isSet(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Every (path, value) the dotted `path` reaches from `root`, `[*]` fanning out over arrays. */
function reach(root: unknown, path: string, prefix: string): [string, unknown][] {
  let found: [string, unknown][] = [[prefix, root]];
  for (const seg of path.split('.')) {
    const star = seg.endsWith('[*]');
    const key = star ? seg.slice(0, -3) : seg;
    const next: [string, unknown][] = [];
    for (const [p, v] of found) {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) continue;
      const child = (v as Record<string, unknown>)[key];
      const cp = p === '' ? key : `${p}.${key}`;
      if (!star) next.push([cp, child]);
      else if (Array.isArray(child)) child.forEach((c, i) => next.push([`${cp}[${i}]`, c]));
    }
    found = next;
  }
  return found;
}

function apply(root: unknown, rules: Rule[], prefix: string, out: string[]): void {
  for (const r of rules)
    for (const [p, v] of reach(root, r.path, prefix)) {
      if (!isSet(v) || (r.when && !r.when(v))) continue;
      const what = r.when && typeof v !== 'object' ? ` ${JSON.stringify(v)}` : '';
      out.push(`${p}:${what} accepted but not implemented by Baton, ${r.effect ?? 'ignored'}`);
    }
}

/** The warnings for an object of `kind` (valid or not: only the shape that is there is read). */
export function unimplementedFields(kind: string, object: unknown): string[] {
  const k = KIND_RULES[kind];
  if (!k) return [];
  const out: string[] = [];
  if (k.podSpec) {
    const [spec] = reach(object, k.podSpec, '');
    if (spec) apply(spec[1], POD_SPEC, spec[0], out);
  }
  apply(object, k.rules, '', out);
  return out;
}
