/**
 * The Docker-links-style environment Kubernetes gives every container for
 * each service of its namespace that exists when it starts:
 * `REDIS_MASTER_SERVICE_HOST=10.96.0.11`, `REDIS_MASTER_SERVICE_PORT=6379`,
 * `REDIS_MASTER_PORT=tcp://10.96.0.11:6379`, `REDIS_MASTER_PORT_6379_TCP=…`
 * and its `_PROTO`, `_PORT` and `_ADDR` parts.
 */
import type { Service } from '../api/schema';

const envName = (s: string) => s.toUpperCase().replace(/-/g, '_');

/**
 * The variables for `services` (those of the pod's namespace), in name
 * order. `address` maps a ClusterIP to what clients use (the same, except
 * in userspace proxy mode). Headless and ExternalName services have none.
 */
export function serviceEnv(
  services: Iterable<Service>,
  address: (clusterIP: string) => string = (ip) => ip,
): [string, string][] {
  const out: [string, string][] = [];
  const sorted = [...services].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  for (const svc of sorted) {
    const ip = svc.spec.clusterIP;
    if (!ip || ip === 'None' || svc.spec.type === 'ExternalName') continue;
    const ports = svc.spec.ports ?? [];
    if (ports.length === 0) continue;
    const name = envName(svc.metadata.name);
    const host = address(ip);
    const first = ports[0];
    out.push([`${name}_SERVICE_HOST`, host], [`${name}_SERVICE_PORT`, String(first.port)]);
    for (const p of ports)
      if (p.name) out.push([`${name}_SERVICE_PORT_${envName(p.name)}`, String(p.port)]);
    const proto = (first.protocol ?? 'TCP').toLowerCase();
    out.push([`${name}_PORT`, `${proto}://${host}:${first.port}`]);
    for (const p of ports) {
      const pr = (p.protocol ?? 'TCP').toLowerCase();
      const base = `${name}_PORT_${p.port}_${pr.toUpperCase()}`;
      out.push(
        [base, `${pr}://${host}:${p.port}`],
        [`${base}_PROTO`, pr],
        [`${base}_PORT`, String(p.port)],
        [`${base}_ADDR`, host],
      );
    }
  }
  return out;
}
