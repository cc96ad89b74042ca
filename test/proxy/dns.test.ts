import { strict as assert } from 'node:assert';
import dgram from 'node:dgram';
import net from 'node:net';
import * as dnsPacket from 'dns-packet';
import { endpointsSchema, serviceSchema } from '../../src/api/schema/service';
import { ClusterDns, nameserversOf, parseNameserver } from '../../src/proxy/dns';
import { ServiceTable } from '../../src/proxy/service-table';

// ---- the cluster: namespace `shop` -------------------------------------------------

const service = (name: string, spec: object) =>
  serviceSchema.parse({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'shop' },
    spec,
  });

const endpoints = (name: string, subsets: object[]) =>
  endpointsSchema.parse({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'shop' },
    subsets,
  });

function shop(): ServiceTable {
  const t = new ServiceTable();
  t.setService(
    service('web', {
      clusterIP: '10.96.0.10',
      selector: { app: 'web' },
      ports: [
        { name: 'http', port: 80, targetPort: 8080 },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    }),
  );
  t.setEndpoints(
    endpoints('web', [
      { addresses: [{ ip: '10.244.9.9' }], ports: [{ name: 'http', port: 8080 }] },
    ]),
  );
  t.setService(
    service('db', {
      clusterIP: 'None',
      selector: { app: 'db' },
      ports: [{ name: 'pg', port: 5432 }],
    }),
  );
  t.setEndpoints(
    endpoints('db', [
      {
        addresses: [
          { ip: '10.244.1.5', hostname: 'db-0' },
          { ip: '10.244.2.7', hostname: 'db-1' },
          { ip: '10.244.3.9' },
        ],
        notReadyAddresses: [{ ip: '10.244.4.4', hostname: 'db-3' }],
        ports: [{ name: 'pg', port: 5432 }],
      },
    ]),
  );
  t.setService(service('ext', { type: 'ExternalName', externalName: 'db.example.com.' }));
  t.setService(
    service('alias', { type: 'ExternalName', externalName: 'web.shop.svc.cluster.local' }),
  );
  t.setService(service('v6', { clusterIP: 'fd00::a', ports: [{ port: 443 }] }));
  // Too many endpoints for a 512-byte UDP answer.
  t.setService(service('big', { clusterIP: 'None', ports: [{ port: 80 }] }));
  t.setEndpoints(
    endpoints('big', [
      {
        addresses: Array.from({ length: 100 }, (_, i) => ({ ip: `10.245.${i >> 8}.${i & 255}` })),
        ports: [{ port: 80 }],
      },
    ]),
  );
  return t;
}

// ---- asking -------------------------------------------------------------------------

const RD = dnsPacket.RECURSION_DESIRED;
let nextId = 1;

/** A query for `question` ("name TYPE"). */
function query(question: string, extra: Partial<dnsPacket.Packet> = {}): dnsPacket.Packet {
  const [name, type] = question.split(' ');
  return {
    type: 'query',
    id: nextId++,
    flags: RD,
    questions: [{ name, type: type as dnsPacket.RecordType, class: 'IN' }],
    ...extra,
  };
}

/** One line per record: `name TYPE data`. */
function show(r: dnsPacket.Answer): string {
  switch (r.type) {
    case 'SRV':
      return `${r.name} SRV ${r.data.priority} ${r.data.weight} ${r.data.port} ${r.data.target}`;
    case 'TXT':
      return `${r.name} TXT ${[r.data].flat().join(' ')}`;
    case 'SOA':
      return `${r.name} SOA ${r.data.mname}`;
    case 'OPT':
      return `OPT ${r.udpPayloadSize}`;
    default:
      return `${r.name} ${r.type} ${String(r.data)}`;
  }
}

/** The rcode, then the answers, then the additional records marked `+`. */
function summary(reply: dnsPacket.DecodedPacket): string[] {
  return [
    (reply as unknown as { rcode: string }).rcode,
    ...(reply.answers ?? []).map(show),
    ...(reply.additionals ?? []).map((r) => `+ ${show(r)}`),
  ];
}

/** What `dns.answer` says, through the wire format (so every answer must also encode). */
function ask(dns: ClusterDns, question: string): string[] | 'forward' {
  const reply = dns.answer(query(question));
  return reply ? summary(dnsPacket.decode(dnsPacket.encode(reply))) : 'forward';
}

// ---- the records --------------------------------------------------------------------

describe('cluster DNS records', () => {
  const dns = new ClusterDns({ table: shop() });
  const web = 'web.shop.svc.cluster.local';
  const db = 'db.shop.svc.cluster.local';

  const cases: [string, string[] | 'forward'][] = [
    // A ClusterIP service: its ClusterIP, and an SRV per named port.
    [`${web} A`, ['NOERROR', `${web} A 10.96.0.10`]],
    [`${web} AAAA`, ['NOERROR']],
    [`${web} ANY`, ['NOERROR', `${web} A 10.96.0.10`]],
    [
      `_http._tcp.${web} SRV`,
      ['NOERROR', `_http._tcp.${web} SRV 0 100 80 ${web}`, `+ ${web} A 10.96.0.10`],
    ],
    [
      `_dns._udp.${web} SRV`,
      ['NOERROR', `_dns._udp.${web} SRV 0 100 53 ${web}`, `+ ${web} A 10.96.0.10`],
    ],
    [`_dns._tcp.${web} SRV`, ['NXDOMAIN']],
    [`_tcp.${web} SRV`, ['NOERROR']],
    [`_http._tcp.${web} A`, ['NOERROR']],
    [`web-0.${web} A`, ['NXDOMAIN']],
    // Names are case-insensitive; the answer keeps the case asked (resolvers may randomize it).
    ['WEB.Shop.SVC.Cluster.Local. A', ['NOERROR', 'WEB.Shop.SVC.Cluster.Local A 10.96.0.10']],
    [
      `_HTTP._TCP.${web.toUpperCase()} SRV`,
      ['NOERROR', `_HTTP._TCP.${web.toUpperCase()} SRV 0 100 80 ${web}`, `+ ${web} A 10.96.0.10`],
    ],
    ['v6.shop.svc.cluster.local AAAA', ['NOERROR', 'v6.shop.svc.cluster.local AAAA fd00::a']],
    ['v6.shop.svc.cluster.local A', ['NOERROR']],

    // A headless service: its ready endpoints, each also by its own name.
    [db + ' A', ['NOERROR', `${db} A 10.244.1.5`, `${db} A 10.244.2.7`, `${db} A 10.244.3.9`]],
    [`db-0.${db} A`, ['NOERROR', `db-0.${db} A 10.244.1.5`]],
    [`10-244-3-9.${db} A`, ['NOERROR', `10-244-3-9.${db} A 10.244.3.9`]],
    [`db-3.${db} A`, ['NXDOMAIN']], // not ready
    [`db-0.${db} AAAA`, ['NOERROR']],
    [
      `_pg._tcp.${db} SRV`,
      [
        'NOERROR',
        `_pg._tcp.${db} SRV 0 33 5432 db-0.${db}`,
        `_pg._tcp.${db} SRV 0 33 5432 db-1.${db}`,
        `_pg._tcp.${db} SRV 0 33 5432 10-244-3-9.${db}`,
        `+ db-0.${db} A 10.244.1.5`,
        `+ db-1.${db} A 10.244.2.7`,
        `+ 10-244-3-9.${db} A 10.244.3.9`,
      ],
    ],

    // ExternalName: a CNAME, followed while it stays in the cluster.
    [
      'ext.shop.svc.cluster.local A',
      ['NOERROR', 'ext.shop.svc.cluster.local CNAME db.example.com'],
    ],
    [
      'ext.shop.svc.cluster.local CNAME',
      ['NOERROR', 'ext.shop.svc.cluster.local CNAME db.example.com'],
    ],
    [
      'alias.shop.svc.cluster.local A',
      ['NOERROR', `alias.shop.svc.cluster.local CNAME ${web}`, `${web} A 10.96.0.10`],
    ],

    // Pods by address, in any namespace.
    [
      '10-244-1-5.shop.pod.cluster.local A',
      ['NOERROR', '10-244-1-5.shop.pod.cluster.local A 10.244.1.5'],
    ],
    [
      '10-244-1-5.other.pod.cluster.local A',
      ['NOERROR', '10-244-1-5.other.pod.cluster.local A 10.244.1.5'],
    ],
    ['10-244-1-500.shop.pod.cluster.local A', ['NXDOMAIN']],
    ['10-244-1-5.shop.pod.cluster.local AAAA', ['NOERROR']],

    // Names that exist without records, and names that do not exist.
    ['shop.svc.cluster.local A', ['NOERROR']],
    ['svc.cluster.local A', ['NOERROR']],
    ['cluster.local A', ['NOERROR']],
    ['cluster.local SOA', ['NOERROR', 'cluster.local SOA ns.dns.cluster.local']],
    ['other.svc.cluster.local A', ['NXDOMAIN']],
    ['nope.shop.svc.cluster.local A', ['NXDOMAIN']],
    ['web.other.svc.cluster.local A', ['NXDOMAIN']],
    ['a.b.web.shop.svc.cluster.local A', ['NXDOMAIN']],
    ['www.cluster.local A', ['NXDOMAIN']],
    ['dns-version.cluster.local TXT', ['NOERROR', 'dns-version.cluster.local TXT 1.1.0']],

    // Reverse names: ours for ClusterIPs and named endpoints, anyone's otherwise.
    ['10.0.96.10.in-addr.arpa PTR', ['NOERROR', `10.0.96.10.in-addr.arpa PTR ${web}`]],
    ['5.1.244.10.in-addr.arpa PTR', ['NOERROR', `5.1.244.10.in-addr.arpa PTR db-0.${db}`]],
    [
      `a.0.0.0.${'0.'.repeat(24)}0.0.d.f.ip6.arpa PTR`,
      ['NOERROR', `a.0.0.0.${'0.'.repeat(24)}0.0.d.f.ip6.arpa PTR v6.shop.svc.cluster.local`],
    ],
    ['9.3.244.10.in-addr.arpa PTR', 'forward'],
    ['8.8.8.8.in-addr.arpa PTR', 'forward'],

    // Everything else is forwarded.
    ['example.com A', 'forward'],
    ['xcluster.local A', 'forward'],
    ['web.shop.svc.cluster.local.example.com A', 'forward'],
  ];

  for (const [question, want] of cases)
    it(question, () => assert.deepEqual(ask(dns, question), want));
});

describe('cluster DNS replies', () => {
  const dns = new ClusterDns({ table: shop() });
  const decoded = (p: dnsPacket.Packet | undefined) => {
    assert.ok(p, 'answered');
    return dnsPacket.decode(dnsPacket.encode(p));
  };

  it('answers authoritatively, copying the id and RD, with RA set', () => {
    const q = query('web.shop.svc.cluster.local A');
    const r = decoded(dns.answer(q));
    assert.equal(r.id, q.id);
    assert.deepEqual(
      [r.type, r.flag_aa, r.flag_rd, r.flag_ra, r.flag_tc],
      ['response', true, true, true, false],
    );
    assert.deepEqual(r.questions, q.questions);
    assert.equal(
      decoded(dns.answer(query('web.shop.svc.cluster.local A', { flags: 0 }))).flag_rd,
      false,
    );
  });

  it('names the zone (SOA) in NXDOMAIN and NODATA answers, so resolvers can cache them', () => {
    for (const question of ['nope.shop.svc.cluster.local A', 'web.shop.svc.cluster.local AAAA']) {
      const r = decoded(dns.answer(query(question)));
      assert.equal(r.flag_aa, true, question);
      assert.deepEqual((r.authorities ?? []).map(show), ['cluster.local SOA ns.dns.cluster.local']);
    }
  });

  it('echoes EDNS, and refuses what it does not do', () => {
    const opt: dnsPacket.Answer = {
      type: 'OPT',
      name: '.',
      udpPayloadSize: 4096,
      extendedRcode: 0,
      ednsVersion: 0,
      flags: 0,
      flag_do: false,
      options: [],
    };
    const r = decoded(dns.answer(query('web.shop.svc.cluster.local A', { additionals: [opt] })));
    assert.deepEqual(summary(r), [
      'NOERROR',
      'web.shop.svc.cluster.local A 10.96.0.10',
      '+ OPT 1232',
    ]);
    assert.deepEqual(summary(decoded(dns.answer(query('x A', { questions: [] })))), ['FORMERR']);
    const update = 5 << 11; // opcode UPDATE
    assert.deepEqual(
      summary(decoded(dns.answer(query('web.shop.svc.cluster.local A', { flags: update })))),
      ['NOTIMP'],
    );
  });

  it('serves another cluster domain, and ClusterIPs through addressOf', () => {
    const other = new ClusterDns({
      table: shop(),
      clusterDomain: 'Baton.Internal.',
      ttl: 30,
      addressOf: (ip) => (ip === '10.96.0.10' ? '169.254.20.1' : ip),
    });
    const web = 'web.shop.svc.baton.internal';
    assert.deepEqual(ask(other, `${web} A`), ['NOERROR', `${web} A 169.254.20.1`]);
    assert.deepEqual(ask(other, `_http._tcp.${web} SRV`), [
      'NOERROR',
      `_http._tcp.${web} SRV 0 100 80 ${web}`,
      `+ ${web} A 169.254.20.1`,
    ]);
    assert.deepEqual(ask(other, '1.20.254.169.in-addr.arpa PTR'), [
      'NOERROR',
      `1.20.254.169.in-addr.arpa PTR ${web}`,
    ]);
    assert.equal(ask(other, 'web.shop.svc.cluster.local A'), 'forward');
    const [a] = decoded(other.answer(query(`${web} A`))).answers ?? [];
    assert.equal(a?.type === 'A' ? a.ttl : undefined, 30);
  });

  it('sees the table change', () => {
    const table = shop();
    const live = new ClusterDns({ table });
    table.deleteService('shop/web');
    assert.deepEqual(ask(live, 'web.shop.svc.cluster.local A'), ['NXDOMAIN']);
  });
});

describe('upstream configuration', () => {
  it('reads nameservers from resolv.conf', () => {
    const conf = [
      '# generated',
      'search shop.svc.cluster.local',
      'nameserver 10.0.0.2',
      'nameserver   fd00::53  # v6',
      'nameserver not-an-ip',
      'options ndots:5',
    ].join('\n');
    assert.deepEqual(nameserversOf(conf), ['10.0.0.2', 'fd00::53']);
  });

  it('parses ip, ip:port and [ipv6]:port, and says what is wrong', () => {
    assert.deepEqual(parseNameserver('10.0.0.2'), { host: '10.0.0.2', port: 53 });
    assert.deepEqual(parseNameserver('127.0.0.1:5353'), { host: '127.0.0.1', port: 5353 });
    assert.deepEqual(parseNameserver('fd00::53'), { host: 'fd00::53', port: 53 });
    assert.deepEqual(parseNameserver('[fd00::53]:5353'), { host: 'fd00::53', port: 5353 });
    assert.throws(
      () => parseNameserver('dns.example.com'),
      /invalid upstream nameserver "dns.example.com"/,
    );
    assert.throws(() => parseNameserver('10.0.0.2:0'), /invalid upstream/);
  });
});

// ---- over sockets ---------------------------------------------------------------

/** Sends one message over UDP and decodes the first reply. */
function udpAsk(
  port: number,
  msg: dnsPacket.Packet | Buffer,
  ms = 1500,
): Promise<dnsPacket.DecodedPacket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      reject(new Error('no UDP reply'));
    }, ms);
    sock.on('message', (reply) => {
      clearTimeout(timer);
      sock.close();
      resolve(dnsPacket.decode(reply));
    });
    sock.send(Buffer.isBuffer(msg) ? msg : dnsPacket.encode(msg), port, '127.0.0.1');
  });
}

