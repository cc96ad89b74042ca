import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { z } from 'zod';
import { ConfigError, list, loadConfig, num } from '../common/config';
import { TlsIdentity } from '../ca/tls';
import { BatonClient } from '../client/cluster-client';

/**
 * Where the CLI finds the masters: `--server a:1,b:2`, else $BATON_SERVER,
 * else the client config file ($BATON_CONFIG, default ~/.baton/config, a
 * YAML mapping like `server: [127.0.0.1:7001, 127.0.0.1:7002]` and
 * optionally `namespace: team-a`), which `baton up` and `baton login` write.
 * A secure cluster's config also holds the cluster CA and the user's
 * certificate and key (PEM), as a kubeconfig's `*-data` fields do.
 */
export const clientConfigSchema = z.object({
  server: list().default([]),
  namespace: z.string().default('default'),
  timeoutMs: num().pipe(z.number().int().min(1)).default(15_000),
  ca: z.string().optional(),
  cert: z.string().optional(),
  key: z.string().optional(),
});

export type ClientSettings = z.infer<typeof clientConfigSchema>;

/** A client config file's text; with certificates it is written 0600 by its callers. */
export function clientConfigText(
  s: { server: string[]; ca?: string; cert?: string; key?: string },
  comment?: string,
): string {
  const body = stringify(
    { server: s.server, ca: s.ca, cert: s.cert, key: s.key },
    { lineWidth: 0 },
  );
  return (comment ? `# ${comment}\n` : '') + body;
}

/** The channel credentials a config asks for: mutual TLS with its certificate, or plaintext. */
export function clientCredentials(s: ClientSettings, file: string) {
  const given = [s.ca, s.cert, s.key].filter((x) => x !== undefined).length;
  if (given === 0) return undefined;
  if (given !== 3)
    throw new ConfigError(
      `${file}: "ca", "cert" and "key" go together (a secure cluster needs all three)`,
    );
  try {
    return new TlsIdentity(s.ca!, s.cert!, s.key!).channelCredentials(['master']);
  } catch (err) {
    throw new ConfigError(
      `${file}: the client certificate cannot be used: ${(err as Error).message} (get a new one with "baton login")`,
    );
  }
}

export function defaultConfigPath(): string {
  return process.env.BATON_CONFIG ?? join(homedir(), '.baton', 'config');
}

export interface GlobalFlags {
  server?: string;
  config?: string;
  namespace?: string;
}

export function clientSettings(flags: GlobalFlags): ClientSettings {
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
  const credentials = clientCredentials(s, flags.config ?? defaultConfigPath());
  return {
    client: new BatonClient(s.server, { timeoutMs: s.timeoutMs, credentials }),
    namespace: s.namespace,
  };
}
