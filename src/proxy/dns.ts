/**
 * The cluster DNS server every node runs for its pods, after Kubernetes' DNS
 * specification (https://github.com/kubernetes/dns/blob/master/docs/specification.md).
 * Names under the cluster domain are answered from the node's ServiceTable;
 * any other name is forwarded to the node's own nameservers.
 *
 * `answer()` is the core: a pure function of a query and the table (no
 * sockets, no clock). `listen()` is the shell around it: UDP and TCP on the
 * same port, truncation to what a UDP client can take, forwarding, and
 * chasing ExternalName CNAMEs that leave the cluster.
 *
 * Names served (`<d>` is the cluster domain, `cluster.local` by default):
 *
 *   <svc>.<ns>.svc.<d>                    A/AAAA the ClusterIP (through `addressOf`);
 *                                         headless: every ready endpoint;
 *                                         ExternalName: CNAME to spec.externalName
 *   <host>.<svc>.<ns>.svc.<d>             A/AAAA one endpoint of a headless service, by its
 *                                         hostname, or its IP with dashes when it has none
 *   _<port>._<proto>.<svc>.<ns>.svc.<d>   SRV per named port (one per endpoint when headless)
 *   <a-b-c-d>.<ns>.pod.<d>                A a.b.c.d
 *   dns-version.<d>                       TXT the schema version
 *   <reversed ip>.in-addr.arpa, ip6.arpa  PTR for ClusterIPs and named endpoints (others forwarded)
 */
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import * as dnsPacket from 'dns-packet';
import type { Service } from '../api/schema';
import { silentLogger, type Logger } from '../common/log';
import { serviceKey, type ServiceTable } from './service-table';

export interface ClusterDnsOptions {
  table: ServiceTable;
  /** The zone this server is authoritative for; `cluster.local` by default. */
  clusterDomain?: string;
  /**
   * Nameservers for names outside the cluster domain, as `ip`, `ip:port` or
   * `[ipv6]:port`. By default those of /etc/resolv.conf, less the addresses
   * this server listens on (forwarding to ourselves would loop).
   */
  upstream?: string[];
  /** Seconds clients may cache an answer; 5 by default, so endpoint changes show quickly. */
  ttl?: number;
  log?: Logger;
  /** The address clients should use for a ClusterIP (userspace proxy mode); identity by default. */
  addressOf?: (clusterIP: string) => string;
  /** How long to wait for each upstream server before trying the next; 2000 ms by default. */
  upstreamTimeoutMs?: number;
}

export interface ListenAddress {
  host: string;
  /** 0 picks a free port (the same one for UDP and TCP). */
  port: number;
}

export interface Nameserver {
  host: string;
  port: number;
}

/** The version of the Kubernetes DNS schema these records follow (its `dns-version` record). */
const DNS_SCHEMA_VERSION = '1.1.0';
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;
/** Guards against CNAME loops between ExternalName services. */
const MAX_CNAME_CHAIN = 8;
/** RFC 1035's limit for a UDP reply when the client did not say it takes more (EDNS). */
const UDP_CLASSIC_MAX = 512;
/** The EDNS payload size we offer and accept: DNS Flag Day 2020's value, avoids IP fragmentation. */
const UDP_EDNS_MAX = 1232;
/** Idle TCP connections are closed after this long (RFC 7766 §6.2.3), so clients cannot hoard them. */
const TCP_IDLE_MS = 10_000;
/** Port 0 gives UDP and TCP different ports; retries when TCP cannot have UDP's. */
const SAME_PORT_ATTEMPTS = 10;

/** A name's lookup: someone else's, absent from our zone, or present with these records. */
type Lookup =
  | { kind: 'foreign' }
  | { kind: 'nxdomain' }
  | { kind: 'name'; records: dnsPacket.Answer[]; additionals: dnsPacket.Answer[] };

const FOREIGN: Lookup = { kind: 'foreign' };
const NXDOMAIN: Lookup = { kind: 'nxdomain' };
const found = (records: dnsPacket.Answer[], additionals: dnsPacket.Answer[] = []): Lookup => ({
  kind: 'name',
  records,
  additionals,
});

/** One address of an Endpoints object, with its subset's ports. */
interface EndpointAddress {
  ip: string;
  hostname?: string;
  /** Its name under the service: the hostname, or the IP with dashes. */
  label: string;
  ports: { name?: string; port: number; protocol?: string }[];
}

