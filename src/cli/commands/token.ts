import { Command, Option } from 'commander';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { enrollAny } from '../../ca/enroll';
import { Role, ROLES } from '../../ca/pki';
import { TlsIdentity } from '../../ca/tls';
import {
  formatToken,
  newToken,
  parseDuration,
  readRecord,
  revokedSecret,
  SYSTEM_NAMESPACE,
  TOKEN_LABEL,
  TOKEN_TYPE,
  tokenSecret,
} from '../../ca/tokens';
import { BatonClient } from '../../client/cluster-client';
import { ApiObject } from '../../api/types';
import { clientConfigText, clientSettings, defaultConfigPath, GlobalFlags } from '../client-config';
import { CliError, out, withClient } from '../output';
import { renderTable } from '../printers';
import { formatAge } from '../age';

export interface TokenOptions {
  role: Role;
  uses?: number;
  ttlMs?: number;
  description?: string;
}

/** Makes a join token: its record goes through the API, the token itself is printed once and kept nowhere. */
export async function createJoinToken(
  client: BatonClient,
  caCertPem: string,
  opts: TokenOptions,
  now = new Date(),
): Promise<string> {
  const t = newToken(caCertPem);
  const expires =
    opts.ttlMs === 0 ? undefined : new Date(now.getTime() + (opts.ttlMs ?? 86_400_000));
  await client.create(
    JSON.stringify(
      tokenSecret(t, {
        role: opts.role,
        uses: opts.uses ?? 1,
        expires,
        description: opts.description,
      }),
    ),
  );
  return formatToken(t);
}

/** The cluster CA from the client config: tokens pin it. */
function clusterCa(cmd: Command): string {
  const s = clientSettings(cmd.optsWithGlobals() as GlobalFlags);
  if (!s.ca)
    throw new CliError(
      'the client config has no cluster CA (an --insecure cluster has no tokens); use the admin.conf that "baton master --init" wrote, or "baton login"',
    );
  return s.ca;
}

const roleOption = () =>
  new Option('--role <role>', 'what the token lets its holder become').choices([...ROLES]);

function tokenList(items: ApiObject[], now: Date): string[][] {
  return items.map((o) => {
    const r = readRecord(o);
    const state = r.revoked
      ? 'rotated'
      : r.usesLeft < 1
        ? 'used'
        : r.expires && r.expires < now
          ? 'expired'
          : 'valid';
    return [
      r.id,
      r.role,
      state,
      `${r.uses - r.usesLeft}/${r.uses}`,
      r.expires ? r.expires.toISOString() : '<never>',
      formatAge(r.created, now),
      r.description ?? '',
    ];
  });
}

