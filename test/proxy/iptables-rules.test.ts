import { strict as assert } from 'node:assert';
import type { Endpoints, Service } from '../../src/api/schema';
import {
  cleanupScript,
  deltaScript,
  entryRules,
  fullScript,
  JUMPS,
  parseSave,
  sepChain,
  svcChain,
} from '../../src/proxy/iptables-rules';
import { ServicePortEntry, servicePortEntries } from '../../src/proxy/service-table';

const CIDR = '10.244.0.0/16';

function entry(n: number, extra: Partial<ServicePortEntry> = {}): ServicePortEntry {
  return {
    id: `default/web:http/TCP`,
    namespace: 'default',
    name: 'web',
    portName: 'http',
    protocol: 'TCP',
    clusterIP: '10.96.0.10',
    port: 80,
    externalIPs: [],
    endpoints: Array.from({ length: n }, (_, i) => ({ ip: `10.244.1.${i + 2}`, port: 8080 })),
    ...extra,
  };
}

const lines = (r: ReturnType<typeof entryRules>) => [
  ...[...r.shared].flatMap(([w, rules]) => rules.map((x) => `${w} ${x}`)),
  ...[...r.chains.values()].flat(),
];

describe('iptables rules of a service port', () => {
  it('without endpoints: one REJECT and nothing in nat', () => {
    const r = entryRules(entry(0), CIDR);
    assert.deepEqual(lines(r), [
      'filter BATON-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web:http/TCP has no endpoints" -j REJECT --reject-with icmp-port-unreachable',
    ]);
  });

  it('with one endpoint: a jump, a masquerade mark for off-network clients, one DNAT', () => {
    const e = entry(1);
    const r = entryRules(e, CIDR);
    const svc = svcChain(e);
    const sep = sepChain(e, e.endpoints[0]);
    assert.deepEqual(lines(r), [
      `nat BATON-SERVICES -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web:http/TCP cluster IP" -j ${svc}`,
      `-A ${svc} ! -s ${CIDR} -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web:http/TCP cluster IP" -j BATON-MARK-MASQ`,
      `-A ${svc} -m comment --comment "default/web:http/TCP endpoint 1/1" -j ${sep}`,
      `-A ${sep} -s 10.244.1.2/32 -m comment --comment "default/web:http/TCP hairpin" -j BATON-MARK-MASQ`,
      `-A ${sep} -p tcp -m tcp -m comment --comment "default/web:http/TCP endpoint 10.244.1.2:8080" -j DNAT --to-destination 10.244.1.2:8080`,
    ]);
  });

  it('with many endpoints: an even random pick (1/n, 1/(n-1), … then the last for sure)', () => {
    const e = entry(4);
    const svcRules = entryRules(e, undefined).chains.get(svcChain(e))!;
    const probs = svcRules.map((l) => /--probability (\S+)/.exec(l)?.[1] ?? 'rest');
    assert.deepEqual(probs, ['0.2500000000', '0.3333333333', '0.5000000000', 'rest']);
    // Each endpoint has its own chain, and the service chain reaches each once.
    const seps = e.endpoints.map((ep) => sepChain(e, ep));
    assert.equal(new Set(seps).size, 4);
    for (const s of seps) assert.equal(svcRules.filter((l) => l.endsWith(`-j ${s}`)).length, 1);
  });

  it('client IP affinity checks the recent list before the random pick, and sets it', () => {
    const e = entry(2, { affinitySeconds: 600 });
    const r = entryRules(e, undefined);
    const svcRules = r.chains.get(svcChain(e))!;
    assert.match(svcRules[0], /--rcheck --seconds 600 --reap -j BATON-SEP-/);
    assert.match(svcRules[1], /--rcheck --seconds 600 --reap -j BATON-SEP-/);
    assert.match(svcRules[2], /--probability 0.5000000000/);
    const sep = r.chains.get(sepChain(e, e.endpoints[0]))!;
    assert.match(sep[1], /-m recent --name BATON-SEP-\w+ --mask 255.255.255.255 --rsource --set/);
  });

  it('a node port marks for masquerade and joins the service chain; external IPs too', () => {
    const e = entry(1, { nodePort: 30080, externalIPs: ['192.0.2.7'], protocol: 'UDP' });
    const r = entryRules({ ...e, id: 'default/web:http/UDP' }, CIDR);
    const np = r.shared.get('nat BATON-NODEPORTS')!;
    assert.equal(np.length, 2);
    assert.match(np[0], /^-p udp -m udp --dport 30080 .* -j BATON-MARK-MASQ$/);
    assert.match(np[1], /^-p udp -m udp --dport 30080 .* -j BATON-SVC-/);
    const svcs = r.shared.get('nat BATON-SERVICES')!;
    assert.equal(svcs.filter((l) => l.includes('-d 192.0.2.7/32')).length, 2);
  });

  it('service ports come from the Service and its Endpoints, matched by port name', () => {
    const svc = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        type: 'NodePort',
        clusterIP: '10.96.0.10',
        sessionAffinity: 'None',
        ports: [
          { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 },
          { name: 'dns', port: 53, targetPort: 53, protocol: 'UDP', nodePort: 30053 },
        ],
      },
    } as unknown as Service;
    const eps = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name: 'web', namespace: 'default' },
      subsets: [
        {
          addresses: [{ ip: '10.244.1.3' }, { ip: '10.244.1.2' }],
          notReadyAddresses: [{ ip: '10.244.1.9' }],
          ports: [
            { name: 'http', port: 8080, protocol: 'TCP' },
            { name: 'dns', port: 53, protocol: 'UDP' },
          ],
        },
      ],
    } as unknown as Endpoints;
    const es = servicePortEntries(svc, eps);
    assert.deepEqual(
      es.map((e) => [e.id, e.nodePort, e.endpoints.map((x) => `${x.ip}:${x.port}`)]),
      [
        ['default/web:http/TCP', 30080, ['10.244.1.2:8080', '10.244.1.3:8080']],
        ['default/web:dns/UDP', 30053, ['10.244.1.2:53', '10.244.1.3:53']],
      ],
    );
    // Headless: nothing to program.
    assert.deepEqual(
      servicePortEntries({ ...svc, spec: { ...svc.spec, clusterIP: 'None' } }, eps),
      [],
    );
  });
});

