/**
 * The NAT rules of one node's service proxy, as iptables-restore input
 * (pure: no I/O). The layout follows kube-proxy's iptables mode, in Baton's
 * own chains:
 *
 *   nat PREROUTING, OUTPUT → BATON-SERVICES: VIP:port (and external IPs) → BATON-SVC-…
 *   nat PREROUTING, OUTPUT (to a local address) → BATON-NODEPORTS: nodePort → BATON-SVC-…
 *   BATON-SVC-… : session affinity, then an even random pick → BATON-SEP-…
 *   BATON-SEP-… : DNAT to one endpoint (marking hairpin traffic for masquerade)
 *   nat POSTROUTING → BATON-POSTROUTING: masquerade what was marked; pod-to-pod keeps its IPs
 *   filter FORWARD, OUTPUT → BATON-SERVICES: REJECT for a service port without endpoints
 *   filter FORWARD → BATON-FORWARD: accept the pod network and marked traffic
 *
 * A service port's SVC chain is named from its id and is rewritten when its
 * endpoints change; an SEP chain is named from everything in it, so it never
 * changes — it is only created or deleted. That is what lets a sync write only
 * what changed: the rules of one service port are added to or deleted from
 * the shared chains by their exact text, never by rewriting those chains.
 */
import { createHash } from 'node:crypto';
import type { Endpoint, ServicePortEntry } from './service-table';

export const MASQ_MARK = '0x4000/0x4000';

/** The chains Baton owns, by table. */
export const BASE_CHAINS = {
  nat: ['BATON-SERVICES', 'BATON-NODEPORTS', 'BATON-POSTROUTING', 'BATON-MARK-MASQ'],
  filter: ['BATON-SERVICES', 'BATON-FORWARD', 'BATON-FIREWALL'],
} as const;

/** Rules in built-in chains that send traffic to ours: [table, chain, rule]. */
export const JUMPS: readonly [string, string, string][] = [
  ['nat', 'PREROUTING', '-m comment --comment "baton service portals" -j BATON-SERVICES'],
  ['nat', 'OUTPUT', '-m comment --comment "baton service portals" -j BATON-SERVICES'],
  [
    'nat',
    'PREROUTING',
    '-m addrtype --dst-type LOCAL -m comment --comment "baton node ports" -j BATON-NODEPORTS',
  ],
  [
    'nat',
    'OUTPUT',
    '-m addrtype --dst-type LOCAL -m comment --comment "baton node ports" -j BATON-NODEPORTS',
  ],
  ['nat', 'POSTROUTING', '-m comment --comment "baton postrouting" -j BATON-POSTROUTING'],
  [
    'filter',
    'FORWARD',
    '-m conntrack --ctstate NEW -m comment --comment "baton service portals" -j BATON-SERVICES',
  ],
  [
    'filter',
    'OUTPUT',
    '-m conntrack --ctstate NEW -m comment --comment "baton service portals" -j BATON-SERVICES',
  ],
  ['filter', 'FORWARD', '-m comment --comment "baton forwarding" -j BATON-FORWARD'],
  ['filter', 'INPUT', '-m comment --comment "baton firewall" -j BATON-FIREWALL'],
  ['filter', 'OUTPUT', '-m comment --comment "baton firewall" -j BATON-FIREWALL'],
];

/**
 * Docker's DOCKER-USER chain runs first in FORWARD, ahead of the isolation
 * rules that drop traffic between two Docker networks: where it exists
 * (two nodes' pod networks on one host, as `baton up` makes them), pod
 * traffic is accepted from there too. Docker puts its own jumps back at the
 * top of FORWARD, so a jump of ours in FORWARD alone can end up behind them.
 */
export const DOCKER_USER_JUMP: [string, string, string] = [
  'filter',
  'DOCKER-USER',
  '-m comment --comment "baton forwarding" -j BATON-FORWARD',
];