export class ClusterDns {
  private readonly table: ServiceTable;
  private readonly domain: string;
  private readonly ttl: number;
  private readonly log: Logger;
  private readonly addressOf: (clusterIP: string) => string;
  private readonly upstreamTimeoutMs: number;
  /** Resolved at listen() when not given, since it excludes the addresses we listen on. */
  private upstream: Nameserver[] | undefined;
  private readonly udpSockets: dgram.Socket[] = [];
  private readonly tcpServers: net.Server[] = [];
  private readonly connections = new Set<net.Socket>();
  /** Aborted by close(): ends upstream waits so no timer outlives the server. */
  private readonly stop = new AbortController();

  constructor(opts: ClusterDnsOptions) {
    this.table = opts.table;
    this.domain = normalizeName(opts.clusterDomain ?? 'cluster.local').replace(/^\./, '');
    this.ttl = opts.ttl ?? 5;
    this.log = (opts.log ?? silentLogger()).child({ component: 'dns' });
    this.addressOf = opts.addressOf ?? ((ip) => ip);
    this.upstreamTimeoutMs = opts.upstreamTimeoutMs ?? 2000;
    this.upstream = opts.upstream?.map(parseNameserver);
  }

  // ---- the core: answers from the table --------------------------------------

  /**
   * The reply to `query` from the cluster's records, or undefined when the
   * name is not ours and should be forwarded upstream.
   */
  answer(query: dnsPacket.Packet): dnsPacket.Packet | undefined {
    const questions = query.questions ?? [];
    if ((((query.flags ?? 0) >> 11) & 0xf) !== 0) return this.reply(query, RCODE.NOTIMP);
    // Resolvers send exactly one question; RFC 9619 makes that the rule for QUERY.
    if (questions.length !== 1) return this.reply(query, RCODE.FORMERR);
    const q = questions[0];
    const name = normalizeName(q.name);
    const first = this.lookup(name, q.name.replace(/\.$/, ''));
    if (first.kind === 'foreign') return undefined;
    // Negative answers carry the zone's SOA so resolvers know how long to cache them (RFC 2308).
    const negative = this.inZone(name) ? [this.soa()] : [];
    if (first.kind === 'nxdomain')
      return this.reply(query, RCODE.NXDOMAIN, { aa: true, authorities: negative });

    const qtype: string = q.type;
    const answers: dnsPacket.Answer[] = [];
    const additionals: dnsPacket.Answer[] = [];
    let at = first;
    // Only class IN holds records; other classes get an empty answer.
    const inClass = q.class === undefined || q.class === 'IN' || q.class === 'ANY';
    for (let hops = 0; inClass; hops++) {
      const matching = at.records.filter((r) => qtype === 'ANY' || r.type === qtype);
      const cname = at.records.find((r): r is dnsPacket.StringAnswer => r.type === 'CNAME');
      if (matching.length > 0 || !cname || hops === MAX_CNAME_CHAIN) {
        answers.push(...matching);
        if (matching.length > 0) additionals.push(...at.additionals);
        break;
      }
      // A CNAME answers every type; follow it while it stays in our zone.
      // One that leaves it is chased upstream by the shell (resolveExternal).
      answers.push(cname);
      const target = normalizeName(cname.data);
      const next = this.lookup(target, target);
      if (next.kind !== 'name') break;
      at = next;
    }
    return this.reply(query, RCODE.NOERROR, {
      aa: true,
      answers,
      additionals,
      authorities: answers.length > 0 ? [] : negative,
    });
  }

  /** The records of `name` (lower case, no trailing dot), owned by `owner` (the name as asked). */
  private lookup(name: string, owner: string): Lookup {
    if (!this.inZone(name)) return this.reverseLookup(name, owner);
    const labels = name === this.domain ? [] : name.slice(0, -this.domain.length - 1).split('.');
    const n = labels.length;
    if (n === 0) return found([this.soa()]);
    if (n === 1 && labels[0] === 'dns-version')
      return found([{ type: 'TXT', name: owner, ttl: this.ttl, data: [DNS_SCHEMA_VERSION] }]);
    if (labels[n - 1] === 'svc') return this.serviceLookup(labels.slice(0, -1), owner);
    if (labels[n - 1] === 'pod') return this.podLookup(labels.slice(0, -1), owner);
    return NXDOMAIN;
  }

