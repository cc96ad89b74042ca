import { strict as assert } from 'node:assert';
import dgram from 'node:dgram';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import type { Endpoints, Service } from '../../src/api/schema';
import { ServiceTable } from '../../src/proxy/service-table';
import {
  EndpointPicker,
  loopbackAddress,
  UserspaceProxy,
  UserspaceProxyOptions,
} from '../../src/proxy/userspace';
import { Rng } from '../support/rng';
import { until } from '../support/until';

describe('loopback addresses for ClusterIPs', () => {
  it('adds the offset within the service CIDR to 127.128.0.0', () => {
    const cases: [string, string, string][] = [
      ['10.96.0.1', '10.96.0.0/12', '127.128.0.1'],
      ['10.96.1.2', '10.96.0.0/12', '127.128.1.2'],
      ['10.111.255.255', '10.96.0.0/12', '127.143.255.255'],
      ['172.20.0.0', '172.20.0.0/16', '127.128.0.0'],
      ['10.127.255.255', '10.0.0.0/8', '127.255.255.255'],
    ];
    for (const [ip, cidr, want] of cases) assert.equal(loopbackAddress(ip, cidr), want, ip);
  });

  it('refuses addresses it cannot map, naming the cluster IP', () => {
    assert.throws(
      () => loopbackAddress('10.97.0.1', '10.96.0.0/16'),
      /cluster IP 10\.97\.0\.1 is outside the service CIDR 10\.96\.0\.0\/16/,
    );
    assert.throws(
      () => loopbackAddress('10.128.0.0', '10.0.0.0/8'),
      /cluster IP 10\.128\.0\.0 is 8388608 addresses into 10\.0\.0\.0\/8; .* only the first 8388608/,
    );
    assert.throws(() => loopbackAddress('fd00::1', '10.96.0.0/12'), /"fd00::1" is not an IPv4/);
    assert.throws(() => loopbackAddress('10.96.0.1', '10.96.0.1/12'), /host bits set/);
  });
});

describe('endpoint picker', () => {
  const eps = [
    { ip: '10.0.0.1', port: 80 },
    { ip: '10.0.0.2', port: 80 },
    { ip: '10.0.0.3', port: 80 },
  ];

  it('spreads first choices evenly and offers every endpoint as a fallback', () => {
    const rng = new Rng(7);
    const p = new EndpointPicker(
      () => rng.next(),
      () => 0,
    );
    p.set(eps, undefined);
    const firsts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const order = p.order('1.2.3.4');
      assert.equal(new Set(order.map((e) => e.ip)).size, 3);
      firsts.set(order[0].ip, (firsts.get(order[0].ip) ?? 0) + 1);
    }
    for (const ep of eps) {
      const n = firsts.get(ep.ip) ?? 0;
      assert.ok(n > 900 && n < 1100, `${ep.ip} first ${n} times of 3000`);
    }
  });

  it('sticks a client to its endpoint until the affinity times out or the endpoint goes', () => {
    const rng = new Rng(7);
    let now = 0;
    const p = new EndpointPicker(
      () => rng.next(),
      () => now,
    );
    p.set(eps, 10);
    p.chose('1.2.3.4', eps[1]);
    for (let i = 0; i < 20; i++) assert.equal(p.order('1.2.3.4')[0].ip, '10.0.0.2');
    now = 9_999;
    assert.equal(p.order('1.2.3.4')[0].ip, '10.0.0.2', 'just inside the timeout');
    now = 10_000;
    const later = new Set(Array.from({ length: 50 }, () => p.order('1.2.3.4')[0].ip));
    assert.equal(later.size, 3, 'expired: random again');

    p.chose('1.2.3.4', eps[1]);
    p.set([eps[0], eps[2]], 10);
    p.set(eps, 10);
    const back = new Set(Array.from({ length: 50 }, () => p.order('1.2.3.4')[0].ip));
    assert.equal(back.size, 3, 'stickiness to a removed endpoint is forgotten');
  });
});

// ---- the proxy on real sockets --------------------------------------------------

