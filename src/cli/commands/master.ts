import { Command } from 'commander';
import { z } from 'zod';
import { ConfigError, daemonConfigFile, list, loadConfig, num } from '../../common/config';
import { createLogger } from '../../common/log';

/** The masters' code, loaded when this command runs: every `baton` command (the node daemon too) reads this file. */
function masterModules() {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    ...(require('../../master/master') as typeof import('../../master/master')),
    ...(require('../../master/controllers/node-ipam') as typeof import('../../master/controllers/node-ipam')),
    ...(require('../../master/service-alloc') as typeof import('../../master/service-alloc')),
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

export const masterConfigSchema = z.object({
  id: num().pipe(z.number().int().min(1, 'must be a positive integer')),
  listen: z.string().regex(/^[^\s]+:\d+$/, 'expected host:port'),
  advertise: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'expected host:port')
    .optional(),
  peers: list().default([]),
  dataDir: z.string().min(1),
  join: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'expected host:port')
    .optional(),
  logLevel: z.string().default('info'),
  tickMs: num().pipe(z.number().int().min(1)).default(50),
  // 1 s before a follower campaigns (etcd's default) while heartbeats stay at
  // 50 ms: at 500 ms a loaded two-core machine (GC pauses, a busy event loop)
  // saw the leader step down for want of a quorum in the scheduler benchmark.
  electionTicks: num().pipe(z.number().int().min(2)).default(20),
  admission: z.enum(['leader', 'local']).default('leader'),
  snapshotEntries: num().pipe(z.number().int().min(100)).default(10_000),
  nodeGracePeriodMs: num().pipe(z.number().int().min(100)).default(10_000),
  podEvictionDelayMs: num().pipe(z.number().int().min(0)).default(5_000),
  heartbeatPeriodMs: num().pipe(z.number().int().min(50)).default(1_000),
  clusterCidr: z
    .string()
    .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'expected an IPv4 CIDR such as 10.244.0.0/16')
    .default('10.244.0.0/16'),
  nodeCidrMaskSize: num().pipe(z.number().int().min(8).max(30)).default(24),
  serviceCidr: z
    .string()
    .regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'expected an IPv4 CIDR such as 10.96.0.0/12')
    .default('10.96.0.0/12'),
  serviceNodePortRange: z
    .string()
    .regex(/^\d+-\d+$/, 'expected min-max such as 30000-32767')
    .default('30000-32767'),
});

/** "1=10.0.0.1:7000,2=10.0.0.2:7000" → { 1: ..., 2: ... }, with the offending part named on error. */
export function parsePeerList(parts: string[]): Record<number, string> {
  const out: Record<number, string> = {};
  for (const part of parts) {
    const m = /^(\d+)=([^\s=]+:\d+)$/.exec(part);
    if (!m) throw new ConfigError(`setting "peers": expected id=host:port, got "${part}"`);
    out[Number(m[1])] = m[2];
  }
  return out;
}

