import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { bool, ConfigError, daemonConfigFile, list, loadConfig, num } from '../../common/config';
import { createLogger } from '../../common/log';
import { CliError, ReportedError } from '../output';

/** The masters' code, loaded when this command runs: every `baton` command (the node daemon too) reads this file. */
function masterModules() {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    ...(require('../../master/master') as typeof import('../../master/master')),
    ...(require('../../master/controllers/node-ipam') as typeof import('../../master/controllers/node-ipam')),
    ...(require('../../master/service-alloc') as typeof import('../../master/service-alloc')),
    ...(require('../../master/store/key-ring') as typeof import('../../master/store/key-ring')),
    ...(require('../../raft/types') as typeof import('../../raft/types')),
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/** The exit code of a master that learned it was removed from the cluster (not restarted by systemd). */
export const EXIT_REMOVED = 3;

export const masterConfigSchema = z.object({
  id: num().pipe(z.number().int().min(1, 'must be a positive integer')),
  listen: z.string().regex(/^[^\s]+:\d+$/, 'expected host:port'),
  advertise: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'expected host:port')
    .optional(),
  peers: list().default([]),
  dataDir: z.string().min(1),
  secretsKeyFile: z.string().min(1).optional(),
  join: z
    .string()
    .regex(/^[^\s:]+:\d+$/, 'expected host:port')
    .optional(),
  init: bool().default(false),
  token: z.string().optional(),
  insecure: bool().default(false),
  pkiDir: z.string().optional(),
  certTtl: z.string().default('90d'),
  logLevel: z.string().default('info'),
  tickMs: num().pipe(z.number().int().min(1)).default(50),
  // 1 s before a follower campaigns (etcd's default) while heartbeats stay at
  // 50 ms: at 500 ms a loaded two-core machine (GC pauses, a busy event loop)
  // saw the leader step down for want of a quorum in the scheduler benchmark.
  electionTicks: num().pipe(z.number().int().min(2)).default(20),
  admission: z.enum(['leader', 'local']).default('leader'),
  snapshotEntries: num().pipe(z.number().int().min(100)).default(10_000),
  nodeGracePeriodMs: num().pipe(z.number().int().min(100)).default(6_000),
  podEvictionDelayMs: num().pipe(z.number().int().min(0)).default(2_000),
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
      '--secrets-key-file <file>',
      'keys that encrypt Secrets at rest, the same on every master (default: <data-dir>/pki/secrets.key, created if absent)',
    )
    .option(
      '--join <host:port>',
      'join an existing cluster through this master (with an empty data dir)',
    )
    .option(
      '--init',
      'start a new secure cluster: make its CA, print join tokens, write <data-dir>/admin.conf',
    )
    .option('--token <token>', 'a master join token (with --join, on the first start)')
    .option('--insecure', 'plaintext and no authentication: throwaway test clusters only')
    .option('--pki-dir <dir>', 'certificates and keys (default <data-dir>/pki)')
    .option(
      '--cert-ttl <duration>',
      'lifetime of the certificates this master issues, renewed at 2/3 (default 90d)',
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
      const {
        ApplyHaltError,
        CidrBlocks,
        DEFAULT_SERVICE_NETWORK,
        KeyRingError,
        masterKeyRing,
        parsePortRange,
        ServiceAllocator,
        startMaster,
      } = masterModules();
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
      const { prepareMasterSecurity } =
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        require('../master-security') as typeof import('../master-security');
      const sec = await prepareMasterSecurity({ ...cfg, advertise: self }, log);
      // Every master must hold the same key file: the first (--init) makes it,
      // joining masters receive it, a plaintext test cluster seals nothing
      // unless one is given to all its masters.
      let secretKeys;
      const keyFile = sec.secretsKeyFile;
      if (sec.tls || cfg.secretsKeyFile) {
        if (!existsSync(keyFile) && !sec.afterStart && !cfg.secretsKeyFile)
          throw new ConfigError(
            `setting "secrets-key-file": ${keyFile} is missing; every master needs the same file (copy it from another master, or join with a token, which brings it)`,
          );
        try {
          secretKeys = masterKeyRing(cfg.dataDir, keyFile);
        } catch (err) {
          if (!(err instanceof KeyRingError)) throw err;
          throw new ConfigError(`setting "secrets-key-file": ${err.message}`);
        }
      }
      const started = startMaster({
        id: cfg.id,
        listen: cfg.listen,
        advertise: cfg.advertise,
        peers,
        dataDir: cfg.dataDir,
        bootstrap: !cfg.join,
        join: cfg.join,
        logger: log,
        secretKeys,
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
        security: sec.tls && {
          tls: sec.tls,
          pkiDir: sec.pkiDir,
          secretsKeyFile: sec.secretsKeyFile,
          certTtlMs: sec.certTtlMs,
        },
      });
      const m = await started.catch((err: unknown) => {
        // It cannot read its own log or snapshot: one line saying which key, not a stack.
        throw err instanceof ApplyHaltError ? new CliError(err.message) : err;
      });
      m.node.onFailure((err) => {
        // A log or snapshot this master cannot read (a Secret sealed with a
        // key it lacks): serving on would serve a state unlike the others'.
        if (!(err instanceof ApplyHaltError)) return;
        process.stderr.write(`error: ${err.message}\n`);
        process.exit(1);
      });
      process.stdout.write(
        `baton master ${cfg.id} listening on ${cfg.listen.replace(/:\d+$/, '')}:${m.port}${sec.tls ? ' (mutual TLS)' : ' (plaintext, --insecure)'}\n`,
      );
      if (sec.afterStart)
        sec.afterStart(self).catch((err: Error) => {
          log.error({ err: err.message }, 'writing the admin config and join tokens failed');
        });
      const code = await new Promise<number>((resolve) => {
        let stopping = false;
        const shutdown = (why: Record<string, string>, exitCode: number) => {
          if (stopping) return;
          stopping = true;
          log.info(why, 'shutting down');
          // Open peer streams can hold a graceful stop; do not hang on them.
          setTimeout(() => process.exit(exitCode), 3000).unref();
          m.stop().then(
            () => resolve(exitCode),
            () => resolve(exitCode),
          );
        };
        process.once('SIGTERM', () => shutdown({ signal: 'SIGTERM' }, 0));
        process.once('SIGINT', () => shutdown({ signal: 'SIGINT' }, 0));
        // A removed master stops for good: its data cannot serve any
        // cluster again. It waits to have handed leadership over (and for
        // the caller of RemoveMember to get its answer), then exits with
        // EXIT_REMOVED, which the systemd unit does not restart.
        m.node.onRemoved((reason) => {
          process.stderr.write(
            `baton master ${cfg.id}: removed from the cluster (${reason}); exiting. ` +
              `This data directory (${cfg.dataDir}) cannot rejoin; to make this machine a master again, ` +
              `empty it and start with --join and a new --id\n`,
          );
          const started = Date.now();
          const wait = setInterval(() => {
            if (m.node.isLeader() && Date.now() - started < 10_000) return;
            clearInterval(wait);
            setTimeout(() => shutdown({ reason: 'removed from the cluster' }, EXIT_REMOVED), 1000);
          }, 100);
        });
        // A master whose disk fails (ENOSPC, EIO) can promise nothing: exit
        // with the reason rather than linger as a member that never answers.
        void m.failed.then((err) => {
          if (err instanceof ApplyHaltError) return; // said above, with the key it lacks
          process.stderr.write(
            `baton master ${cfg.id}: stopping: cannot write its data directory ${cfg.dataDir}: ${err.message}\n`,
          );
          setTimeout(() => process.exit(1), 3000).unref();
          m.stop().finally(() => process.exit(1));
        });
      });
      // Already said on stderr; main() turns this into the exit code.
      if (code !== 0) throw new ReportedError('removed from the cluster', code);
    });
}
