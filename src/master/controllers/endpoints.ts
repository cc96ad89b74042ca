/**
 * The Endpoints controller: for each Service with a selector, the IPs and
 * ports of the pods it selects — ready pods under `addresses`, the others
 * under `notReadyAddresses` — grouped into subsets of pods that resolve the
 * service's ports to the same numbers (named target ports may differ per
 * pod). A pod's readiness change reaches the Endpoints in one reconcile.
 */
import type { Endpoints, Pod, Service } from '../../api/schema';
import { ApiObject } from '../../api/types';
import { labelSelectorFromK8s, matchesLabels } from '../../api/selectors';
import { stableStringify } from '../store/stable-json';
import { isReady, isTerminal, newControllerRef } from './pods';
import { Controller, splitKey } from './runtime/controller';

type Subset = NonNullable<Endpoints['subsets']>[number];
type Address = NonNullable<Subset['addresses']>[number];
type EndpointPort = NonNullable<Subset['ports']>[number];

/** The service's ports as `pod` serves them, or undefined when a named target port is missing. */
function resolvePorts(svc: Service, pod: Pod): EndpointPort[] | undefined {
  const out: EndpointPort[] = [];
  for (const p of svc.spec.ports ?? []) {
    let port: number | undefined;
    const target = p.targetPort ?? p.port;
    if (typeof target === 'number') port = target;
    else
      for (const c of pod.spec.containers)
        for (const cp of c.ports ?? [])
          if (cp.name === target && (cp.protocol ?? 'TCP') === (p.protocol ?? 'TCP'))
            port = cp.containerPort;
    if (port === undefined) return undefined;
    out.push({
      name: p.name,
      port,
      protocol: p.protocol ?? 'TCP',
      ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
    });
  }
  return out;
}

/** The subsets for `svc` over the pods of its namespace (pure; deterministic order). */
export function endpointSubsets(svc: Service, pods: Pod[]): Subset[] {
  const groups = new Map<
    string,
    { ports: EndpointPort[]; ready: Address[]; notReady: Address[] }
  >();
  for (const pod of pods) {
    const ip = pod.status?.podIP;
    if (!ip || !pod.spec.nodeName || isTerminal(pod) || pod.metadata.deletionTimestamp) continue;
    const ports = resolvePorts(svc, pod);
    if (!ports) continue;
    const sig = stableStringify(ports);
    let g = groups.get(sig);
    if (!g) groups.set(sig, (g = { ports, ready: [], notReady: [] }));
    const addr: Address = {
      ip,
      nodeName: pod.spec.nodeName,
      targetRef: {
        kind: 'Pod',
        namespace: pod.metadata.namespace,
        name: pod.metadata.name,
        uid: pod.metadata.uid,
      },
    };
    (isReady(pod) ? g.ready : g.notReady).push(addr);
  }
  const byIp = (a: Address, b: Address) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0);
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, g]) => ({
      ...(g.ready.length ? { addresses: g.ready.sort(byIp) } : {}),
      ...(g.notReady.length ? { notReadyAddresses: g.notReady.sort(byIp) } : {}),
      ...(g.ports.length ? { ports: g.ports } : {}),
    }));
}

export class EndpointsController extends Controller {
  readonly name = 'endpoints';
  protected readonly kind = 'Service';

  protected override watchOthers(): void {
    this.watch('Pod', (c) => {
      const ns = c.object.metadata.namespace;
      for (const s of this.ctx.store.list({ kind: 'Service', namespace: ns })) {
        const sel = (s.object as Service).spec.selector;
        if (
          sel &&
          matchesLabels(labelSelectorFromK8s({ matchLabels: sel }), c.object.metadata.labels)
        )
          this.queue.add(`${ns}/${s.object.metadata.name}`);
      }
    });
    // Someone else's edit of an Endpoints we manage is put right.
    this.watch('Endpoints', (c) =>
      this.queue.add(`${c.object.metadata.namespace}/${c.object.metadata.name}`),
    );
  }

  protected async reconcile(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const store = this.ctx.store;
    const svc = store.get('Service', namespace, name)?.object as Service | undefined;
    const cur = store.get('Endpoints', namespace, name)?.object as Endpoints | undefined;
    if (!svc?.spec.selector) {
      // Gone, or selector-less (its Endpoints are the user's to write): remove only what we made.
      if (cur && cur.metadata.labels?.['endpoints.baton.dev/managed'] === 'true')
        await this.ctx.writer.delete(cur);
      return;
    }
    const pods = store
      .list({
        kind: 'Pod',
        namespace,
        labels: labelSelectorFromK8s({ matchLabels: svc.spec.selector }),
      })
      .map((s) => s.object as Pod);
    const subsets = endpointSubsets(svc, pods);
    if (!cur) {
      await this.ctx.writer.create({
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: {
          name,
          namespace,
          labels: { ...(svc.metadata.labels ?? {}), 'endpoints.baton.dev/managed': 'true' },
          ownerReferences: [newControllerRef(svc)],
        },
        subsets,
      } as ApiObject);
      return;
    }
    if (stableStringify(cur.subsets ?? []) === stableStringify(subsets)) return;
    await this.ctx.writer.update({ ...cur, subsets } as ApiObject);
  }
}
