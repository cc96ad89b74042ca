import { stringify as toYaml } from 'yaml';
import { ApiObject, kindInfo } from '../api/types';

export type OutputFormat = 'table' | 'wide' | 'yaml' | 'json' | 'name';

export function parseOutputFormat(s: string | undefined): OutputFormat {
  if (s === undefined || s === '') return 'table';
  if (s === 'wide' || s === 'yaml' || s === 'json' || s === 'name') return s;
  throw new Error(`--output: unknown format "${s}" (expected one of: wide, yaml, json, name)`);
}

/** kubectl's human duration (apimachinery's HumanDuration). */
export function formatAge(fromIso: string | undefined, now: Date): string {
  if (!fromIso) return '<unknown>';
  const t = Date.parse(fromIso);
  if (Number.isNaN(t)) return '<unknown>';
  const ms = now.getTime() - t;
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8)
    return hours % 24 === 0
      ? `${Math.floor(hours / 24)}d`
      : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const years = Math.floor(hours / 24 / 365);
  const days = Math.floor(hours / 24) % 365;
  if (hours < 24 * 365 * 8) return days === 0 ? `${years}y` : `${years}y${days}d`;
  return `${years}y`;
}

/** Left-aligned columns separated by three spaces, like kubectl; no trailing spaces. */
export function renderTable(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i])))
        .join('   ')
        .trimEnd(),
    )
    .join('\n');
}

export function noResourcesMessage(ns?: string): string {
  return ns ? `No resources found in ${ns} namespace.` : 'No resources found';
}

/** kubectl's "deployment.apps/web". */
export function resourceName(o: { kind: string; metadata: { name: string } }): string {
  const k = kindInfo(o.kind);
  const group = k && k.apiVersion.includes('/') ? `.${k.apiVersion.split('/')[0]}` : '';
  return `${o.kind.toLowerCase()}${group}/${o.metadata.name}`;
}

type Obj = ApiObject & Record<string, unknown>;

interface Named {
  name: string;
  image?: string;
}
/** The fields the tables read, across kinds; every one optional (printing never fails on odd data). */
interface Printable {
  spec?: {
    replicas?: number;
    nodeName?: string;
    containers?: Named[];
    template?: { spec?: { containers?: Named[] } };
    selector?: Selector;
    type?: string;
    clusterIP?: string;
    ports?: { port: number; nodePort?: number; protocol?: string }[];
    completions?: number;
    unschedulable?: boolean;
  };
  status?: {
    phase?: string;
    reason?: string;
    podIP?: string;
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
    readyReplicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    replicas?: number;
    succeeded?: number;
    conditions?: { type: string; status: string }[];
    nodeInfo?: { kubeletVersion?: string };
  };
  subsets?: { addresses?: { ip: string }[]; ports?: { port?: number }[] }[];
}
type Selector = { matchLabels?: Record<string, string> } | Record<string, string>;

interface ContainerStatus {
  ready?: boolean;
  restartCount?: number;
  state?: { waiting?: { reason?: string }; terminated?: { reason?: string; exitCode?: number } };
}

/** A pod's STATUS column, computed like kubectl's. */
export function podStatus(pod: Obj): string {
  if (pod.metadata.deletionTimestamp) return 'Terminating';
  const st = (pod as Printable).status ?? {};
  let reason: string = st.reason ?? st.phase ?? 'Pending';
  for (const cs of (st.initContainerStatuses ?? []) as ContainerStatus[]) {
    if (cs.state?.terminated && cs.state.terminated.exitCode === 0) continue;
    if (cs.state?.waiting?.reason && cs.state.waiting.reason !== 'PodInitializing')
      return `Init:${cs.state.waiting.reason}`;
    if (cs.state?.terminated) return `Init:${cs.state.terminated.reason ?? 'Error'}`;
  }
  for (const cs of (st.containerStatuses ?? []) as ContainerStatus[]) {
    if (cs.state?.waiting?.reason) reason = cs.state.waiting.reason;
    else if (cs.state?.terminated?.reason) reason = cs.state.terminated.reason;
  }
  return reason;
}