const CIDR = '10.96.0.0/12';
/** A random stretch of the CIDR per run, so concurrent runs do not share loopback addresses. */
let nextOffset = 1 + Math.floor(Math.random() * 1_000_000);
const freshClusterIP = (): string => {
  const n = 0x0a600000 + nextOffset++;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
};

interface PortSpec {
  port: number;
  protocol?: 'TCP' | 'UDP';
  nodePort?: number;
}

function service(
  name: string,
  clusterIP: string,
  ports: PortSpec[],
  opts: { affinitySeconds?: number; nodePort?: boolean } = {},
): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default' },
    spec: {
      type: opts.nodePort ? 'NodePort' : 'ClusterIP',
      clusterIP,
      ports: ports.map((p) => ({ protocol: 'TCP', targetPort: p.port, ...p })),
      sessionAffinity: opts.affinitySeconds ? 'ClientIP' : 'None',
      ...(opts.affinitySeconds
        ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: opts.affinitySeconds } } }
        : {}),
    },
  };
}

/** Endpoints on 127.0.0.1, one subset per backend since each has its own port. */
function endpoints(name: string, ports: number[], protocol: 'TCP' | 'UDP' = 'TCP'): Endpoints {
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'default' },
    subsets: ports.map((port) => ({
      addresses: [{ ip: '127.0.0.1' }],
      ports: [{ port, protocol }],
    })),
  };
}

/** Backend servers on 127.0.0.1 random ports, all torn down after each test. */
class Backends {
  private readonly closers: (() => Promise<void>)[] = [];

  /** Answers every connection with `name` and closes. */
  named(name: string): Promise<number> {
    return this.tcp((c) => c.end(name));
  }

  /** Reads the request to its end, then answers `name:request`. */
  echo(name: string): Promise<number> {
    return this.tcp((c) => {
      let got = '';
      c.setEncoding('utf8');
      c.on('data', (d) => (got += d));
      c.on('end', () => c.end(`${name}:${got}`));
    });
  }

  /** Resets the connection once the request arrives. */
  resetting(): Promise<number> {
    return this.tcp((c) => c.once('data', () => c.resetAndDestroy()));
  }

  /** Accepts and says nothing. */
  silent(): Promise<number> {
    return this.tcp(() => {});
  }

  /** A port nothing listens on (it was bound a moment ago). */
  async dead(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    return port;
  }

  /** Replies `name:datagram` to every datagram. */
  async udpEcho(name: string): Promise<number> {
    const s = dgram.createSocket('udp4');
    s.on('message', (m, from) => s.send(`${name}:${m}`, from.port, from.address));
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    this.closers.push(() => new Promise((r) => s.close(() => r())));
    return s.address().port;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.closers.splice(0).map((c) => c()));
  }

  private async tcp(onConn: (c: net.Socket) => void): Promise<number> {
    const conns = new Set<net.Socket>();
    const s = net.createServer({ allowHalfOpen: true }, (c) => {
      conns.add(c);
      c.on('close', () => conns.delete(c));
      c.on('error', () => {});
      onConn(c);
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    this.closers.push(
      () =>
        new Promise((r) => {
          for (const c of conns) c.destroy();
          s.close(() => r());
        }),
    );
    return (s.address() as net.AddressInfo).port;
  }
}

/**
 * A listener whose thread is blocked, so nothing accepts, with its accept
 * queue filled: further SYNs are dropped and connects to it hang.
 */
async function jammedListener(): Promise<{ port: number; release(): Promise<void> }> {
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const s = require('node:net').createServer();
     s.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
       parentPort.postMessage(s.address().port);
       Atomics.wait(workerData, 0, 0);
     });`,
    { eval: true, workerData: gate },
  );
  const port = await new Promise<number>((r) => worker.once('message', r));
  const hogs = Array.from({ length: 4 }, () =>
    net.connect(port, '127.0.0.1').on('error', () => {}),
  );
  await new Promise((r) => setTimeout(r, 50));
  return {
    port,
    release: async () => {
      for (const h of hogs) h.destroy();
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
      await worker.terminate();
    },
  };
}

interface Reply {
  data: string;
  /** The socket error code, if the connection failed or was reset. */
  error?: string;
}

/** Connects, optionally sends `request` and half-closes, and collects the reply until close. */
function fetch(addr: { host: string; port: number }, request?: string): Promise<Reply> {
  return new Promise((resolve) => {
    const s = net.connect(addr);
    let data = '';
    let error: string | undefined;
    s.setEncoding('utf8');
    s.on('data', (d) => (data += d));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    s.on('close', () => resolve({ data, ...(error ? { error } : {}) }));
    if (request !== undefined) s.end(request);
  });
}

function udpAsk(addr: { host: string; port: number }, msg: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no UDP reply from ${addr.host}:${addr.port}`));
    }, 2000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(m.toString());
    });
    s.send(msg, addr.port, addr.host);
  });
}

