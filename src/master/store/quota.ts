import { parseQuantity } from '../../api/schema/quantity';
import { ApiObject, KindInfo, kindInfo } from '../../api/types';
import { ObjectIndex } from './object-index';

interface Resources {
  requests?: Record<string, string | number>;
  limits?: Record<string, string | number>;
}
interface PodShape {
  spec?: { containers?: { resources?: Resources }[]; initContainers?: { resources?: Resources }[] };
  status?: { phase?: string };
}

/** The quota names that count objects of a kind: "pods", "count/pods", "count/deployments.apps". */
function countNames(k: KindInfo): string[] {
  const group = k.apiVersion.includes('/') ? `.${k.apiVersion.split('/')[0]}` : '';
  const names = [`count/${k.plural}${group}`];
  if (!group) names.push(k.plural);
  return names;
}

/**
 * A pod's effective requests and limits, as Kubernetes computes them: the
 * sum over its containers, or the largest init container if that is more.
 */
export function podUsage(pod: ApiObject): Map<string, number> {
  const spec = (pod as PodShape).spec ?? {};
  const out = new Map<string, number>();
  const add = (m: Map<string, number>, prefix: string, rs?: Record<string, string | number>) => {
    for (const [r, q] of Object.entries(rs ?? {}))
      m.set(`${prefix}${r}`, (m.get(`${prefix}${r}`) ?? 0) + parseQuantity(q));
  };
  for (const c of spec.containers ?? []) {
    add(out, 'requests.', c.resources?.requests);
    add(out, 'limits.', c.resources?.limits);
  }
  for (const c of spec.initContainers ?? []) {
    const one = new Map<string, number>();
    add(one, 'requests.', c.resources?.requests);
    add(one, 'limits.', c.resources?.limits);
    for (const [k, v] of one) if (v > (out.get(k) ?? 0)) out.set(k, v);
  }
  // "cpu" and "memory" in a quota mean requests.
  for (const r of ['cpu', 'memory'])
    if (out.has(`requests.${r}`)) out.set(r, out.get(`requests.${r}`)!);
  return out;
}

function terminal(pod: ApiObject): boolean {
  const phase = (pod as PodShape).status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/** What the objects of a namespace use, for every resource a quota may name. */
export function namespaceUsage(index: ObjectIndex, ns: string): Map<string, number> {
  const used = new Map<string, number>();
  for (const key of index.inNamespace(ns)) {
    const o = index.get(key)!.object;
    if (o.kind === 'Pod' && terminal(o)) continue;
    const k = kindInfo(o.kind);
    if (k) for (const n of countNames(k)) used.set(n, (used.get(n) ?? 0) + 1);
    if (o.kind === 'Pod') for (const [r, v] of podUsage(o)) used.set(r, (used.get(r) ?? 0) + v);
  }
  return used;
}

/**
 * Whether creating `o` would exceed a ResourceQuota of its namespace: a
 * message like Kubernetes' ("exceeded quota: compute, requested: pods=1,
 * used: pods=10, limited: pods=10"), or undefined when it fits.
 */
export function quotaViolation(index: ObjectIndex, o: ApiObject): string | undefined {
  const ns = o.metadata.namespace;
  const k = kindInfo(o.kind);
  if (!ns || !k) return undefined;
  const quotas = index.list({ kind: 'ResourceQuota', namespace: ns });
  if (quotas.length === 0) return undefined;
  const want = new Map<string, number>();
  for (const n of countNames(k)) want.set(n, 1);
  const usage = o.kind === 'Pod' ? podUsage(o) : new Map<string, number>();
  for (const [r, v] of usage) want.set(r, v);
  let used: Map<string, number> | undefined;
  for (const q of quotas) {
    const hard = ((q.object.spec as { hard?: Record<string, string | number> } | undefined)?.hard ??
      {}) as Record<string, string | number>;
    for (const [r, limit] of Object.entries(hard)) {
      const isCompute = /^(requests\.|limits\.)|^(cpu|memory)$/.test(r);
      if (o.kind === 'Pod' && isCompute && !usage.has(r)) {
        return `failed quota: ${q.object.metadata.name}: must specify ${r.replace(/^(cpu|memory)$/, 'requests.$1')} for every container`;
      }
      const add = want.get(r);
      if (add === undefined) continue;
      used ??= namespaceUsage(index, ns);
      const now = used.get(r) ?? 0;
      const max = parseQuantity(limit);
      if (now + add > max + 1e-9)
        return `exceeded quota: ${q.object.metadata.name}, requested: ${r}=${fmt(add)}, used: ${r}=${fmt(now)}, limited: ${r}=${limit}`;
    }
  }
  return undefined;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 1000) / 1000);
}