/** The rules Baton's base chains hold, which depend only on the cluster CIDR. */
export function baseRules(clusterCIDR: string | undefined): { nat: string[]; filter: string[] } {
  const nat = [
    `-A BATON-MARK-MASQ -j MARK --set-xmark ${MASQ_MARK}`,
    `-A BATON-POSTROUTING -m mark --mark ${MASQ_MARK} -j MASQUERADE --random-fully`,
  ];
  const filter = [
    `-A BATON-FORWARD -m mark --mark ${MASQ_MARK} -j ACCEPT`,
    // Node ports answer on 127.0.0.1 (route_localnet=1, as kube-proxy sets it); with that
    // on, packets for 127.0.0.0/8 arriving from outside must still be dropped.
    '-A BATON-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
  ];
  if (clusterCIDR) {
    // Pod to pod across nodes keeps the pods' addresses (ahead of Docker's masquerade).
    nat.push(`-A BATON-POSTROUTING -s ${clusterCIDR} -d ${clusterCIDR} -j ACCEPT`);
    filter.push(
      `-A BATON-FORWARD -s ${clusterCIDR} -j ACCEPT`,
      `-A BATON-FORWARD -d ${clusterCIDR} -j ACCEPT`,
    );
  }
  return { nat, filter };
}

function hash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 16).toUpperCase();
}

export const svcChain = (e: ServicePortEntry): string => `BATON-SVC-${hash(e.id)}`;

export const sepChain = (e: ServicePortEntry, ep: Endpoint): string =>
  `BATON-SEP-${hash(`${e.id}\0${ep.ip}:${ep.port}\0${e.affinitySeconds ?? ''}`)}`;

/** What one service port puts in the tables. */
export interface EntryRules {
  id: string;
  /** Rules (without "-A CHAIN ") added to shared chains, by "table CHAIN". */
  shared: Map<string, string[]>;
  /** Chains of this entry alone (nat), with their complete rules (with "-A CHAIN "). */
  chains: Map<string, string[]>;
}

/** The rules of one service port (pure). */
export function entryRules(e: ServicePortEntry, clusterCIDR: string | undefined): EntryRules {
  const proto = e.protocol.toLowerCase();
  const match = (port: number) => `-p ${proto} -m ${proto} --dport ${port}`;
  const comment = (what: string) => `-m comment --comment "${e.id} ${what}"`;
  const shared = new Map<string, string[]>();
  const add = (where: string, rule: string) => {
    const list = shared.get(where) ?? [];
    list.push(rule);
    shared.set(where, list);
  };
  const chains = new Map<string, string[]>();
  const dests = [e.clusterIP, ...e.externalIPs];
  if (e.endpoints.length === 0) {
    // No endpoint: refuse at once rather than let clients wait for a timeout.
    for (const d of dests)
      add(
        'filter BATON-SERVICES',
        `-d ${d}/32 ${match(e.port)} ${comment('has no endpoints')} -j REJECT --reject-with icmp-port-unreachable`,
      );
    if (e.nodePort !== undefined)
      add(
        'filter BATON-SERVICES',
        `-m addrtype --dst-type LOCAL ${match(e.nodePort)} ${comment('has no endpoints')} -j REJECT --reject-with icmp-port-unreachable`,
      );
    return { id: e.id, shared, chains };
  }
  const svc = svcChain(e);
  add(
    'nat BATON-SERVICES',
    `-d ${e.clusterIP}/32 ${match(e.port)} ${comment('cluster IP')} -j ${svc}`,
  );
  for (const ip of e.externalIPs) {
    add(
      'nat BATON-SERVICES',
      `-d ${ip}/32 ${match(e.port)} ${comment('external IP')} -j BATON-MARK-MASQ`,
    );
    add('nat BATON-SERVICES', `-d ${ip}/32 ${match(e.port)} ${comment('external IP')} -j ${svc}`);
  }
  if (e.nodePort !== undefined) {
    // Replies to a node port must come back through this node.
    add('nat BATON-NODEPORTS', `${match(e.nodePort)} ${comment('node port')} -j BATON-MARK-MASQ`);
    add('nat BATON-NODEPORTS', `${match(e.nodePort)} ${comment('node port')} -j ${svc}`);
  }
  const svcRules: string[] = [];
  if (clusterCIDR)
    // Off the pod network (the host itself, another machine): replies must come back through us.
    svcRules.push(
      `-A ${svc} ! -s ${clusterCIDR} -d ${e.clusterIP}/32 ${match(e.port)} ${comment('cluster IP')} -j BATON-MARK-MASQ`,
    );
  const seps = e.endpoints.map((ep) => sepChain(e, ep));
  if (e.affinitySeconds !== undefined)
    for (const sep of seps)
      svcRules.push(
        `-A ${svc} ${comment('affinity')} -m recent --name ${sep} --mask 255.255.255.255 --rsource --rcheck --seconds ${e.affinitySeconds} --reap -j ${sep}`,
      );
  const n = seps.length;
  seps.forEach((sep, i) => {
    const left = n - i;
    svcRules.push(
      left > 1
        ? `-A ${svc} ${comment(`endpoint ${i + 1}/${n}`)} -m statistic --mode random --probability ${(1 / left).toFixed(10)} -j ${sep}`
        : `-A ${svc} ${comment(`endpoint ${i + 1}/${n}`)} -j ${sep}`,
    );
  });
  chains.set(svc, svcRules);
  e.endpoints.forEach((ep, i) => {
    const sep = seps[i];
    const recent =
      e.affinitySeconds !== undefined
        ? ` -m recent --name ${sep} --mask 255.255.255.255 --rsource --set`
        : '';
    chains.set(sep, [
      // A pod reaching itself through the VIP (hairpin): the reply must come back through us.
      `-A ${sep} -s ${ep.ip}/32 ${comment('hairpin')} -j BATON-MARK-MASQ`,
      `-A ${sep} -p ${proto}${recent} -m ${proto} ${comment(`endpoint ${ep.ip}:${ep.port}`)} -j DNAT --to-destination ${ep.ip}:${ep.port}`,
    ]);
  });
  return { id: e.id, shared, chains };
}