const tally = (replies: Reply[]): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const r of replies) {
    const key = r.data || `<${r.error ?? 'closed'}>`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
};

const times = <T>(n: number, f: () => Promise<T>): Promise<T[]> =>
  Promise.all(Array.from({ length: n }, f));

describe('userspace proxy', () => {
  let table: ServiceTable;
  let backends: Backends;
  let proxy: UserspaceProxy | undefined;
  let logLines: string[];

  beforeEach(() => {
    table = new ServiceTable();
    backends = new Backends();
    logLines = [];
  });

  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    await backends.closeAll();
  });

  /** Starts a proxy on `table` with a seeded rng and a captured log. */
  function startProxy(opts: Partial<UserspaceProxyOptions> = {}): UserspaceProxy {
    const rng = new Rng(42);
    const log = pino({ level: 'debug' }, { write: (s: string) => void logLines.push(s) });
    proxy = new UserspaceProxy({ table, serviceCIDR: CIDR, log, rng: () => rng.next(), ...opts });
    proxy.start();
    return proxy;
  }

  /** Adds a service and its endpoints, syncs, and returns the address of its first port. */
  async function addService(
    svc: Service,
    eps?: Endpoints,
  ): Promise<{ host: string; port: number; id: string }> {
    table.setService(svc);
    if (eps) table.setEndpoints(eps);
    await proxy!.sync();
    const entry = table.entriesOf(`default/${svc.metadata.name}`)[0];
    return { ...proxy!.address(entry), id: entry.id };
  }

  it('spreads connections over every endpoint, and drops one removed from the table', async () => {
    startProxy();
    const ports = [await backends.named('a'), await backends.named('b'), await backends.named('c')];
    const web = await addService(
      service('web', freshClusterIP(), [{ port: 8080 }]),
      endpoints('web', ports),
    );
    assert.match(web.host, /^127\.(12[89]|1[3-9]\d|2[0-5]\d)\./);

    const first = tally(await times(60, () => fetch(web)));
    assert.deepEqual(Object.keys(first).sort(), ['a', 'b', 'c'], JSON.stringify(first));
    for (const n of Object.values(first)) assert.ok(n >= 10, JSON.stringify(first));

    table.setEndpoints(endpoints('web', ports.slice(0, 2)));
    await proxy!.sync();
    const after = tally(await times(30, () => fetch(web)));
    assert.deepEqual(Object.keys(after).sort(), ['a', 'b'], JSON.stringify(after));
    assert.equal(proxy!.stats(web.id)?.accepted, 90, 'same listener before and after the update');
  });

  it('keeps a client on one endpoint under ClientIP affinity', async () => {
    startProxy();
    const ports = [await backends.named('a'), await backends.named('b'), await backends.named('c')];
    const web = await addService(
      service('sticky', freshClusterIP(), [{ port: 8080 }], { affinitySeconds: 60 }),
      endpoints('sticky', ports),
    );
    const replies: Reply[] = [];
    for (let i = 0; i < 20; i++) replies.push(await fetch(web));
    assert.equal(Object.keys(tally(replies)).length, 1, JSON.stringify(tally(replies)));
  });

  it('skips an endpoint that refuses and serves the client from another', async () => {
    startProxy();
    const web = await addService(
      service('flaky', freshClusterIP(), [{ port: 8080 }]),
      endpoints('flaky', [await backends.dead(), await backends.named('live')]),
    );
    const replies = tally(await times(20, () => fetch(web)));
    assert.deepEqual(replies, { live: 20 });
    assert.ok((proxy!.stats(web.id)?.dialFailures ?? 0) > 0, 'the dead endpoint was tried');
  });

  it('gives up after the connect timeout on an endpoint that never accepts', async () => {
    startProxy({ connectTimeoutMs: 200 });
    const jammed = await jammedListener();
    try {
      const web = await addService(
        service('slow', freshClusterIP(), [{ port: 8080 }]),
        endpoints('slow', [jammed.port]),
      );
      const started = Date.now();
      const r = await fetch(web);
      const took = Date.now() - started;
      assert.deepEqual(r, { data: '', error: 'ECONNRESET' });
      assert.ok(took >= 150 && took < 1000, `reset after ${took} ms`);
      assert.equal(proxy!.stats(web.id)?.dialFailures, 1);
    } finally {
      await jammed.release();
    }
  });

  it('resets the client at once when the service has no endpoints', async () => {
    startProxy();
    const empty = await addService(service('empty', freshClusterIP(), [{ port: 8080 }]));
    const r = await fetch(empty, 'hello');
    assert.equal(r.data, '');
    assert.equal(r.error, 'ECONNRESET');
  });

  it('resets the client when its endpoint resets, and when every endpoint refuses', async () => {
    startProxy();
    const rude = await addService(
      service('rude', freshClusterIP(), [{ port: 8080 }]),
      endpoints('rude', [await backends.resetting()]),
    );
    assert.equal((await fetch(rude, 'hello')).error, 'ECONNRESET');
    const down = await addService(
      service('down', freshClusterIP(), [{ port: 8080 }]),
      endpoints('down', [await backends.dead(), await backends.dead()]),
    );
    assert.deepEqual(await fetch(down), { data: '', error: 'ECONNRESET' });
    assert.equal(proxy!.stats(down.id)?.dialFailures, 2);
  });

  it('passes a half-close through: the request ends and the reply still arrives', async () => {
    startProxy();
    const echo = await addService(
      service('echo', freshClusterIP(), [{ port: 8080 }]),
      endpoints('echo', [await backends.echo('e')]),
    );
    assert.deepEqual(await fetch(echo, 'ping'), { data: 'e:ping' });
  });

  it('relays UDP both ways, one flow per client socket', async () => {
    // The default idle timeout (30 s): however slowly the second question is
    // answered, the first client's flow is still open when they are counted.
    startProxy();
    const dns = await addService(
      service('dns', freshClusterIP(), [{ port: 5353, protocol: 'UDP' }]),
      endpoints('dns', [await backends.udpEcho('u1')], 'UDP'),
    );
    assert.equal(await udpAsk(dns, 'q1'), 'u1:q1');
    assert.equal(await udpAsk(dns, 'q2'), 'u1:q2');
    assert.equal(proxy!.stats(dns.id)?.udpFlows, 2, 'one flow per client socket');
    assert.equal(proxy!.stats(dns.id)?.accepted, 2);
  });

  it('closes idle UDP flows', async () => {
    startProxy({ udpIdleMs: 300 });
    const dns = await addService(
      service('dns', freshClusterIP(), [{ port: 5353, protocol: 'UDP' }]),
      endpoints('dns', [await backends.udpEcho('u1')], 'UDP'),
    );
    assert.equal(await udpAsk(dns, 'q1'), 'u1:q1');
    assert.equal(await udpAsk(dns, 'q2'), 'u1:q2');
    assert.equal(proxy!.stats(dns.id)?.accepted, 2, 'two flows opened');
    await until('idle flows closed', () => proxy!.stats(dns.id)?.udpFlows === 0, 10_000);
  });

  it('listens on the NodePort as well, and moves it when it changes', async () => {
    startProxy({ nodePortHost: '127.0.0.1' });
    const clusterIP = freshClusterIP();
    const nodePort = await backends.dead();
    const np = (port: number) =>
      service('np', clusterIP, [{ port: 8080, nodePort: port }], { nodePort: true });
    const addr = await addService(np(nodePort), endpoints('np', [await backends.named('n')]));
    assert.deepEqual(await fetch({ host: '127.0.0.1', port: nodePort }), { data: 'n' });

    const moved = await backends.dead();
    await addService(np(moved));
    assert.deepEqual(await fetch({ host: '127.0.0.1', port: moved }), { data: 'n' });
    assert.deepEqual(await fetch(addr), { data: 'n' });
    assert.equal((await fetch({ host: '127.0.0.1', port: nodePort })).error, 'ECONNREFUSED');
  });

  it('closes the listener of a deleted service', async () => {
    startProxy();
    const web = await addService(
      service('gone', freshClusterIP(), [{ port: 8080 }]),
      endpoints('gone', [await backends.named('a')]),
    );
    assert.equal((await fetch(web)).data, 'a');
    table.deleteService('default/gone');
    await proxy!.sync();
    assert.deepEqual(await fetch(web), { data: '', error: 'ECONNREFUSED' });
    assert.equal(proxy!.stats(web.id), undefined);
  });

  it('reports a listener it cannot bind and binds it once the address is free', async () => {
    startProxy({ bindRetryMs: 100 });
    const clusterIP = freshClusterIP();
    const host = loopbackAddress(clusterIP, CIDR);
    const squatter = net.createServer((c) => c.end('squatter'));
    await new Promise<void>((r) => squatter.listen(8080, host, r));
    const web = await addService(
      service('busy', clusterIP, [{ port: 8080 }]),
      endpoints('busy', [await backends.named('a')]),
    );
    const warning = logLines.find((l) => l.includes('cannot listen'));
    assert.ok(warning, 'a warning is logged');
    assert.match(warning, /default\/busy:\/TCP/);
    assert.match(warning, new RegExp(`${host.replace(/\./g, '\\.')}:8080`));
    assert.match(warning, /EADDRINUSE/);

    await new Promise((r) => squatter.close(r));
    await until('bound on retry', async () => (await fetch(web)).data === 'a', 3000);
  });

  it('follows the table after start() without explicit syncs', async () => {
    startProxy();
    const svc = service('later', freshClusterIP(), [{ port: 8080 }]);
    table.setService(svc);
    table.setEndpoints(endpoints('later', [await backends.named('x')]));
    const addr = proxy!.address(table.entriesOf('default/later')[0]);
    await until('proxied', async () => (await fetch(addr)).data === 'x', 3000);
  });

  it('close() ends proxied connections and leaves nothing listening', async () => {
    const p = startProxy();
    const tcp = await addService(
      service('held', freshClusterIP(), [{ port: 8080 }]),
      endpoints('held', [await backends.silent()]),
    );
    const udp = await addService(
      service('held-udp', freshClusterIP(), [{ port: 5353, protocol: 'UDP' }]),
      endpoints('held-udp', [await backends.udpEcho('u')], 'UDP'),
    );
    assert.equal(await udpAsk(udp, 'q'), 'u:q');
    const held = fetch(tcp);
    await until('connection proxied', () => (p.stats(tcp.id)?.accepted ?? 0) === 1, 3000);
    await new Promise((r) => setTimeout(r, 50));

    await p.close();
    proxy = undefined;
    assert.equal((await held).data, '', 'the held connection is ended');
    assert.equal((await fetch(tcp)).error, 'ECONNREFUSED');
    // Both addresses can be bound again: the proxy holds no socket on them.
    const again = net.createServer();
    await new Promise<void>((r) => again.listen(tcp.port, tcp.host, r));
    await new Promise((r) => again.close(r));
    const u = dgram.createSocket('udp4');
    await new Promise<void>((r) => u.bind(udp.port, udp.host, r));
    await new Promise<void>((r) => u.close(() => r()));
  });
});
