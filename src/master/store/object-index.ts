import { ApiObject, kindInfo } from '../../api/types';
import {
  equalityTerms,
  FieldSelector,
  LabelSelector,
  matchesFields,
  matchesLabels,
} from '../../api/selectors';

/** One stored object with its JSON text, encoded once at write time and shared by reads and watches. */
export interface StoredObject {
  key: string;
  object: ApiObject;
  json: string;
  revision: number;
}

export function objectKey(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

export function keyOf(o: ApiObject): string {
  return objectKey(
    o.kind,
    kindInfo(o.kind)?.namespaced ? o.metadata.namespace : undefined,
    o.metadata.name,
  );
}

/** Adds `v` to the set under `k`, creating it. */
function addTo(m: Map<string, Set<string>>, k: string, v: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(v);
}

function removeFrom(m: Map<string, Set<string>>, k: string, v: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

export interface Query {
  kind?: string;
  namespace?: string;
  labels?: LabelSelector;
  fields?: FieldSelector;
}

/**
 * The objects of one master, indexed by kind, namespace, label, node and
 * owner so that lists with selectors and cascading deletes need not scan
 * everything. Pure data structure: no I/O, no clock.
 */
export class ObjectIndex {
  private readonly objects = new Map<string, StoredObject>();
  private readonly byKind = new Map<string, Set<string>>();
  private readonly byNamespace = new Map<string, Set<string>>(); // "kind/ns" and "*/ns"
  private readonly byLabel = new Map<string, Set<string>>(); // "kind\0key=value"
  private readonly byNode = new Map<string, Set<string>>(); // pods by spec.nodeName
  private readonly byOwner = new Map<string, Set<string>>(); // dependents by owner uid
  private readonly byUid = new Map<string, string>();
  /** Service addresses and node ports ("ip:10.96.0.10", "nodePort:30080/TCP") → the service's key. */
  private readonly allocations = new Map<string, string>();

  get size(): number {
    return this.objects.size;
  }

  get(key: string): StoredObject | undefined {
    return this.objects.get(key);
  }

  getByUid(uid: string): StoredObject | undefined {
    const k = this.byUid.get(uid);
    return k === undefined ? undefined : this.objects.get(k);
  }

  put(s: StoredObject): StoredObject | undefined {
    const prev = this.objects.get(s.key);
    if (prev) this.unindex(prev);
    this.objects.set(s.key, s);
    this.index(s);
    return prev;
  }

  delete(key: string): StoredObject | undefined {
    const prev = this.objects.get(key);
    if (!prev) return undefined;
    this.unindex(prev);
    this.objects.delete(key);
    return prev;
  }

  /** The key of the Service holding an allocation (see serviceAllocations), if any. */
  allocatedTo(allocation: string): string | undefined {
    return this.allocations.get(allocation);
  }

  /** How many service addresses or node ports are held ("ip:" or "nodePort:" prefix). */
  allocationCount(prefix: 'ip:' | 'nodePort:'): number {
    let n = 0;
    for (const k of this.allocations.keys()) if (k.startsWith(prefix)) n++;
    return n;
  }

  /** Keys of objects whose ownerReferences name `uid`. */
  dependents(uid: string): string[] {
    return [...(this.byOwner.get(uid) ?? [])];
  }

  /** Keys of every object in a namespace (all kinds). */
  inNamespace(ns: string): string[] {
    return [...(this.byNamespace.get(`*/${ns}`) ?? [])];
  }

  /** Every object, in key order (for snapshots: deterministic bytes). */
  /** Every object, in no particular order (cheaper than `all`). */
  values(): IterableIterator<StoredObject> {
    return this.objects.values();
  }

  all(): StoredObject[] {
    return [...this.objects.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /** Objects matching a query, in key order, using the most selective index available. */
  list(q: Query): StoredObject[] {
    const candidates = this.candidates(q);
    const out: StoredObject[] = [];
    for (const k of candidates) {
      const s = this.objects.get(k);
      if (s && matches(s.object, q)) out.push(s);
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  private candidates(q: Query): Iterable<string> {
    const sets: Set<string>[] = [];
    if (q.kind) {
      for (const [k, v] of q.labels ? equalityTerms(q.labels) : [])
        sets.push(this.byLabel.get(`${q.kind}\0${k}=${v}`) ?? new Set());
      if (q.kind === 'Pod')
        for (const t of q.fields?.terms ?? [])
          if (t.path === 'spec.nodeName' && t.op === '=' && t.value !== '')
            sets.push(this.byNode.get(t.value) ?? new Set());
      if (q.namespace !== undefined)
        sets.push(this.byNamespace.get(`${q.kind}/${q.namespace}`) ?? new Set());
      sets.push(this.byKind.get(q.kind) ?? new Set());
    } else if (q.namespace !== undefined) {
      sets.push(this.byNamespace.get(`*/${q.namespace}`) ?? new Set());
    }
    if (sets.length === 0) return this.objects.keys();
    return sets.reduce((a, b) => (b.size < a.size ? b : a));
  }

  private index(s: StoredObject): void {
    const o = s.object;
    addTo(this.byKind, o.kind, s.key);
    const ns = o.metadata.namespace;
    if (ns !== undefined) {
      addTo(this.byNamespace, `${o.kind}/${ns}`, s.key);
      addTo(this.byNamespace, `*/${ns}`, s.key);
    }
    for (const [k, v] of Object.entries(o.metadata.labels ?? {}))
      addTo(this.byLabel, `${o.kind}\0${k}=${v}`, s.key);
    const node = nodeNameOf(o);
    if (node) addTo(this.byNode, node, s.key);
    for (const r of o.metadata.ownerReferences ?? []) addTo(this.byOwner, r.uid, s.key);
    if (o.metadata.uid) this.byUid.set(o.metadata.uid, s.key);
    for (const a of serviceAllocations(o)) this.allocations.set(a, s.key);
  }

  private unindex(s: StoredObject): void {
    const o = s.object;
    removeFrom(this.byKind, o.kind, s.key);
    const ns = o.metadata.namespace;
    if (ns !== undefined) {
      removeFrom(this.byNamespace, `${o.kind}/${ns}`, s.key);
      removeFrom(this.byNamespace, `*/${ns}`, s.key);
    }
    for (const [k, v] of Object.entries(o.metadata.labels ?? {}))
      removeFrom(this.byLabel, `${o.kind}\0${k}=${v}`, s.key);
    const node = nodeNameOf(o);
    if (node) removeFrom(this.byNode, node, s.key);
    for (const r of o.metadata.ownerReferences ?? []) removeFrom(this.byOwner, r.uid, s.key);
    if (o.metadata.uid && this.byUid.get(o.metadata.uid) === s.key)
      this.byUid.delete(o.metadata.uid);
    for (const a of serviceAllocations(o))
      if (this.allocations.get(a) === s.key) this.allocations.delete(a);
  }
}

/** What a Service holds exclusively: its cluster IPs ("ip:…") and node ports ("nodePort:…/TCP"). */
export function serviceAllocations(o: ApiObject): string[] {
  if (o.kind !== 'Service') return [];
  const spec = o.spec as {
    clusterIP?: string;
    clusterIPs?: string[];
    ports?: { nodePort?: number; protocol?: string }[];
  };
  const out = new Set<string>();
  for (const ip of [spec.clusterIP, ...(spec.clusterIPs ?? [])])
    if (ip && ip !== 'None') out.add(`ip:${ip}`);
  for (const p of spec.ports ?? [])
    if (p.nodePort !== undefined) out.add(`nodePort:${p.nodePort}/${p.protocol ?? 'TCP'}`);
  return [...out];
}

function nodeNameOf(o: ApiObject): string | undefined {
  if (o.kind !== 'Pod') return undefined;
  const n = (o.spec as { nodeName?: unknown } | undefined)?.nodeName;
  return typeof n === 'string' && n !== '' ? n : undefined;
}

export function matches(o: ApiObject, q: Query): boolean {
  if (q.kind && o.kind !== q.kind) return false;
  if (q.namespace !== undefined && o.metadata.namespace !== q.namespace) return false;
  if (q.labels && !matchesLabels(q.labels, o.metadata.labels)) return false;
  if (q.fields && !matchesFields(q.fields, o)) return false;
  return true;
}