function columns(kind: string, wide: boolean): string[] {
  switch (kind) {
    case 'Pod':
      return ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE', ...(wide ? ['IP', 'NODE'] : [])];
    case 'Deployment':
      return [
        'NAME',
        'READY',
        'UP-TO-DATE',
        'AVAILABLE',
        'AGE',
        ...(wide ? ['CONTAINERS', 'IMAGES', 'SELECTOR'] : []),
      ];
    case 'ReplicaSet':
      return ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'];
    case 'Service':
      return [
        'NAME',
        'TYPE',
        'CLUSTER-IP',
        'EXTERNAL-IP',
        'PORT(S)',
        'AGE',
        ...(wide ? ['SELECTOR'] : []),
      ];
    case 'Endpoints':
      return ['NAME', 'ENDPOINTS', 'AGE'];
    case 'Job':
      return ['NAME', 'STATUS', 'COMPLETIONS', 'AGE'];
    case 'Node':
      return ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION'];
    case 'Namespace':
      return ['NAME', 'STATUS', 'AGE'];
    case 'ConfigMap':
      return ['NAME', 'DATA', 'AGE'];
    case 'Secret':
      return ['NAME', 'TYPE', 'DATA', 'AGE'];
    case 'Event':
      return ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'];
    default:
      return ['NAME', 'AGE'];
  }
}

function selectorText(sel: Selector | undefined): string {
  const m = (sel && 'matchLabels' in sel ? sel.matchLabels : sel) ?? {};
  const s = Object.entries(m as Record<string, string>)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return s || '<none>';
}

