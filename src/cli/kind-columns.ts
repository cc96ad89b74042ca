/**
 * kubectl's columns and cell rules per kind (k8s.io/kubernetes
 * pkg/printers/internalversion): what a table row of each kind shows.
 */
import type {
  ConfigMap,
  CronJob,
  Deployment,
  Endpoints,
  Event,
  Job,
  LabelSelector as K8sLabelSelector,
  Namespace,
  Node,
  Pod,
  ReplicaSet,
  Secret,
  Service,
} from '../api/schema';
import { formatLabelSelector, labelSelectorFromK8s } from '../api/selectors';
import { ApiObject } from '../api/types';
import { formatAge, humanDuration } from './age';

/** Every field optional, all the way down: printing never fails on a partial object. */
type Loose<T> = T extends readonly (infer U)[]
  ? Loose<U>[]
  : T extends object
    ? { [K in keyof T]?: Loose<T[K]> }
    : T;

type LPod = Loose<Pod>;
type Condition = { type?: string; status?: string; reason?: string };

const hasCondition = (conds: Condition[] | undefined, type: string): boolean =>
  (conds ?? []).some((c) => c.type === type && c.status === 'True');

interface PodSummary {
  status: string;
  ready: number;
  total: number;
  restarts: number;
  /** When a container last terminated, for "3 (5m ago)". */
  lastRestart?: string;
}

/** kubectl's printPod: the STATUS, READY and RESTARTS of a pod. */
function summarizePod(pod: LPod): PodSummary {
  const st = pod.status ?? {};
  let status: string = st.reason || st.phase || 'Pending';
  if (
    (st.conditions ?? []).some((c) => c.type === 'PodScheduled' && c.reason === 'SchedulingGated')
  )
    status = 'SchedulingGated';
  let restarts = 0;
  let ready = 0;
  let lastRestart: string | undefined;
  const noteRestart = (at: string | undefined) => {
    if (at && (!lastRestart || Date.parse(at) > Date.parse(lastRestart))) lastRestart = at;
  };

  let initializing = false;
  const inits = st.initContainerStatuses ?? [];
  for (const [i, c] of inits.entries()) {
    restarts += c.restartCount ?? 0;
    noteRestart(c.lastState?.terminated?.finishedAt);
    const t = c.state?.terminated;
    const w = c.state?.waiting;
    if (t && t.exitCode === 0) continue;
    if (t)
      status = t.reason
        ? `Init:${t.reason}`
        : t.signal
          ? `Init:Signal:${t.signal}`
          : `Init:ExitCode:${t.exitCode}`;
    else if (w?.reason && w.reason !== 'PodInitializing') status = `Init:${w.reason}`;
    else status = `Init:${i}/${pod.spec?.initContainers?.length ?? inits.length}`;
    initializing = true;
    break;
  }

  if (!initializing || hasCondition(st.conditions, 'Initialized')) {
    restarts = 0;
    lastRestart = undefined;
    let hasRunning = false;
    const cs = st.containerStatuses ?? [];
    // Backwards, as kubectl does: the first container's state wins.
    for (const c of [...cs].reverse()) {
      restarts += c.restartCount ?? 0;
      noteRestart(c.lastState?.terminated?.finishedAt);
      const t = c.state?.terminated;
      const w = c.state?.waiting;
      if (w?.reason) status = w.reason;
      else if (t?.reason) status = t.reason;
      else if (t) status = t.signal ? `Signal:${t.signal}` : `ExitCode:${t.exitCode}`;
      else if (c.ready && !w) {
        // kubectl also requires state.running; a ready container with no
        // state at all is counted too (it is not waiting or terminated).
        hasRunning = hasRunning || c.state?.running !== undefined;
        ready++;
      }
    }
    if (status === 'Completed' && hasRunning)
      status = hasCondition(st.conditions, 'Ready') ? 'Running' : 'NotReady';
  }

  const terminal = st.phase === 'Succeeded' || st.phase === 'Failed';
  if (pod.metadata?.deletionTimestamp && st.reason === 'NodeLost') status = 'Unknown';
  else if (pod.metadata?.deletionTimestamp && !terminal) status = 'Terminating';
  return { status, ready, total: pod.spec?.containers?.length ?? 0, restarts, lastRestart };
}