export function masterCommand(): Command {
  return new Command('master')
    .description('run a master: a Raft member holding the cluster state and serving the API')
    .option('--config <file>', 'YAML file with any of the settings below (flags win over it)')
    .option('--id <n>', "this master's Raft id (unique, positive)")
    .option('--listen <host:port>', 'address for peers and clients')
    .option(
      '--advertise <host:port>',
      'address others use to reach this master (default: --listen)',
    )
    .option(
      '--peers <list>',
      'founding members, id=host:port,... (including this one) for a new cluster',
    )
    .option('--data-dir <dir>', 'where the Raft log and snapshots live')
    .option(
      '--join <host:port>',
      'join an existing cluster through this master (with an empty data dir)',
    )
    .option('--log-level <level>', 'trace, debug, info, warn or error')
    .option('--tick-ms <ms>', 'Raft tick: a heartbeat every tick (default 50)')
    .option(
      '--election-ticks <n>',
      'ticks without a leader before an election (default 20: 1 s, randomized up to 2 s)',
    )
    .option(
      '--admission <where>',
      'leader: followers forward writes to the leader; local: admit here, Raft forwards the proposal',
    )
    .option('--snapshot-entries <n>', 'snapshot the state every this many entries')
    .option(
      '--node-grace-period-ms <ms>',
      'a node silent this long becomes NotReady (default 10000)',
    )
    .option(
      '--pod-eviction-delay-ms <ms>',
      'pods on a NotReady node are replaced elsewhere after this long (default 5000)',
    )
    .option('--heartbeat-period-ms <ms>', 'nodes send a heartbeat this often (default 1000)')
    .option('--cluster-cidr <cidr>', 'pod IPs come from this range (default 10.244.0.0/16)')
    .option('--node-cidr-mask-size <n>', "each node's pod CIDR prefix length (default 24)")
    .option(
      '--service-cidr <cidr>',
      'Service ClusterIPs come from this range (default 10.96.0.0/12; the same on every master)',
    )
    .option(
      '--service-node-port-range <min-max>',
      'NodePorts come from this range (default 30000-32767)',
    )
    .action(async (flags: Record<string, string | undefined>, cmd: Command) => {
      const { value: cfg } = loadConfig(masterConfigSchema, {
        flags,
        file: daemonConfigFile(flags, cmd),
      });
      const peers = parsePeerList(cfg.peers);
      const { CidrBlocks, DEFAULT_SERVICE_NETWORK, parsePortRange, ServiceAllocator, startMaster } =
        masterModules();
      try {
        new CidrBlocks(cfg.clusterCidr, cfg.nodeCidrMaskSize);
      } catch (err) {
        throw new ConfigError(`setting "cluster-cidr": ${(err as Error).message}`);
      }
      const services = {
        serviceCIDR: cfg.serviceCidr,
        nodePortRange: cfg.serviceNodePortRange,
      };
      try {
        new ServiceAllocator({ ...DEFAULT_SERVICE_NETWORK, serviceCIDR: services.serviceCIDR });
      } catch (err) {
        throw new ConfigError(`setting "service-cidr": ${(err as Error).message}`);
      }
      try {
        parsePortRange(services.nodePortRange);
      } catch (err) {
        throw new ConfigError(`setting "service-node-port-range": ${(err as Error).message}`);
      }
      const self = cfg.advertise ?? cfg.listen;
      if (!cfg.join) {
        if (Object.keys(peers).length === 0) peers[cfg.id] = self;
        if (!peers[cfg.id])
          throw new ConfigError(
            `setting "peers": must include this master (id ${cfg.id}), or use --join`,
          );
      }
      const log = createLogger({ level: cfg.logLevel }).child({
        component: 'master',
        master: cfg.id,
      });
      const m = await startMaster({
        id: cfg.id,
        listen: cfg.listen,
        advertise: cfg.advertise,
        peers,
        dataDir: cfg.dataDir,
        bootstrap: !cfg.join,
        join: cfg.join,
        logger: log,
        admission: cfg.admission,
        heartbeatPeriodMs: cfg.heartbeatPeriodMs,
        services,
        loops: {
          nodeGracePeriodMs: cfg.nodeGracePeriodMs,
          podEvictionDelayMs: cfg.podEvictionDelayMs,
          clusterCIDR: cfg.clusterCidr,
          nodeCIDRMaskSize: cfg.nodeCidrMaskSize,
        },
        raft: {
          tickMs: cfg.tickMs,
          electionTicks: cfg.electionTicks,
          snapshotEntries: cfg.snapshotEntries,
        },
      });
      process.stdout.write(
        `baton master ${cfg.id} listening on ${cfg.listen.replace(/:\d+$/, '')}:${m.port}\n`,
      );
      await new Promise<void>((resolve) => {
        const shutdown = (sig: string) => {
          log.info({ signal: sig }, 'shutting down');
          // Open peer streams can hold a graceful stop; do not hang on them.
          setTimeout(() => process.exit(0), 3000).unref();
          m.stop().then(resolve, resolve);
        };
        process.once('SIGTERM', () => shutdown('SIGTERM'));
        process.once('SIGINT', () => shutdown('SIGINT'));
      });
    });
}