  /** Names under `svc.<d>`; `labels` are the ones before `svc`. */
  private serviceLookup(labels: string[], owner: string): Lookup {
    const n = labels.length;
    // `svc.<d>` and `<ns>.svc.<d>` hold no records but have names below them:
    // answering NXDOMAIN would tell resolvers the whole subtree is empty (RFC 8020).
    if (n === 0) return found([]);
    const ns = labels[n - 1];
    if (n === 1) return this.hasNamespace(ns) ? found([]) : NXDOMAIN;
    const svc = this.table.services.get(serviceKey(ns, labels[n - 2]));
    if (!svc) return NXDOMAIN;
    const head = labels.slice(0, -2);
    if (head.length === 0) return this.serviceRecords(svc, owner);
    if (head.length === 1 && !head[0].startsWith('_'))
      return this.endpointRecords(svc, head[0], owner);
    if (head.length <= 2 && head.every((l) => l.startsWith('_'))) {
      const [port, proto] = head.length === 2 ? head : [undefined, head[0]];
      const srv = this.srvRecords(svc, port?.slice(1), proto.slice(1), owner);
      if (srv.records.length === 0) return NXDOMAIN;
      // `_<proto>.<svc>...` exists only as the parent of SRV names.
      return head.length === 2 ? found(srv.records, srv.additionals) : found([]);
    }
    return NXDOMAIN;
  }

  /** `<svc>.<ns>.svc.<d>`: the ClusterIP, the endpoints when headless, or a CNAME. */
  private serviceRecords(svc: Service, owner: string): Lookup {
    const spec = svc.spec;
    if (spec.type === 'ExternalName')
      return spec.externalName
        ? found([
            {
              type: 'CNAME',
              name: owner,
              ttl: this.ttl,
              data: spec.externalName.replace(/\.$/, ''),
            },
          ])
        : found([]);
    const ips = isHeadless(svc)
      ? this.endpointsOf(svc).map((e) => e.ip)
      : clusterIPsOf(svc).map((ip) => this.addressOf(ip));
    return found(unique(ips).map((ip) => this.addressRecord(owner, ip)));
  }

  /** `<host>.<svc>.<ns>.svc.<d>`: the endpoints of a headless service named `label`. */
  private endpointRecords(svc: Service, label: string, owner: string): Lookup {
    if (!isHeadless(svc)) return NXDOMAIN;
    const ips = this.endpointsOf(svc)
      .filter((e) => e.label === label)
      .map((e) => e.ip);
    return ips.length > 0
      ? found(unique(ips).map((ip) => this.addressRecord(owner, ip)))
      : NXDOMAIN;
  }

  /**
   * `_<port>._<proto>.<svc>.<ns>.svc.<d>` (any named port when `portName` is
   * undefined): one SRV to the service's name, or one per endpoint when
   * headless, with the targets' addresses as additional records.
   */
  private srvRecords(
    svc: Service,
    portName: string | undefined,
    proto: string,
    owner: string,
  ): { records: dnsPacket.Answer[]; additionals: dnsPacket.Answer[] } {
    const wanted = (p: { name?: string; protocol?: string }) =>
      !!p.name &&
      (portName === undefined || p.name.toLowerCase() === portName) &&
      (p.protocol ?? 'TCP').toLowerCase() === proto;
    const fqdn = this.serviceName(svc);
    const ports: { target: string; port: number }[] = [];
    const addresses = new Map<string, string[]>(); // target -> its addresses
    if (isHeadless(svc)) {
      for (const e of this.endpointsOf(svc)) {
        const target = `${e.label}.${fqdn}`;
        for (const p of e.ports.filter(wanted)) {
          ports.push({ target, port: p.port });
          addresses.set(target, unique([...(addresses.get(target) ?? []), e.ip]));
        }
      }
    } else if (svc.spec.type !== 'ExternalName' && clusterIPsOf(svc).length > 0) {
      for (const p of (svc.spec.ports ?? []).filter(wanted)) {
        ports.push({ target: fqdn, port: p.port });
        addresses.set(
          fqdn,
          clusterIPsOf(svc).map((ip) => this.addressOf(ip)),
        );
      }
    }
    // Equal weights: every target is as good as another (RFC 2782 picks by weight).
    const weight = Math.max(1, Math.floor(100 / Math.max(1, ports.length)));
    return {
      records: ports.map(({ target, port }) => ({
        type: 'SRV',
        name: owner,
        ttl: this.ttl,
        data: { priority: 0, weight, port, target },
      })),
      additionals: [...addresses].flatMap(([target, ips]) =>
        ips.map((ip) => this.addressRecord(target, ip)),
      ),
    };
  }

