/**
 * `baton node`: the node daemon. Registers this host as a Node, keeps a
 * session with the leader, runs the pods assigned to it (on Docker, or as
 * host processes with the exec runtime), and serves logs and exec to the
 * masters.
 */
import { Command } from 'commander';
import { hostname, homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { bool, ConfigError, daemonConfigFile, list, loadConfig, num } from '../../common/config';
import { createLogger } from '../../common/log';
import { INFRA, type Runtime } from '../../node/runtime';
import type { Logger } from 'pino';

/** The daemon's code, loaded when this command runs: every `baton` command reads this file. */
function nodeModules() {
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    ...(require('../../node/agent') as typeof import('../../node/agent')),
    ...(require('../../node/docker-runtime') as typeof import('../../node/docker-runtime')),
    ...(require('../../node/exec-runtime') as typeof import('../../node/exec-runtime')),
    ...(require('../../node/node-server') as typeof import('../../node/node-server')),
    ...(require('../../proxy/node-proxy') as typeof import('../../proxy/node-proxy')),
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

export const nodeConfigSchema = z.object({
  name: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a lowercase DNS name')
    .default(hostname().toLowerCase()),
  masters: list().pipe(
    z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port')).min(1, 'at least one master'),
  ),
  labels: list().default([]),
  taints: list().default([]),
  logLevel: z.string().default('info'),
  syncPeriodMs: num().pipe(z.number().int().min(100)).default(1000),
  runtime: z.enum(['auto', 'docker', 'exec']).default('auto'),
  dataDir: z.string().optional(),
  listen: z
    .string()
    .regex(/^[^\s]*:\d+$/, 'expected host:port')
    .default('0.0.0.0:10250'),
  address: z
    .string()
    .regex(/^\d{1,3}(\.\d{1,3}){3}$/, 'expected an IPv4 address')
    .optional(),
  proxyMode: z.enum(['auto', 'iptables', 'userspace', 'none']).default('auto'),
  clusterDomain: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a lowercase DNS name')
    .default('cluster.local'),
  dnsListen: list()
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port')))
    .default([]),
  keepProxyRules: bool().default(false),
  sharedHost: bool().default(false),
  removePodsOnExit: bool().default(false),
  token: z.string().optional(),
  insecure: bool().default(false),
  pkiDir: z.string().optional(),
});

/** "k=v" → { k: v }, naming the bad entry. */
export function parseLabels(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const m = /^([^=\s]+)=([^=\s]*)$/.exec(it);
    if (!m) throw new ConfigError(`setting "labels": "${it}" is not key=value`);
    out[m[1]] = m[2];
  }
  return out;
}

/** "key[=value]:Effect" → a taint, naming the bad entry. */
export function parseTaints(items: string[]): { key: string; value?: string; effect: string }[] {
  return items.map((it) => {
    const m = /^([^=:\s]+)(?:=([^:\s]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$/.exec(it);
    if (!m)
      throw new ConfigError(
        `setting "taints": "${it}" is not key[=value]:Effect (NoSchedule, PreferNoSchedule or NoExecute)`,
      );
    return { key: m[1], ...(m[2] !== undefined ? { value: m[2] } : {}), effect: m[3] };
  });
}

export function nodeCommand(): Command {
  return new Command('node')
    .description('run the node daemon: register this host and run its pods')
    .option('--config <file>', 'settings in YAML (flags and BATON_* variables take precedence)')
    .option('--name <name>', 'node name (default: the host name)')
    .option('--masters <list>', 'master addresses, host:port[,host:port...]')
    .option(
      '--join <list>',
      'the same as --masters (with --token: baton node --join ADDR --token T)',
    )
    .option('--labels <list>', 'node labels, k=v[,k=v...] (e.g. pool=gpu)')
    .option('--taints <list>', 'taints, key[=value]:Effect[,...]')
    .option(
      '--runtime <name>',
      'docker, exec (host processes) or auto: docker when a daemon answers (default auto)',
    )
    .option(
      '--data-dir <dir>',
      "pods' volumes and the exec runtime's state (default ~/.baton/nodes/NAME)",
    )
    .option('--listen <host:port>', "this node's API for logs and exec (default 0.0.0.0:10250)")
    .option('--address <ip>', 'the address masters and other nodes reach this node at')
    .option('--log-level <level>', 'trace, debug, info, warn or error')
    .option('--sync-period-ms <ms>', 'check every pod at least this often (default 1000)')
    .option(
      '--proxy-mode <mode>',
      'service proxy: iptables, userspace (no root needed), none, or auto: iptables when root (default auto)',
    )
    .option('--cluster-domain <domain>', "the cluster's DNS domain (default cluster.local)")
    .option(
      '--dns-listen <list>',
      'also serve cluster DNS here, host:port[,...] (pods always get it on their gateway)',
    )
    .option(
      '--keep-proxy-rules',
      'leave service rules and pod routes in place on exit (for an upgrade in place)',
    )
    .option(
      '--shared-host',
      'another node daemon on this host programs the service rules: serve DNS only (baton up)',
    )
    .option(
      '--token <token>',
      'a node join token: enrolls this node on its first start (certificate kept in --pki-dir)',
    )
    .option('--insecure', 'plaintext to --insecure masters: throwaway test clusters only')
    .option('--pki-dir <dir>', "this node's certificate and key (default <data-dir>/pki)")
    .option(
      '--remove-pods-on-exit',
      "stop and remove this node's pods when the daemon stops (baton up; by default pods outlive the daemon)",
    )
    .action(async (given: Record<string, string | undefined>, cmd: Command) => {
      const { join: joinAt, ...flags } = given;
      if (joinAt !== undefined) {
        if (flags.masters !== undefined)
          throw new ConfigError('--join and --masters both name the masters: give one of them');
        flags.masters = joinAt;
      }
      const { value: cfg } = loadConfig(nodeConfigSchema, {
        flags,
        file: daemonConfigFile(flags, cmd),
      });
      const { hostAddress, NodeAgent, NodeProxy, DockerRuntime, ExecRuntime, startNodeServer } =
        nodeModules();
      const labels = parseLabels(cfg.labels);
      const taints = parseTaints(cfg.taints);
      const log = createLogger({ level: cfg.logLevel }).child({ node: cfg.name });
      const dataDir = cfg.dataDir ?? join(homedir(), '.baton', 'nodes', cfg.name);
      const address = cfg.address ?? hostAddress();
      let runtime: Runtime;
      const docker = new DockerRuntime(cfg.name);
      if (cfg.runtime === 'exec')
        runtime = new ExecRuntime(cfg.name, join(dataDir, 'exec'), { hostIP: address });
      else if (await docker.available()) runtime = docker;
      else if (cfg.runtime === 'docker')
        throw new ConfigError(
          'setting "runtime": docker, but no Docker daemon answers on this host (start dockerd, set DOCKER_HOST, or use --runtime exec)',
        );
      else {
        process.stderr.write(
          'baton node: no Docker daemon answers; using the exec runtime (pods run as host processes, without images or isolation)\n',
        );
        runtime = new ExecRuntime(cfg.name, join(dataDir, 'exec'), { hostIP: address });
      }
      const { prepareNodeSecurity } =
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        require('../node-security') as typeof import('../node-security');
      const { CertRenewer } =
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        require('../../ca/renewal') as typeof import('../../ca/renewal');
      const { tls, pkiDir } = await prepareNodeSecurity(
        { ...cfg, dataDir, masters: cfg.masters },
        log,
      );
      const server = await startNodeServer({ runtime, listen: cfg.listen, log, tls });
      // The session is made by the agent, the proxy before it: its network is read late.
      let network = () => ({ serviceCIDR: '', clusterCIDR: '' });
      const proxy =
        cfg.proxyMode === 'none'
          ? undefined
          : new NodeProxy({
              nodeName: cfg.name,
              mode: cfg.proxyMode,
              clusterDomain: cfg.clusterDomain,
              network: () => network(),
              // Pods on Docker have their own addresses, reached across nodes through routes.
              routes: runtime.name === 'docker' && process.getuid?.() === 0,
              dnsListen: cfg.dnsListen.map((a) => {
                const i = a.lastIndexOf(':');
                return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
              }),
              cleanupOnStop: !cfg.keepProxyRules && !cfg.sharedHost,
              sharedHost: cfg.sharedHost,
              log,
            });
      await proxy?.start();
      const agent = new NodeAgent({
        nodeName: cfg.name,
        masters: cfg.masters,
        runtime,
        dataDir,
        address,
        apiPort: server.port,
        labels,
        taints,
        log,
        syncPeriodMs: cfg.syncPeriodMs,
        proxy,
        clusterDomain: cfg.clusterDomain,
        credentials: tls?.channelCredentials(['master']),
      });
      network = () => agent.session.network;
      // Renewed by a master before it expires; pods and the open session are untouched.
      const renewer =
        tls &&
        new CertRenewer({
          tls,
          pkiDir,
          log: log.child({ component: 'pki' }),
          renew: async (publicKeyPem) =>
            (await agent.client.renewCertificate(publicKeyPem)).certPem,
        });
      renewer?.start();
      const abort = new AbortController();
      const stop = (sig: string) => {
        log.info({ signal: sig }, 'stopping; containers keep running');
        abort.abort();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      process.stdout.write(
        `baton node ${cfg.name} (${runtime.name} runtime, ${proxy ? `${proxy.mode} proxy` : 'no proxy'}, api on port ${server.port}) connecting to ${cfg.masters.join(',')}\n`,
      );
      await agent.run(abort.signal);
      renewer?.stop();
      if (cfg.removePodsOnExit) await step(log, 'removing the pods', () => removeAll(runtime, log));
      await step(log, 'stopping the service proxy', async () => proxy?.stop());
      await step(log, 'closing the node API', () => server.close());
      log.info('stopped');
      // Everything is closed: the process ends when its event loop is empty. A
      // handle left open (a stop that hung once in CI after the last step)
      // must not keep a stopped daemon alive: name what is left, and exit.
      setTimeout(() => {
        log.warn(
          { open: process.getActiveResourcesInfo().filter((r) => r !== 'Timeout') },
          'still running 2 s after stopping: exiting anyway',
        );
        process.exit(process.exitCode ?? 0);
      }, 2000).unref();
    });
}

/**
 * One step of the shutdown, said in the log when it takes long: a stop that
 * hangs (seen once in CI, not reproduced) then names the step it hangs in.
 */
async function step(log: Logger, what: string, fn: () => Promise<unknown>): Promise<void> {
  const slow = setInterval(() => log.warn({ step: what }, 'shutdown: still waiting'), 5000);
  try {
    await fn();
  } finally {
    clearInterval(slow);
  }
}

/** Stops and removes every container of this node (sandboxes last), each with a short grace. */
async function removeAll(runtime: Runtime, log: Logger): Promise<void> {
  const all = await runtime.list().catch(() => []);
  const byKind = [all.filter((c) => c.name !== INFRA), all.filter((c) => c.name === INFRA)];
  for (const group of byKind)
    await Promise.all(
      group.map((c) =>
        runtime
          .remove(c.id, 5)
          .catch((err: Error) => log.warn({ container: c.id, err: err.message }, 'not removed')),
      ),
    );
  log.info({ containers: all.length }, 'removed the pods of this node');
  await runtime
    .removeNodeResources?.()
    .catch((err: Error) => log.warn({ err: err.message }, 'pod network not removed'));
}