/** Sends a message over UDP that deserves no reply. */
function udpSend(port: number, msg: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.send(msg, port, '127.0.0.1', () => {
      sock.close();
      resolve();
    });
  });
}

/** Writes `frames` in one go on one TCP connection and decodes `want` replies. */
function tcpAsk(port: number, frames: Buffer[], want: number): Promise<dnsPacket.Packet[]> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(port, '127.0.0.1');
    const replies: dnsPacket.Packet[] = [];
    let pending = Buffer.alloc(0);
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`${replies.length} of ${want} TCP replies`));
    }, 1500);
    conn.on('error', reject);
    conn.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        replies.push(dnsPacket.streamDecode(pending));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      if (replies.length >= want) {
        clearTimeout(timer);
        conn.end();
        resolve(replies);
      }
    });
    conn.write(Buffer.concat(frames));
  });
}

/** A nameserver outside the cluster that knows two names; `silent` never answers. */
async function fakeUpstream(silent = false) {
  const sock = dgram.createSocket('udp4');
  const asked: string[] = [];
  const known: Record<string, string> = {
    'example.org': '93.184.216.34',
    'db.example.com': '192.0.2.7',
  };
  sock.on('message', (msg, from) => {
    const q = dnsPacket.decode(msg);
    const name = q.questions?.[0]?.name ?? '';
    asked.push(`${name} ${q.questions?.[0]?.type}`);
    if (silent) return;
    const ip = known[name.toLowerCase()];
    const reply = dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: RD | dnsPacket.RECURSION_AVAILABLE | (ip ? 0 : 3),
      questions: q.questions,
      answers: ip ? [{ type: 'A', name, ttl: 300, data: ip }] : [],
    });
    sock.send(reply, from.port, from.address);
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return {
    port: sock.address().port,
    asked,
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

describe('cluster DNS over sockets', () => {
  let dns: ClusterDns;
  let port: number;
  let upstream: Awaited<ReturnType<typeof fakeUpstream>>;
  let blackHole: Awaited<ReturnType<typeof fakeUpstream>>;

  before(async () => {
    upstream = await fakeUpstream();
    blackHole = await fakeUpstream(true);
    dns = new ClusterDns({
      table: shop(),
      // The first server never answers: every forward tries it, then the next.
      upstream: [`127.0.0.1:${blackHole.port}`, `127.0.0.1:${upstream.port}`],
      upstreamTimeoutMs: 200,
    });
    [port] = await dns.listen([{ host: '127.0.0.1', port: 0 }]);
  });
  after(async () => {
    await dns.close();
    await upstream.close();
    await blackHole.close();
  });

  it('answers over UDP', async () => {
    const q = query('web.shop.svc.cluster.local A');
    const r = await udpAsk(port, q);
    assert.equal(r.id, q.id);
    assert.deepEqual([r.flag_qr, r.flag_aa, r.flag_rd, r.flag_ra], [true, true, true, true]);
    assert.deepEqual(summary(r), ['NOERROR', 'web.shop.svc.cluster.local A 10.96.0.10']);
  });

  it('answers over TCP on the same port, several queries on one connection', async () => {
    const a = query('web.shop.svc.cluster.local A');
    const b = query('_pg._tcp.db.shop.svc.cluster.local SRV');
    const replies = await tcpAsk(port, [a, b].map(dnsPacket.streamEncode), 2);
    const byId = new Map(replies.map((r) => [r.id, r as dnsPacket.DecodedPacket]));
    assert.deepEqual(summary(byId.get(a.id)!), [
      'NOERROR',
      'web.shop.svc.cluster.local A 10.96.0.10',
    ]);
    assert.equal(byId.get(b.id)!.answers?.length, 3);
  });

  it('truncates an answer too big for UDP; TCP carries all of it', async () => {
    const q = query('big.shop.svc.cluster.local A');
    const r = await udpAsk(port, q);
    assert.deepEqual([r.flag_tc, r.answers?.length], [true, 0]);
    const [full] = await tcpAsk(port, [dnsPacket.streamEncode(q)], 1);
    assert.equal(full.answers?.length, 100);
  });

  it('forwards other names upstream, trying each server in turn, and relays the reply under the client id', async () => {
    const q = query('Example.org A', { id: 4242 });
    const r = await udpAsk(port, q);
    assert.equal(r.id, 4242);
    assert.deepEqual(summary(r), ['NOERROR', 'Example.org A 93.184.216.34']);
    assert.equal(r.flag_aa, false);
    assert.ok(blackHole.asked.includes('Example.org A'), 'tried the first server');
    assert.ok(upstream.asked.includes('Example.org A'), 'then the second');
    const [overTcp] = await tcpAsk(
      port,
      [dnsPacket.streamEncode(query('nowhere.example A', { id: 7 }))],
      1,
    );
    assert.deepEqual([overTcp.id, summary(overTcp as dnsPacket.DecodedPacket)], [7, ['NXDOMAIN']]);
  });

  it('resolves an ExternalName target upstream', async () => {
    const r = await udpAsk(port, query('ext.shop.svc.cluster.local A'));
    assert.deepEqual(summary(r), [
      'NOERROR',
      'ext.shop.svc.cluster.local CNAME db.example.com',
      'db.example.com A 192.0.2.7',
    ]);
  });

  it('drops garbage and keeps serving', async () => {
    await udpSend(port, Buffer.from('not a DNS message at all'));
    await udpSend(port, Buffer.from([1, 2, 3]));
    // A header promising five questions that are not there.
    await udpSend(port, Buffer.from([0, 1, 1, 0, 0, 5, 0, 0, 0, 0, 0, 0]));
    // A response: answering it could start two servers replying to each other.
    await udpSend(
      port,
      dnsPacket.encode({ ...query('web.shop.svc.cluster.local A'), type: 'response' }),
    );
    const r = await udpAsk(port, query('web.shop.svc.cluster.local A'));
    assert.deepEqual(summary(r), ['NOERROR', 'web.shop.svc.cluster.local A 10.96.0.10']);

    const garbage = Buffer.from([0, 3, 0xff, 0xff, 0xff]);
    const good = query('db-1.db.shop.svc.cluster.local A');
    const [after] = await tcpAsk(port, [garbage, dnsPacket.streamEncode(good)], 1);
    assert.equal(after.id, good.id);
  });

  it('answers SERVFAIL at once when it has no upstream', async () => {
    const lonely = new ClusterDns({ table: shop(), upstream: [] });
    const [p] = await lonely.listen([{ host: '127.0.0.1', port: 0 }]);
    try {
      const started = Date.now();
      const r = await udpAsk(p, query('example.org A', { id: 99 }));
      assert.deepEqual([r.id, summary(r)], [99, ['SERVFAIL']]);
      assert.ok(Date.now() - started < 500, 'without waiting for anyone');
      assert.deepEqual(summary(await udpAsk(p, query('web.shop.svc.cluster.local A'))), [
        'NOERROR',
        'web.shop.svc.cluster.local A 10.96.0.10',
      ]);
    } finally {
      await lonely.close();
    }
  });
});