  /** Names under `pod.<d>`: `<a-b-c-d>.<ns>.pod.<d>` answers a.b.c.d, whatever the namespace. */
  private podLookup(labels: string[], owner: string): Lookup {
    if (labels.length <= 1) return found([]);
    if (labels.length !== 2) return NXDOMAIN;
    const dashed = labels[0];
    const ip = [dashed.replace(/-/g, '.'), dashed.replace(/-/g, ':')].find(
      (a) => net.isIP(a) !== 0,
    );
    return ip ? found([this.addressRecord(owner, ip)]) : NXDOMAIN;
  }

  /**
   * PTR records for our ClusterIPs and named endpoints; every other reverse
   * name (pods, hosts outside) is someone else's. Scans the table: a node's
   * services number in the thousands at most, and reverse lookups are rare.
   */
  private reverseLookup(name: string, owner: string): Lookup {
    const ip = reverseAddress(name);
    if (ip === undefined) return FOREIGN;
    const names: string[] = [];
    for (const svc of this.table.services.values()) {
      const fqdn = this.serviceName(svc);
      if (isHeadless(svc)) {
        for (const e of this.endpointsOf(svc))
          if (e.hostname && canonicalIp(e.ip) === ip) names.push(`${e.label}.${fqdn}`);
      } else if (clusterIPsOf(svc).some((c) => canonicalIp(this.addressOf(c)) === ip)) {
        names.push(fqdn);
      }
    }
    if (names.length === 0) return FOREIGN;
    return found(unique(names).map((data) => ({ type: 'PTR', name: owner, ttl: this.ttl, data })));
  }

  private endpointsOf(svc: Service): EndpointAddress[] {
    const eps = this.table.endpoints.get(keyOf(svc));
    const out: EndpointAddress[] = [];
    for (const sub of eps?.subsets ?? []) {
      const addresses = [
        ...(sub.addresses ?? []),
        ...(svc.spec.publishNotReadyAddresses ? (sub.notReadyAddresses ?? []) : []),
      ];
      for (const a of addresses)
        out.push({
          ip: a.ip,
          hostname: a.hostname,
          label: (a.hostname ?? a.ip.replace(/[.:]/g, '-')).toLowerCase(),
          ports: sub.ports ?? [],
        });
    }
    return out;
  }

  private hasNamespace(ns: string): boolean {
    for (const key of this.table.services.keys()) if (key.startsWith(`${ns}/`)) return true;
    return false;
  }

  private serviceName(svc: Service): string {
    return `${svc.metadata.name}.${svc.metadata.namespace ?? 'default'}.svc.${this.domain}`;
  }

  private inZone(name: string): boolean {
    return name === this.domain || name.endsWith(`.${this.domain}`);
  }

  private addressRecord(name: string, ip: string): dnsPacket.Answer {
    return { type: net.isIPv6(ip) ? 'AAAA' : 'A', name, ttl: this.ttl, data: ip };
  }

  private soa(): dnsPacket.Answer {
    const d = this.domain;
    return {
      type: 'SOA',
      name: d,
      ttl: this.ttl,
      // No secondary ever transfers this zone, so the serial never has to move.
      data: {
        mname: `ns.dns.${d}`,
        rname: `hostmaster.${d}`,
        serial: 1,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: this.ttl,
      },
    };
  }