/** --uses and --ttl of create and rotate, checked with the flag named. */
function tokenLimits(opts: { uses: string; ttl: string }): { uses: number; ttlMs: number } {
  const uses = Number(opts.uses);
  if (!Number.isInteger(uses) || uses < 1)
    throw new CliError(`--uses: must be a positive integer, got "${opts.uses}"`);
  try {
    return { uses, ttlMs: opts.ttl === '0' ? 0 : parseDuration(opts.ttl, '--ttl') };
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

export function tokenCommand(): Command {
  const token = new Command('token').description(
    'join tokens: how masters, nodes and users get their certificates',
  );
  token
    .command('create')
    .description('make a join token (printed once; only its hash is stored)')
    .addOption(roleOption().makeOptionMandatory())
    .option('--uses <n>', 'how many times it may be used (default 1)', '1')
    .option('--ttl <duration>', 'how long it is valid, e.g. 30m, 24h, 7d; 0 = no expiry', '24h')
    .option('--description <text>', 'a note shown by "baton token list"')
    .action(
      async (
        opts: { role: Role; uses: string; ttl: string; description?: string },
        cmd: Command,
      ) => {
        const ca = clusterCa(cmd);
        const limits = tokenLimits(opts);
        await withClient(cmd, async (client) =>
          out(
            await createJoinToken(client, ca, {
              role: opts.role,
              ...limits,
              description: opts.description,
            }),
          ),
        );
      },
    );
  token
    .command('list')
    .description('show the join tokens and whether each can still be used (never the secrets)')
    .action(async (_opts: unknown, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const res = await client.list({
          kind: 'Secret',
          namespace: SYSTEM_NAMESPACE,
          labelSelector: TOKEN_LABEL,
        });
        const items = res.itemsJson
          .map((j) => JSON.parse(j) as ApiObject & { type?: string })
          .filter((o) => o.type === TOKEN_TYPE);
        out(
          renderTable(
            ['ID', 'ROLE', 'STATE', 'USED', 'EXPIRES', 'AGE', 'DESCRIPTION'],
            tokenList(items, new Date()),
          ),
        );
      });
    });
  token
    .command('rotate')
    .description('refuse every token of a role from now on, and print a new one')
    .addOption(roleOption().makeOptionMandatory())
    .option('--uses <n>', 'how many times the new token may be used (default 1)', '1')
    .option('--ttl <duration>', 'how long the new token is valid (default 24h)', '24h')
    .action(async (opts: { role: Role; uses: string; ttl: string }, cmd: Command) => {
      const ca = clusterCa(cmd);
      // Checked before anything is rotated: a typo must not leave the role without a token.
      const limits = tokenLimits(opts);
      await withClient(cmd, async (client) => {
        const res = await client.list({
          kind: 'Secret',
          namespace: SYSTEM_NAMESPACE,
          labelSelector: `${TOKEN_LABEL}=${opts.role}`,
        });
        const now = new Date();
        let revoked = 0;
        for (const j of res.itemsJson) {
          const o = JSON.parse(j) as ApiObject;
          if (readRecord(o).revoked) continue;
          await client.update(JSON.stringify(revokedSecret(o, now)));
          revoked++;
        }
        const t = await createJoinToken(client, ca, { role: opts.role, ...limits });
        process.stderr.write(`${revoked} ${opts.role} token(s) rotated; the new one:\n`);
        out(t);
      });
    });
  return token;
}

/** `baton login`: trade an admin or read-only token for a client certificate, written to the client config. */
export function loginCommand(): Command {
  return new Command('login')
    .description('get a client certificate with an admin or readonly join token')
    .requiredOption('--token <token>', 'a token from "baton token create --role admin|readonly"')
    .option('--user <name>', 'the name on the certificate (default: $USER)')
    .action(async (opts: { token: string; user?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals() as GlobalFlags;
      const servers = (g.server ?? process.env.BATON_SERVER ?? '').split(',').filter(Boolean);
      if (servers.length === 0)
        throw new CliError('--server: which master to log in through (host:port)');
      const user = (opts.user ?? process.env.USER ?? 'user')
        .toLowerCase()
        .replace(/[^a-z0-9.-]/g, '-');
      let got;
      try {
        got = await enrollAny(servers, opts.token, user, ['admin', 'readonly'], { attempts: 3 });
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      const me = new TlsIdentity(got.caCertPem, got.certPem, got.key.privateKeyPem);
      // Every member, so the CLI fails over when one is down.
      const client = new BatonClient(servers, { credentials: me.channelCredentials(['master']) });
      let members = servers;
      try {
        const s = await client.status();
        members = s.members.map((m) => m.address).filter(Boolean);
      } finally {
        client.close();
      }
      const file = g.config ?? defaultConfigPath();
      mkdirSync(dirname(file), { recursive: true });
      if (existsSync(file)) renameSync(file, `${file}.bak`);
      writeFileSync(
        file,
        clientConfigText(
          { server: members, ca: got.caCertPem, cert: got.certPem, key: got.key.privateKeyPem },
          `written by "baton login" for ${got.role} "${user}"`,
        ),
        { mode: 0o600 },
      );
      out(`logged in as ${got.role} "${user}" (${members.join(', ')}); credentials in ${file}`);
    });
}
