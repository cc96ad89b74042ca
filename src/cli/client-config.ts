import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, list, loadConfig, num } from '../common/config';
import { BatonClient } from '../client/cluster-client';

/**
 * Where the CLI finds the masters: `--server a:1,b:2`, else $BATON_SERVER,
 * else the client config file ($BATON_CONFIG, default ~/.baton/config, a
 * YAML mapping like `server: [127.0.0.1:7001, 127.0.0.1:7002]` and
 * optionally `namespace: team-a`), which `baton up` writes.
 */
export const clientConfigSchema = z.object({
  server: list().default([]),
  namespace: z.string().default('default'),
  timeoutMs: num().pipe(z.number().int().min(1)).default(15_000),
});

export function defaultConfigPath(): string {
  return process.env.BATON_CONFIG ?? join(homedir(), '.baton', 'config');
}

export interface GlobalFlags {
  server?: string;
  config?: string;
  namespace?: string;
}

export function clientSettings(flags: GlobalFlags): z.infer<typeof clientConfigSchema> {
  const file = flags.config ?? defaultConfigPath();
  const { value } = loadConfig(clientConfigSchema, {
    flags: { server: flags.server, namespace: flags.namespace },
    file: flags.config !== undefined || existsSync(file) ? file : undefined,
  });
  if (value.server.length === 0)
    throw new ConfigError(
      `no master address: pass --server host:port[,host:port...], set BATON_SERVER, or start a local cluster with "baton up" (which writes ${file})`,
    );
  return value;
}

export function connect(flags: GlobalFlags): { client: BatonClient; namespace: string } {
  const s = clientSettings(flags);
  return { client: new BatonClient(s.server, { timeoutMs: s.timeoutMs }), namespace: s.namespace };
}