/** iptables-restore input (for --noflush), table by table. */
export class RestoreScript {
  private readonly tables = new Map<
    string,
    { declare: string[]; lines: string[]; drop: string[] }
  >();

  private table(t: string) {
    let x = this.tables.get(t);
    if (!x) this.tables.set(t, (x = { declare: [], lines: [], drop: [] }));
    return x;
  }

  /** Declares (creating, or emptying) a chain. */
  declare(table: string, chain: string): void {
    this.table(table).declare.push(`:${chain} - [0:0]`);
  }

  /** A rule line ("-A …", "-D …", "-I …"), in order. */
  line(table: string, line: string): void {
    this.table(table).lines.push(line);
  }

  /** Deletes a chain (after every line, so nothing refers to it any more). */
  drop(table: string, chain: string): void {
    this.table(table).drop.push(`-X ${chain}`);
  }

  /** Lines of rules (not declarations): how much the kernel is told. */
  get size(): number {
    let n = 0;
    for (const t of this.tables.values()) n += t.lines.length + t.drop.length;
    return n;
  }

  get empty(): boolean {
    for (const t of this.tables.values())
      if (t.declare.length || t.lines.length || t.drop.length) return false;
    return true;
  }

  text(): string {
    const out: string[] = [];
    // filter first: its REJECT rules never refer to nat chains, and nat is what clients wait for.
    for (const name of ['filter', 'nat']) {
      const t = this.tables.get(name);
      if (!t || (!t.declare.length && !t.lines.length && !t.drop.length)) continue;
      out.push(`*${name}`, ...t.declare, ...t.lines, ...t.drop, 'COMMIT');
    }
    return out.length ? `${out.join('\n')}\n` : '';
  }
}

const splitWhere = (where: string): [string, string] => where.split(' ') as [string, string];

/** Everything, from nothing: base chains, every entry, stale chains dropped, missing jumps added. */
export function fullScript(
  entries: EntryRules[],
  clusterCIDR: string | undefined,
  existing: { chains: Map<string, Set<string>>; jumps: Set<string>; dockerUser?: boolean },
): RestoreScript {
  const s = new RestoreScript();
  const wanted = new Map<string, Set<string>>([
    ['nat', new Set(BASE_CHAINS.nat)],
    ['filter', new Set(BASE_CHAINS.filter)],
  ]);
  for (const [t, chains] of Object.entries(BASE_CHAINS)) for (const c of chains) s.declare(t, c);
  const base = baseRules(clusterCIDR);
  for (const l of base.nat) s.line('nat', l);
  for (const l of base.filter) s.line('filter', l);
  for (const e of entries) {
    for (const [chain, rules] of e.chains) {
      wanted.get('nat')!.add(chain);
      s.declare('nat', chain);
      for (const r of rules) s.line('nat', r);
    }
  }
  for (const e of entries)
    for (const [where, rules] of e.shared) {
      const [t, chain] = splitWhere(where);
      for (const r of rules) s.line(t, `-A ${chain} ${r}`);
    }
  for (const [t, have] of existing.chains)
    for (const c of have)
      if (!wanted.get(t)?.has(c)) {
        // Emptied first: it may refer to chains dropped in the same script.
        s.declare(t, c);
        s.drop(t, c);
      }
  // Jumps as they should be; any other rule jumping to our chains (an older layout) goes.
  const wantedJumps = existing.dockerUser ? [...JUMPS, DOCKER_USER_JUMP] : JUMPS;
  const jumps = new Set(wantedJumps.map(([t, c, r]) => `${t} ${c} ${r}`));
  for (const j of existing.jumps)
    if (!jumps.has(j)) {
      const [t, chain, ...rule] = j.split(' ');
      s.line(t, `-D ${chain} ${rule.join(' ')}`);
    }
  for (const [t, chain, rule] of wantedJumps)
    if (!existing.jumps.has(`${t} ${chain} ${rule}`)) s.line(t, `-I ${chain} 1 ${rule}`);
  return s;
}

