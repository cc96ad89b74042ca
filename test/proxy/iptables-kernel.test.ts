/**
 * The iptables proxy against the real kernel, in a network namespace of
 * its own: what it writes is accepted, incremental syncs apply (their
 * deletions match the kernel's own rule text), a restart replaces a
 * previous run's rules, and cleanup leaves nothing. Pending without root.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import type { Endpoints, Service } from '../../src/api/schema';
import { hostRunner, IptablesProxy, SyncStats } from '../../src/proxy/iptables';
import { ServiceTable } from '../../src/proxy/service-table';

const NS = `bipt${process.pid}`;
const inNs = hostRunner(['ip', 'netns', 'exec', NS]);

const service = (name: string, ip: string, extra: Record<string, unknown> = {}) =>
  ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      type: 'NodePort',
      clusterIP: ip,
      sessionAffinity: 'None',
      ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }],
      ...extra,
    },
  }) as unknown as Service;

const endpoints = (name: string, ips: string[]) =>
  ({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'default' },
    subsets: [
      {
        addresses: ips.map((ip) => ({ ip })),
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      },
    ],
  }) as unknown as Endpoints;

async function save(): Promise<string> {
  return (await inNs('iptables-save', [])).stdout;
}

describe('iptables proxy on the kernel (own network namespace)', function () {
  this.timeout(60_000);
  let stats: SyncStats[] = [];
  const proxy = (table: ServiceTable) =>
    new IptablesProxy({
      table,
      clusterCIDR: () => '10.244.0.0/16',
      run: inNs,
      onSync: (s) => stats.push(s),
    });

  before(function () {
    if (process.getuid?.() !== 0) {
      console.log('      pending: needs root (a network namespace and iptables)');
      this.skip();
    }
    try {
      execFileSync('ip', ['netns', 'add', NS]);
      execFileSync('ip', ['netns', 'exec', NS, 'iptables-save']);
    } catch (err) {
      console.log(
        `      pending: no network namespace with iptables here (${(err as Error).message.split('\n')[0]})`,
      );
      this.skip();
    }
  });

  after(() => {
    try {
      execFileSync('ip', ['netns', 'del', NS]);
    } catch {
      // never made
    }
  });

  it('syncs in full, then incrementally, replaces an earlier run and cleans up', async () => {
    const table = new ServiceTable();
    table.setService(service('web', '10.96.0.10'));
    table.setEndpoints(endpoints('web', ['10.244.1.2', '10.244.1.3']));
    table.setService(
      service('api', '10.96.0.11', {
        type: 'ClusterIP',
        sessionAffinity: 'ClientIP',
        ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }],
      }),
    );
    table.setEndpoints(endpoints('api', ['10.244.2.2']));
    const first = proxy(table);
    await first.start();
    assert.equal(stats.at(-1)!.full, true);
    let text = await save();
    assert.match(text, /-A BATON-SERVICES -d 10\.96\.0\.10\/32 .* -j BATON-SVC-/);
    assert.match(text, /--to-destination 10\.244\.1\.3:8080/);
    assert.match(text, /-A BATON-NODEPORTS -p tcp -m tcp --dport 30080 /);
    assert.match(text, /-A PREROUTING .*-j BATON-SERVICES/);

    // An endpoint goes, then the whole service: applied incrementally, with no fallback to full.
    stats = [];
    table.setEndpoints(endpoints('web', ['10.244.1.2']));
    await first.settled();
    table.deleteService('default/api');
    await first.settled();
    assert.ok(stats.length >= 2 && stats.every((s) => !s.full), JSON.stringify(stats));
    text = await save();
    assert.doesNotMatch(text, /10\.244\.1\.3/);
    assert.doesNotMatch(text, /10\.96\.0\.11|default\/api/);
    // Losing its last endpoint swaps the service's jump for a REJECT, still incrementally.
    table.setEndpoints(endpoints('web', []));
    await first.settled();
    assert.ok(stats.every((s) => !s.full));
    text = await save();
    assert.match(text, /-A BATON-SERVICES -d 10\.96\.0\.10\/32 .* -j REJECT/);
    assert.doesNotMatch(text, /BATON-SVC-|BATON-SEP-/);
    await first.stop(); // as on a restart with --keep-proxy-rules: the rules stay

    // A new run (another table) replaces everything at once: the old chains go, jumps are not doubled.
    const table2 = new ServiceTable();
    table2.setService(service('other', '10.96.0.12'));
    table2.setEndpoints(endpoints('other', ['10.244.3.2']));
    const second = proxy(table2);
    await second.start();
    text = await save();
    assert.doesNotMatch(text, /10\.96\.0\.10/);
    assert.match(text, /--to-destination 10\.244\.3\.2:8080/);
    assert.equal(text.match(/-A PREROUTING .*-j BATON-SERVICES/g)!.length, 1);

    await second.cleanup();
    assert.doesNotMatch(await save(), /BATON-/);
  });
});
