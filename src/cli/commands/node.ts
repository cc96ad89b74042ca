/**
 * `baton node`: the node daemon. Registers this host as a Node, keeps a
 * session with the leader, and runs the pods assigned to it on Docker.
 */
import { Command } from 'commander';
import { hostname } from 'node:os';
import { z } from 'zod';
import { ConfigError, list, loadConfig, num } from '../../common/config';
import { createLogger } from '../../common/log';
import { NodeAgent } from '../../node/agent';
import { DockerRuntime } from '../../node/docker-runtime';

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
    .description('run the node daemon: register this host and run its pods on Docker')
    .option('--config <file>', 'settings in YAML (flags and BATON_* variables take precedence)')
    .option('--name <name>', 'node name (default: the host name)')
    .option('--masters <list>', 'master addresses, host:port[,host:port...]')
    .option('--labels <list>', 'node labels, k=v[,k=v...] (e.g. pool=gpu)')
    .option('--taints <list>', 'taints, key[=value]:Effect[,...]')
    .option('--log-level <level>', 'trace, debug, info, warn or error')
    .option('--sync-period-ms <ms>', 'check every pod at least this often (default 1000)')
    .action(async (flags: Record<string, string | undefined>) => {
      const { value: cfg } = loadConfig(nodeConfigSchema, { flags, file: flags.config });
      const labels = parseLabels(cfg.labels);
      const taints = parseTaints(cfg.taints);
      const log = createLogger({ level: cfg.logLevel }).child({ node: cfg.name });
      const runtime = new DockerRuntime(cfg.name);
      if (!(await runtime.available()))
        throw new ConfigError(
          'no Docker daemon answers on this host (start dockerd, or set DOCKER_HOST)',
        );
      const agent = new NodeAgent({
        nodeName: cfg.name,
        masters: cfg.masters,
        runtime,
        labels,
        taints,
        log,
        syncPeriodMs: cfg.syncPeriodMs,
      });
      const abort = new AbortController();
      const stop = (sig: string) => {
        log.info({ signal: sig }, 'stopping; containers keep running');
        abort.abort();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      process.stdout.write(
        `baton node ${cfg.name} (docker) connecting to ${cfg.masters.join(',')}\n`,
      );
      await agent.run(abort.signal);
    });
}