/** Only what changed between `before` and `after` (the rules of the same service ports). */
export function deltaScript(before: EntryRules[], after: EntryRules[]): RestoreScript {
  const s = new RestoreScript();
  const sharedOf = (list: EntryRules[]) => {
    const m = new Map<string, Set<string>>();
    for (const e of list)
      for (const [where, rules] of e.shared) {
        const set = m.get(where) ?? new Set<string>();
        for (const r of rules) set.add(r);
        m.set(where, set);
      }
    return m;
  };
  const chainsOf = (list: EntryRules[]) => {
    const m = new Map<string, string[]>();
    for (const e of list) for (const [c, rules] of e.chains) m.set(c, rules);
    return m;
  };
  const oldShared = sharedOf(before);
  const newShared = sharedOf(after);
  const oldChains = chainsOf(before);
  const newChains = chainsOf(after);
  // New or changed chains first, so the shared rules added below can jump to them.
  for (const [c, rules] of newChains) {
    const old = oldChains.get(c);
    if (old && old.join('\n') === rules.join('\n')) continue;
    s.declare('nat', c);
    for (const r of rules) s.line('nat', r);
  }
  for (const where of new Set([...oldShared.keys(), ...newShared.keys()])) {
    const [t, chain] = splitWhere(where);
    const was = oldShared.get(where) ?? new Set<string>();
    const now = newShared.get(where) ?? new Set<string>();
    for (const r of was) if (!now.has(r)) s.line(t, `-D ${chain} ${r}`);
    for (const r of now) if (!was.has(r)) s.line(t, `-A ${chain} ${r}`);
  }
  for (const c of oldChains.keys())
    if (!newChains.has(c)) {
      s.declare('nat', c);
      s.drop('nat', c);
    }
  return s;
}

/** Removes everything Baton added: the jumps, then its chains. */
export function cleanupScript(existing: {
  chains: Map<string, Set<string>>;
  jumps: Set<string>;
}): RestoreScript {
  const s = new RestoreScript();
  for (const j of existing.jumps) {
    const [t, chain, ...rule] = j.split(' ');
    s.line(t, `-D ${chain} ${rule.join(' ')}`);
  }
  for (const [t, chains] of existing.chains)
    for (const c of chains) {
      s.declare(t, c);
      s.drop(t, c);
    }
  return s;
}

/**
 * What of Baton's is in the kernel now, from `iptables-save` output: its
 * chains by table, and every rule of another chain that jumps to one of
 * them ("table CHAIN rule").
 */
export function parseSave(text: string): {
  chains: Map<string, Set<string>>;
  jumps: Set<string>;
  dockerUser: boolean;
} {
  const chains = new Map<string, Set<string>>();
  const jumps = new Set<string>();
  let dockerUser = false;
  let table = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('*')) table = line.slice(1);
    else if (table === 'filter' && line.startsWith(':DOCKER-USER ')) dockerUser = true;
    else if (line.startsWith(':BATON-')) {
      const set = chains.get(table) ?? new Set<string>();
      set.add(line.slice(1).split(' ')[0]);
      chains.set(table, set);
    } else if (line.startsWith('-A ') && / -j BATON-[A-Z0-9-]+$/.test(line)) {
      const [, chain, ...rule] = line.split(' ');
      if (!chain.startsWith('BATON-')) jumps.add(`${table} ${chain} ${rule.join(' ')}`);
    }
  }
  return { chains, jumps, dockerUser };
}