function row(o: Obj, wide: boolean, now: Date): string[] {
  const age = formatAge(o.metadata.creationTimestamp, now);
  const spec = (o as Printable).spec ?? {};
  const st = (o as Printable).status ?? {};
  const name = o.metadata.name;
  switch (o.kind) {
    case 'Pod': {
      const cs = (st.containerStatuses ?? []) as ContainerStatus[];
      const total = (spec.containers ?? []).length;
      const ready = cs.filter((c) => c.ready).length;
      const restarts = cs.reduce((a, c) => a + (c.restartCount ?? 0), 0);
      return [
        name,
        `${ready}/${total}`,
        podStatus(o),
        String(restarts),
        age,
        ...(wide ? [st.podIP ?? '<none>', spec.nodeName ?? '<none>'] : []),
      ];
    }
    case 'Deployment': {
      const cs = (spec.template?.spec?.containers ?? []) as { name: string; image: string }[];
      return [
        name,
        `${st.readyReplicas ?? 0}/${spec.replicas ?? 0}`,
        String(st.updatedReplicas ?? 0),
        String(st.availableReplicas ?? 0),
        age,
        ...(wide
          ? [
              cs.map((c) => c.name).join(','),
              cs.map((c) => c.image).join(','),
              selectorText(spec.selector),
            ]
          : []),
      ];
    }
    case 'ReplicaSet':
      return [
        name,
        String(spec.replicas ?? 0),
        String(st.replicas ?? 0),
        String(st.readyReplicas ?? 0),
        age,
      ];
    case 'Service': {
      const ports = ((spec.ports ?? []) as { port: number; nodePort?: number; protocol?: string }[])
        .map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`)
        .join(',');
      return [
        name,
        spec.type ?? 'ClusterIP',
        spec.clusterIP ?? '<none>',
        '<none>',
        ports || '<none>',
        age,
        ...(wide ? [selectorText(spec.selector)] : []),
      ];
    }
    case 'Endpoints': {
      const eps: string[] = [];
      for (const s of (o as Printable).subsets ?? [])
        for (const a of s.addresses ?? [])
          for (const p of s.ports ?? [{}]) eps.push(p.port ? `${a.ip}:${p.port}` : a.ip);
      const shown =
        eps.slice(0, 3).join(',') + (eps.length > 3 ? ` + ${eps.length - 3} more...` : '');
      return [name, shown || '<none>', age];
    }
    case 'Job': {
      const done = ((st.conditions ?? []) as { type: string; status: string }[]).find(
        (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
      );
      const status = done ? (done.type === 'Complete' ? 'Complete' : 'Failed') : 'Running';
      return [name, status, `${st.succeeded ?? 0}/${spec.completions ?? 1}`, age];
    }
    case 'Node': {
      const ready = ((st.conditions ?? []) as { type: string; status: string }[]).find(
        (c) => c.type === 'Ready',
      );
      let status = ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown';
      if (spec.unschedulable) status += ',SchedulingDisabled';
      const roles = Object.keys(o.metadata.labels ?? {})
        .filter((l) => l.startsWith('node-role.kubernetes.io/'))
        .map((l) => l.split('/')[1]);
      return [name, status, roles.join(',') || '<none>', age, st.nodeInfo?.kubeletVersion ?? ''];
    }
    case 'Namespace':
      return [name, st.phase ?? 'Active', age];
    case 'ConfigMap':
      return [
        name,
        String(Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length),
        age,
      ];
    case 'Secret':
      return [name, String(o.type ?? 'Opaque'), String(Object.keys(o.data ?? {}).length), age];
    case 'Event': {
      const io = (o.involvedObject ?? {}) as { kind?: string; name?: string };
      return [
        formatAge((o.lastTimestamp as string | undefined) ?? o.metadata.creationTimestamp, now),
        String(o.type ?? ''),
        String(o.reason ?? ''),
        `${(io.kind ?? '').toLowerCase()}/${io.name ?? ''}`,
        String(o.message ?? ''),
      ];
    }
    default:
      return [name, age];
  }
}

const GREEN = ['Running', 'Ready', 'Active', 'Complete', 'Completed', 'Succeeded'];
const RED = [
  'Failed',
  'Error',
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'NotReady',
  'OOMKilled',
];

function colorize(s: string): string {
  if (GREEN.includes(s)) return `\u001b[32m${s}\u001b[0m`;
  if (RED.some((r) => s.startsWith(r) || s.endsWith(r))) return `\u001b[31m${s}\u001b[0m`;
  return s;
}

/** Objects as kubectl prints them: a table (plain or wide), YAML, JSON or resource names. */
export function printObjects(
  objs: ApiObject[],
  format: OutputFormat,
  opts: { now: Date; allNamespaces?: boolean; color?: boolean; kind?: string },
): string {
  if (format === 'name') return objs.map(resourceName).join('\n');
  if (format === 'json' || format === 'yaml') {
    const value =
      objs.length === 1
        ? objs[0]
        : { apiVersion: 'v1', kind: 'List', items: objs, metadata: { resourceVersion: '' } };
    return format === 'json' ? JSON.stringify(value, null, 4) : toYaml(value).trimEnd();
  }
  if (objs.length === 0) return '';
  const kind = opts.kind ?? objs[0].kind;
  const wide = format === 'wide';
  const headers = [...(opts.allNamespaces ? ['NAMESPACE'] : []), ...columns(kind, wide)];
  const statusCol = headers.indexOf('STATUS');
  const rows = objs.map((o) => {
    const r = [
      ...(opts.allNamespaces ? [o.metadata.namespace ?? ''] : []),
      ...row(o as Obj, wide, opts.now),
    ];
    return r;
  });
  const text = renderTable(headers, rows);
  if (!opts.color || statusCol < 0) return text;
  // Colour after alignment so escape codes do not skew the columns.
  return text
    .split('\n')
    .map((line, i) =>
      i === 0 ? line : line.replace(rows[i - 1][statusCol], colorize(rows[i - 1][statusCol])),
    )
    .join('\n');
}