  /** A response to `query`: RD copied, RA set, an OPT record when the query had one (RFC 6891). */
  private reply(
    query: dnsPacket.Packet,
    rcode: number,
    s: {
      aa?: boolean;
      answers?: dnsPacket.Answer[];
      authorities?: dnsPacket.Answer[];
      additionals?: dnsPacket.Answer[];
    } = {},
  ): dnsPacket.Packet {
    const edns = (query.additionals ?? []).some((r) => r.type === 'OPT');
    return {
      type: 'response',
      id: query.id ?? 0,
      flags:
        (s.aa ? dnsPacket.AUTHORITATIVE_ANSWER : 0) |
        ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) |
        dnsPacket.RECURSION_AVAILABLE |
        rcode,
      questions: query.questions ?? [],
      answers: s.answers ?? [],
      authorities: s.authorities ?? [],
      additionals: [
        ...(s.additionals ?? []),
        ...(edns
          ? [
              {
                type: 'OPT' as const,
                name: '.',
                udpPayloadSize: UDP_EDNS_MAX,
                extendedRcode: 0,
                ednsVersion: 0,
                flags: 0,
                flag_do: false,
                options: [],
              },
            ]
          : []),
      ],
    };
  }

  // ---- the shell: sockets and forwarding -------------------------------------

  /**
   * Serves UDP and TCP on each address, on the same port for both (clients
   * retry a truncated UDP answer over TCP on the port they asked). Returns
   * the bound port of each address, in order.
   */
  async listen(addresses: ListenAddress[]): Promise<number[]> {
    this.upstream ??= await defaultUpstream(
      addresses.map((a) => a.host),
      this.log,
    );
    const ports: number[] = [];
    for (const a of addresses) ports.push(await this.listenOn(a));
    this.log.info(
      { addresses: addresses.map((a, i) => `${a.host}:${ports[i]}`), upstream: this.upstream },
      'cluster DNS listening',
    );
    return ports;
  }

  async close(): Promise<void> {
    this.stop.abort();
    for (const c of this.connections) c.destroy();
    const udp = this.udpSockets.splice(0).map((s) => new Promise<void>((r) => s.close(() => r())));
    const tcp = this.tcpServers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r())));
    await Promise.all([...udp, ...tcp]);
  }

  private async listenOn({ host, port }: ListenAddress): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      const udp = await bindUdp(host, port);
      const bound = udp.address().port;
      try {
        const tcp = await listenTcp(host, bound, (conn) => this.serveTcp(conn));
        this.serveUdp(udp);
        this.tcpServers.push(tcp);
        return bound;
      } catch (err) {
        udp.close();
        const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (port !== 0 || !inUse || attempt >= SAME_PORT_ATTEMPTS) throw err;
      }
    }
  }

  private serveUdp(udp: dgram.Socket): void {
    this.udpSockets.push(udp);
    udp.on('error', (err) => this.log.warn({ err }, 'DNS UDP socket error'));
    udp.on('message', (msg, from) => {
      void this.handle(msg, 'udp').then((reply) => {
        if (!reply || this.stop.signal.aborted) return;
        udp.send(reply, from.port, from.address, (err) => {
          if (err) this.log.debug({ err, to: from.address }, 'DNS reply not sent');
        });
      });
    });
  }

  private serveTcp(conn: net.Socket): void {
    this.connections.add(conn);
    conn.on('close', () => this.connections.delete(conn));
    conn.on('error', (err) => this.log.debug({ err }, 'DNS TCP connection error'));
    conn.setTimeout(TCP_IDLE_MS, () => conn.destroy());
    let pending = Buffer.alloc(0);
    conn.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk]);
      // Each message is preceded by its length in two bytes (RFC 1035 §4.2.2). Queries
      // are answered as they complete, maybe out of order (RFC 7766 §6.2.1.1).
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        const msg = pending.subarray(2, 2 + pending.readUInt16BE(0));
        pending = pending.subarray(2 + msg.length);
        void this.handle(msg, 'tcp').then((reply) => {
          if (reply && conn.writable) conn.write(Buffer.concat([lengthPrefix(reply), reply]));
        });
      }
    });
  }

  /** The encoded reply to one message, or undefined to drop it. Never rejects. */
  private async handle(msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch (err) {
      this.log.debug({ err, bytes: msg.length, transport }, 'dropped a malformed DNS message');
      return undefined;
    }
    // Answering a stray response could set two servers answering each other forever.
    if (query.type !== 'query') return undefined;
    try {
      const local = this.answer(query);
      if (!local) {
        const relayed = await this.exchange(msg);
        if (relayed) {
          // Relayed byte for byte (nothing lost to re-encoding), under the client's id.
          relayed.writeUInt16BE(query.id ?? 0, 0);
          return relayed;
        }
        this.log.debug({ name: query.questions?.[0]?.name }, 'no upstream answered');
        return this.encode(this.reply(query, RCODE.SERVFAIL), query, transport);
      }
      return this.encode(await this.resolveExternal(query, local), query, transport);
    } catch (err) {
      this.log.warn({ err, name: query.questions?.[0]?.name }, 'failed to answer a DNS query');
      return dnsPacket.encode(this.reply(query, RCODE.SERVFAIL));
    }
  }

  /**
   * Completes an answer whose CNAME chain leaves the cluster (ExternalName
   * services) with the target's records from upstream, as CoreDNS does: stub
   * resolvers like glibc's do not chase a CNAME themselves. Upstream silence
   * leaves the CNAME alone.
   */
  private async resolveExternal(
    query: dnsPacket.Packet,
    local: dnsPacket.Packet,
  ): Promise<dnsPacket.Packet> {
    const q = query.questions?.[0];
    const answers = local.answers ?? [];
    const last = answers[answers.length - 1];
    if (!q || !last || last.type !== 'CNAME' || q.type === 'CNAME' || (q.type as string) === 'ANY')
      return local;
    const target = normalizeName(last.data);
    if (this.inZone(target)) return local;
    const sub = dnsPacket.encode({
      type: 'query',
      id: 0,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name: target, type: q.type, class: 'IN' }],
    });
    const reply = await this.exchange(sub);
    if (!reply) return local;
    const decoded = dnsPacket.decode(reply);
    if (((decoded.flags ?? 0) & 0xf) !== RCODE.NOERROR) return local;
    return { ...local, answers: [...answers, ...(decoded.answers ?? [])] };
  }

  /**
   * Asks the upstream servers in turn; the first good reply wins. SERVFAIL
   * and REFUSED move on to the next server but are kept, in case none does
   * better. Each attempt uses a fresh socket (a random source port) and a
   * random id, so an off-path spoofer has both to guess.
   */
  private async exchange(msg: Buffer): Promise<Buffer | undefined> {
    let fallback: Buffer | undefined;
    for (const server of this.upstream ?? []) {
      if (this.stop.signal.aborted) break;
      const reply = await this.ask(server, msg);
      if (!reply) continue;
      const rcode = reply.readUInt16BE(2) & 0xf;
      if (rcode !== RCODE.SERVFAIL && rcode !== 5 /* REFUSED */) return reply;
      fallback ??= reply;
    }
    return fallback;
  }

  /** One UDP round trip to `server`, or undefined on timeout or error. */
  private ask(server: Nameserver, msg: Buffer): Promise<Buffer | undefined> {
    const id = randomInt(0, 0x10000);
    const out = Buffer.from(msg);
    out.writeUInt16BE(id, 0);
    return new Promise((resolve) => {
      const sock = dgram.createSocket(net.isIPv6(server.host) ? 'udp6' : 'udp4');
      let settled = false;
      const done = (reply?: Buffer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.stop.signal.removeEventListener('abort', onAbort);
        sock.close();
        resolve(reply);
      };
      const onAbort = () => done();
      const timer = setTimeout(() => {
        this.log.debug({ server }, 'upstream DNS server timed out');
        done();
      }, this.upstreamTimeoutMs);
      this.stop.signal.addEventListener('abort', onAbort);
      sock.on('error', (err) => {
        this.log.debug({ err, server }, 'upstream DNS exchange failed');
        done();
      });
      sock.on('message', (reply, from) => {
        // Only this server's answer to this query counts; anything else may be spoofed.
        if (from.address !== server.host || from.port !== server.port) return;
        if (reply.length < 12 || reply.readUInt16BE(0) !== id) return;
        try {
          if (dnsPacket.decode(reply).type !== 'response') return;
        } catch (err) {
          this.log.debug({ err, server }, 'malformed reply from upstream');
          return;
        }
        done(reply);
      });
      sock.send(out, server.port, server.host, (err) => {
        if (err) {
          this.log.debug({ err, server }, 'could not send to upstream DNS server');
          done();
        }
      });
    });
  }

  /** Encodes a reply; over UDP, one that does not fit the client is sent truncated (TC). */
  private encode(
    reply: dnsPacket.Packet,
    query: dnsPacket.Packet,
    transport: 'udp' | 'tcp',
  ): Buffer {
    const buf = dnsPacket.encode(reply);
    if (transport === 'tcp') return buf;
    const opt = (query.additionals ?? []).find((r) => r.type === 'OPT');
    const limit = opt
      ? Math.min(Math.max(opt.udpPayloadSize, UDP_CLASSIC_MAX), UDP_EDNS_MAX)
      : UDP_CLASSIC_MAX;
    if (buf.length <= limit) return buf;
    return dnsPacket.encode({
      ...reply,
      flags: (reply.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE,
      answers: [],
      authorities: [],
      additionals: (reply.additionals ?? []).filter((r) => r.type === 'OPT'),
    });
  }
}