/** A pod's STATUS column, computed like kubectl's. */
export function podStatus(pod: ApiObject): string {
  return summarizePod(pod as LPod).status;
}

/** metav1.FormatLabelSelector: "<none>" when empty or absent, "<error>" when invalid. */
function selectorCell(sel: Loose<K8sLabelSelector> | undefined): string {
  if (!sel) return '<none>';
  try {
    return formatLabelSelector(labelSelectorFromK8s(sel as K8sLabelSelector)) || '<none>';
  } catch {
    return '<error>';
  }
}

/** labels.FormatLabels: sorted `k=v` pairs, or "<none>". */
function labelsCell(m: Record<string, string | undefined> | undefined): string {
  const s = Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${m?.[k] ?? ''}`)
    .join(',');
  return s || '<none>';
}

/** CONTAINERS and IMAGES of a pod template. */
function containerCells(spec: { containers?: { name?: string; image?: string }[] } | undefined) {
  const cs = spec?.containers ?? [];
  return [cs.map((c) => c.name ?? '').join(','), cs.map((c) => c.image ?? '').join(',')];
}

const count = (n: number | undefined) => String(n ?? 0);

const JOB_STATUSES = [
  'Complete',
  'Failed',
  'Terminating',
  'Suspended',
  'FailureTarget',
  'SuccessCriteriaMet',
];

export interface KindPrinter {
  headers: string[];
  wideHeaders?: string[];
  cells(o: ApiObject, now: Date, wide: boolean): string[];
}

export const PRINTERS: Record<string, KindPrinter> = {
  Pod: {
    headers: ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'],
    wideHeaders: ['IP', 'NODE'],
    cells(o, now, wide) {
      const pod = o as LPod;
      const s = summarizePod(pod);
      const restarts =
        s.restarts !== 0 && s.lastRestart
          ? `${s.restarts} (${formatAge(s.lastRestart, now)} ago)`
          : String(s.restarts);
      const ip = pod.status?.podIPs?.[0]?.ip || pod.status?.podIP || '<none>';
      return [
        o.metadata.name,
        `${s.ready}/${s.total}`,
        s.status,
        restarts,
        formatAge(o.metadata.creationTimestamp, now),
        ...(wide ? [ip, pod.spec?.nodeName || '<none>'] : []),
      ];
    },
  },
  Deployment: {
    headers: ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'],
    wideHeaders: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    cells(o, now, wide) {
      const d = o as Loose<Deployment>;
      return [
        o.metadata.name,
        `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1}`,
        count(d.status?.updatedReplicas),
        count(d.status?.availableReplicas),
        formatAge(o.metadata.creationTimestamp, now),
        ...(wide
          ? [...containerCells(d.spec?.template?.spec), selectorCell(d.spec?.selector)]
          : []),
      ];
    },
  },
  ReplicaSet: {
    headers: ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'],
    wideHeaders: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    cells(o, now, wide) {
      const rs = o as Loose<ReplicaSet>;
      return [
        o.metadata.name,
        String(rs.spec?.replicas ?? 1),
        count(rs.status?.replicas),
        count(rs.status?.readyReplicas),
        formatAge(o.metadata.creationTimestamp, now),
        ...(wide
          ? [...containerCells(rs.spec?.template?.spec), selectorCell(rs.spec?.selector)]
          : []),
      ];
    },
  },
  Service: {
    headers: ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'],
    wideHeaders: ['SELECTOR'],
    cells(o, now, wide) {
      const spec = (o as Loose<Service>).spec ?? {};
      const ports = (spec.ports ?? [])
        .map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`)
        .join(',');
      return [
        o.metadata.name,
        spec.type ?? 'ClusterIP',
        spec.clusterIPs?.[0] || spec.clusterIP || '<none>',
        externalIP(o as Loose<Service>, wide),
        ports || '<none>',
        formatAge(o.metadata.creationTimestamp, now),
        ...(wide ? [labelsCell(spec.selector)] : []),
      ];
    },
  },
  Endpoints: {
    headers: ['NAME', 'ENDPOINTS', 'AGE'],
    cells: (o, now) => [
      o.metadata.name,
      endpointsCell(o as Loose<Endpoints>),
      formatAge(o.metadata.creationTimestamp, now),
    ],
  },
  Job: {
    headers: ['NAME', 'STATUS', 'COMPLETIONS', 'DURATION', 'AGE'],
    wideHeaders: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    cells(o, now, wide) {
      const j = o as Loose<Job>;
      const st = j.status ?? {};
      const conds = st.conditions;
      // kubectl's precedence: the first of these that holds.
      const status =
        JOB_STATUSES.find((t) =>
          t === 'Terminating' ? o.metadata.deletionTimestamp : hasCondition(conds, t),
        ) ?? 'Running';
      const parallelism = j.spec?.parallelism ?? 0;
      const completions =
        j.spec?.completions !== undefined
          ? `${st.succeeded ?? 0}/${j.spec.completions}`
          : parallelism > 1
            ? `${st.succeeded ?? 0}/1 of ${parallelism}`
            : `${st.succeeded ?? 0}/1`;
      const start = st.startTime ? Date.parse(st.startTime) : NaN;
      const end = st.completionTime ? Date.parse(st.completionTime) : now.getTime();
      return [
        o.metadata.name,
        status,
        completions,
        Number.isNaN(start) ? '' : humanDuration(end - start),
        formatAge(o.metadata.creationTimestamp, now),
        ...(wide
          ? [...containerCells(j.spec?.template?.spec), selectorCell(j.spec?.selector)]
          : []),
      ];
    },
  },
  CronJob: {
    headers: ['NAME', 'SCHEDULE', 'TIMEZONE', 'SUSPEND', 'ACTIVE', 'LAST SCHEDULE', 'AGE'],
    wideHeaders: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    cells(o, now, wide) {
      const cj = o as Loose<CronJob>;
      const spec = cj.spec ?? {};
      const last = cj.status?.lastScheduleTime;
      const job = spec.jobTemplate?.spec;
      return [
        o.metadata.name,
        spec.schedule ?? '',
        spec.timeZone ?? '<none>',
        // printBoolPtr
        spec.suspend === undefined ? '<unset>' : spec.suspend ? 'True' : 'False',
        String(cj.status?.active?.length ?? 0),
        last ? formatAge(last, now) : '<none>',
        formatAge(o.metadata.creationTimestamp, now),
        ...(wide ? [...containerCells(job?.template?.spec), selectorCell(job?.selector)] : []),
      ];
    },
  },
  Node: {
    headers: ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION'],
    wideHeaders: ['INTERNAL-IP', 'EXTERNAL-IP', 'OS-IMAGE', 'KERNEL-VERSION', 'CONTAINER-RUNTIME'],
    cells(o, now, wide) {
      const n = o as Loose<Node>;
      const readyCond = (n.status?.conditions ?? []).find((c) => c.type === 'Ready');
      const status = [readyCond ? (readyCond.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown'];
      if (n.spec?.unschedulable) status.push('SchedulingDisabled');
      const roles = new Set<string>();
      for (const [k, v] of Object.entries(o.metadata.labels ?? {})) {
        if (
          k.startsWith('node-role.kubernetes.io/') &&
          k.length > 'node-role.kubernetes.io/'.length
        )
          roles.add(k.slice('node-role.kubernetes.io/'.length));
        else if (k === 'kubernetes.io/role' && v !== '') roles.add(v);
      }
      const info = n.status?.nodeInfo;
      const address = (type: string) =>
        (n.status?.addresses ?? []).find((a) => a.type === type)?.address || '<none>';
      return [
        o.metadata.name,
        status.join(','),
        [...roles].sort().join(',') || '<none>',
        formatAge(o.metadata.creationTimestamp, now),
        info?.kubeletVersion ?? '',
        ...(wide
          ? [
              address('InternalIP'),
              address('ExternalIP'),
              info?.osImage || '<unknown>',
              info?.kernelVersion || '<unknown>',
              info?.containerRuntimeVersion || '<unknown>',
            ]
          : []),
      ];
    },
  },
  Namespace: {
    headers: ['NAME', 'STATUS', 'AGE'],
    cells: (o, now) => [
      o.metadata.name,
      (o as Loose<Namespace>).status?.phase ?? 'Active',
      formatAge(o.metadata.creationTimestamp, now),
    ],
  },
  ConfigMap: {
    headers: ['NAME', 'DATA', 'AGE'],
    cells(o, now) {
      const cm = o as Loose<ConfigMap>;
      const n = Object.keys(cm.data ?? {}).length + Object.keys(cm.binaryData ?? {}).length;
      return [o.metadata.name, String(n), formatAge(o.metadata.creationTimestamp, now)];
    },
  },
  Secret: {
    headers: ['NAME', 'TYPE', 'DATA', 'AGE'],
    cells(o, now) {
      const s = o as Loose<Secret>;
      return [
        o.metadata.name,
        String(s.type ?? 'Opaque'),
        String(Object.keys(s.data ?? {}).length),
        formatAge(o.metadata.creationTimestamp, now),
      ];
    },
  },
  Event: {
    headers: ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'],
    cells(o, now, wide) {
      const e = o as Loose<Event>;
      const first = formatAge(e.firstTimestamp ?? e.eventTime, now);
      let last = e.lastTimestamp ? formatAge(e.lastTimestamp, now) : first;
      let n = e.count ?? 0;
      if (e.series) {
        last = formatAge(e.series.lastObservedTime, now);
        n = e.series.count ?? 0;
      } else if (n > 1) last = `${last} (x${n} over ${first})`;
      const io = e.involvedObject ?? {};
      const kind = (io.kind ?? '').toLowerCase();
      const target = io.name ? `${kind}/${io.name}` : kind;
      const message = (e.message ?? '').trim();
      if (!wide) return [last, e.type ?? '', e.reason ?? '', target, message];
      const component = e.source?.component || e.reportingComponent || '';
      const instance = e.source?.host || e.reportingInstance || '';
      return [
        last,
        e.type ?? '',
        e.reason ?? '',
        target,
        io.fieldPath ?? '',
        instance ? `${component}, ${instance}` : component,
        message,
        first,
        String(n),
        o.metadata.name,
      ];
    },
  },
};
// Wide events: kubectl's full set, replacing (not extending) the columns.
export const EVENT_WIDE = [
  'LAST SEEN',
  'TYPE',
  'REASON',
  'OBJECT',
  'SUBOBJECT',
  'SOURCE',
  'MESSAGE',
  'FIRST SEEN',
  'COUNT',
  'NAME',
];

export const GENERIC: KindPrinter = {
  headers: ['NAME', 'AGE'],
  cells: (o, now) => [o.metadata.name, formatAge(o.metadata.creationTimestamp, now)],
};

/** getServiceExternalIP; load-balancer addresses cut to 16 characters unless wide. */
function externalIP(svc: Loose<Service>, wide: boolean): string {
  const ext = svc.spec?.externalIPs ?? [];
  switch (svc.spec?.type ?? 'ClusterIP') {
    case 'ClusterIP':
    case 'NodePort':
      return ext.length > 0 ? ext.join(',') : '<none>';
    case 'LoadBalancer': {
      let lb = (svc.status?.loadBalancer?.ingress ?? [])
        .map((i) => i.ip || i.hostname || '')
        .filter((s) => s !== '')
        .join(',');
      if (!wide && lb.length > 16) lb = `${lb.slice(0, 13)}...`;
      const all = [...(lb ? lb.split(',') : []), ...ext];
      return all.length > 0 ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return svc.spec?.externalName ?? '';
    default:
      return '<unknown>';
  }
}

/** formatEndpoints: the first three `ip:port`s, then "+ N more...". */
function endpointsCell(ep: Loose<Endpoints>): string {
  const subsets = ep.subsets ?? [];
  if (subsets.length === 0) return '<none>';
  const max = 3;
  const list: string[] = [];
  let total = 0;
  for (const ss of subsets) {
    const addrs = ss.addresses ?? [];
    const ports = ss.ports?.length ? ss.ports.map((p) => p.port) : [undefined];
    for (const port of ports) {
      total += addrs.length;
      for (const a of addrs) {
        if (list.length === max) break;
        const ip = a.ip ?? '';
        const host = ip.includes(':') ? `[${ip}]` : ip; // net.JoinHostPort for IPv6
        list.push(port === undefined ? ip : `${host}:${port}`);
      }
    }
  }
  // kubectl leaves the cell blank when the subsets have no ready address.
  if (list.length === 0) return '<none>';
  return total > max ? `${list.join(',')} + ${total - max} more...` : list.join(',');
}