describe('iptables sync scripts', () => {
  const many = (n: number, endpoints = 3) =>
    Array.from({ length: n }, (_, i) =>
      entry(endpoints, {
        id: `default/s${i}:http/TCP`,
        name: `s${i}`,
        clusterIP: `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`,
      }),
    );

  it('a full script declares every chain, writes every rule, drops stale chains and adds missing jumps', () => {
    const rules = many(3).map((e) => entryRules(e, CIDR));
    const existing = parseSave(
      [
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':BATON-SVC-STALE - [0:0]',
        `-A PREROUTING ${JUMPS[0][2]}`,
        '-A PREROUTING -j BATON-OLD-LAYOUT',
        'COMMIT',
      ].join('\n'),
    );
    const text = fullScript(rules, CIDR, existing).text();
    assert.match(text, /^\*filter\n:BATON-SERVICES - \[0:0\]\n:BATON-FORWARD - \[0:0\]/);
    assert.match(text, /\n-X BATON-SVC-STALE\n/);
    assert.match(text, /\n-D PREROUTING -j BATON-OLD-LAYOUT\n/);
    // The jump already there is not added twice; the others are inserted first in their chain.
    assert.doesNotMatch(text, new RegExp(`-I PREROUTING 1 ${JUMPS[0][2]}`));
    assert.equal(text.match(/^-I /gm)!.length, JUMPS.length - 1);
    for (const r of rules)
      for (const c of r.chains.keys()) assert.ok(text.includes(`:${c} - [0:0]`));
  });

  it("where Docker's DOCKER-USER chain exists, pod traffic is accepted from it (ahead of Docker's network isolation)", () => {
    const rules = many(1).map((e) => entryRules(e, CIDR));
    const save = (extra: string[]) =>
      parseSave(['*filter', ':FORWARD DROP [0:0]', ...extra, 'COMMIT'].join('\n'));
    const withDocker = fullScript(rules, CIDR, save([':DOCKER-USER - [0:0]'])).text();
    assert.match(withDocker, /^-I DOCKER-USER 1 .*-j BATON-FORWARD$/m);
    const without = fullScript(rules, CIDR, save([])).text();
    assert.doesNotMatch(without, /DOCKER-USER/);
    // Already there: kept, not added again; and cleanup removes it.
    const jump = `-A DOCKER-USER -m comment --comment "baton forwarding" -j BATON-FORWARD`;
    const there = save([':DOCKER-USER - [0:0]', jump]);
    assert.doesNotMatch(fullScript(rules, CIDR, there).text(), /DOCKER-USER/);
    assert.match(cleanupScript(there).text(), /^-D DOCKER-USER .*-j BATON-FORWARD$/m);
  });

  it('an endpoint change rewrites that service chain only: the size does not grow with the services', () => {
    const sizes = [10, 1000].map((n) => {
      const before = many(n);
      const after = before.map((e, i) =>
        i === 3 ? { ...e, endpoints: e.endpoints.slice(0, 2) } : e,
      );
      const b = before.map((e) => entryRules(e, CIDR));
      const a = after.map((e) => entryRules(e, CIDR));
      // The proxy passes only the changed service's rules.
      return deltaScript([b[3]], [a[3]]);
    });
    assert.equal(sizes[0].text(), sizes[1].text());
    const text = sizes[0].text();
    // The service chain is rewritten (2 endpoints now), the gone endpoint's chain dropped.
    assert.equal(text.match(/^:BATON-SVC-/gm)!.length, 1);
    assert.equal(text.match(/^-X BATON-SEP-/gm)!.length, 1);
    // Shared chains are not touched: the VIP rule is the same.
    assert.doesNotMatch(text, /-[AD] BATON-SERVICES/);
  });

  it('an unchanged service writes nothing; a new one only adds; a deleted one only deletes', () => {
    const [e] = many(1);
    const r = entryRules(e, CIDR);
    assert.ok(deltaScript([r], [entryRules(e, CIDR)]).empty);
    const add = deltaScript([], [r]).text();
    assert.doesNotMatch(add, /^-D |^-X /m);
    assert.match(add, /^-A BATON-SERVICES -d 10.96.0.1\/32 /m);
    const del = deltaScript([r], []).text();
    assert.doesNotMatch(del, /^-A /m);
    assert.match(del, /^-D BATON-SERVICES -d 10.96.0.1\/32 /m);
    assert.equal(del.match(/^-X /gm)!.length, 4); // the service chain and its 3 endpoints
    // Losing its last endpoint swaps the jump for a REJECT.
    const none = deltaScript([r], [entryRules({ ...e, endpoints: [] }, CIDR)]).text();
    assert.match(none, /\*filter\n-A BATON-SERVICES .* -j REJECT/);
    assert.match(none, /^-D BATON-SERVICES -d 10.96.0.1\/32 .* -j BATON-SVC-/m);
  });

  it('cleanup removes every jump to our chains, then the chains', () => {
    const existing = parseSave(
      [
        '*nat',
        ':BATON-SERVICES - [0:0]',
        ':BATON-SVC-X - [0:0]',
        `-A OUTPUT ${JUMPS[1][2]}`,
        '-A BATON-SERVICES -d 10.96.0.1/32 -j BATON-SVC-X',
        'COMMIT',
        '*filter',
        ':BATON-FORWARD - [0:0]',
        `-A FORWARD ${JUMPS[7][2]}`,
        'COMMIT',
      ].join('\n'),
    );
    const text = cleanupScript(existing).text();
    assert.equal(
      text,
      [
        '*filter',
        ':BATON-FORWARD - [0:0]',
        `-D FORWARD ${JUMPS[7][2]}`,
        '-X BATON-FORWARD',
        'COMMIT',
        '*nat',
        ':BATON-SERVICES - [0:0]',
        ':BATON-SVC-X - [0:0]',
        `-D OUTPUT ${JUMPS[1][2]}`,
        '-X BATON-SERVICES',
        '-X BATON-SVC-X',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });
});