// ---- helpers -------------------------------------------------------------------

/** Lower case, without the trailing dot: the form names are compared in. */
function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

function keyOf(svc: Service): string {
  return serviceKey(svc.metadata.namespace ?? 'default', svc.metadata.name);
}

function isHeadless(svc: Service): boolean {
  return svc.spec.type !== 'ExternalName' && svc.spec.clusterIP === 'None';
}

/** The service's allocated ClusterIPs (none while unallocated, headless or ExternalName). */
function clusterIPsOf(svc: Service): string[] {
  const spec = svc.spec;
  if (spec.type === 'ExternalName') return [];
  const ips = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
  return ips.filter((ip) => net.isIP(ip) !== 0);
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

/** One spelling per address, so reverse names compare equal to ClusterIPs however written. */
function canonicalIp(ip: string): string {
  if (!net.isIPv6(ip)) return ip;
  try {
    // The WHATWG URL parser prints IPv6 hosts in RFC 5952's compressed form.
    return new URL(`http://[${ip}]`).hostname.slice(1, -1);
  } catch {
    return ip; // a zone index (fe80::1%eth0) is no URL host; compare as written
  }
}

/** The address a reverse name stands for (`4.3.2.1.in-addr.arpa` → 1.2.3.4), if it is one. */
function reverseAddress(name: string): string | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (v4) {
    const ip = [v4[4], v4[3], v4[2], v4[1]].join('.');
    return net.isIPv4(ip) ? ip : undefined;
  }
  const v6 = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(name);
  if (v6) {
    const hex = v6[1].replace(/\./g, '').split('').reverse().join('');
    return canonicalIp((hex.match(/.{4}/g) ?? []).join(':'));
  }
  return undefined;
}

function lengthPrefix(msg: Buffer): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(msg.length);
  return b;
}

/** `ip`, `ip:port` or `[ipv6]:port`; port 53 when absent. */
export function parseNameserver(s: string): Nameserver {
  if (net.isIP(s) !== 0) return { host: s, port: 53 };
  const m = /^\[(.+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || net.isIP(m[1]) === 0 || !(port >= 1 && port <= 65535))
    throw new Error(
      `invalid upstream nameserver "${s}": want an IP address, optionally with :port`,
    );
  return { host: m[1], port };
}

/** The `nameserver` addresses of a resolv.conf, in order. */
export function nameserversOf(resolvConf: string): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const [key, addr] = line
      .replace(/[#;].*/, '')
      .trim()
      .split(/\s+/);
    if (key === 'nameserver' && addr && net.isIP(addr) !== 0) out.push(addr);
  }
  return out;
}

/**
 * The host's nameservers less the ones we are about to become (all local
 * addresses when listening on a wildcard): forwarding to ourselves would loop.
 */
async function defaultUpstream(listenHosts: string[], log: Logger): Promise<Nameserver[]> {
  let text: string;
  try {
    text = await readFile('/etc/resolv.conf', 'utf8');
  } catch (err) {
    log.warn({ err }, 'no /etc/resolv.conf: names outside the cluster will not resolve');
    return [];
  }
  const own = new Set(listenHosts.map(canonicalIp));
  if (listenHosts.some((h) => h === '0.0.0.0' || h === '::'))
    for (const addrs of Object.values(os.networkInterfaces()))
      for (const a of addrs ?? []) own.add(canonicalIp(a.address));
  return nameserversOf(text)
    .filter((a) => !own.has(canonicalIp(a)))
    .map(parseNameserver);
}

function bindUdp(host: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    const fail = (err: Error) => {
      try {
        sock.close();
      } catch {
        // never bound: nothing to close
      }
      reject(err);
    };
    sock.once('error', fail);
    sock.bind({ address: host, port, exclusive: true }, () => {
      sock.off('error', fail);
      resolve(sock);
    });
  });
}

function listenTcp(
  host: string,
  port: number,
  onConnection: (conn: net.Socket) => void,
): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer(onConnection);
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
