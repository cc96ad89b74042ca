import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/**
 * One way to configure every Baton process. A setting comes from, in order of
 * precedence: a command-line flag, an environment variable (`BATON_` plus the
 * setting's name in SCREAMING_SNAKE_CASE), the YAML config file, the schema's
 * default. Every layer is checked against the same zod schema, and an error
 * names the setting and where its bad value came from.
 */
export class ConfigError extends Error {
  readonly code = 'INVALID_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export type ConfigSource = 'flag' | 'env' | 'file' | 'default';

export interface ConfigInputs {
  /** Values of flags the user actually gave (undefined entries are ignored). */
  flags?: Record<string, unknown>;
  /** Environment to read; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Path of a YAML file; a missing path is an error, an absent option is not. */
  file?: string;
  envPrefix?: string;
}

export interface LoadedConfig<T> {
  value: T;
  /** Where each setting's value came from, for `--print-config` and error messages. */
  sources: Record<keyof T & string, ConfigSource>;
}

export function envName(key: string, prefix = 'BATON_'): string {
  return prefix + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** A number setting that also accepts its decimal string form (env vars, flags). */
export const num = () =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v), z.number());

/** A boolean setting that also accepts "true/false/1/0/yes/no". */
export const bool = () =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    const s = v.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off'].includes(s)) return false;
    return v;
  }, z.boolean());

/** A list setting; a string is split on commas. */
export const list = () =>
  z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '')
        : v,
    z.array(z.string()),
  );

export function loadConfig<S extends z.ZodObject>(
  schema: S,
  inputs: ConfigInputs = {},
): LoadedConfig<z.infer<S>> {
  const keys = Object.keys(schema.shape);
  const env = inputs.env ?? process.env;
  const prefix = inputs.envPrefix ?? 'BATON_';
  const merged: Record<string, unknown> = {};
  const sources: Record<string, ConfigSource> = {};
  for (const k of keys) sources[k] = 'default';

  if (inputs.file !== undefined) {
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(inputs.file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${inputs.file}: ${(err as Error).message}`);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) {
        throw new ConfigError(
          `config file ${inputs.file}: expected a mapping of settings at the top level`,
        );
      }
      for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
        if (!keys.includes(k)) {
          throw new ConfigError(
            `config file ${inputs.file}: unknown setting "${k}" (known: ${keys.join(', ')})`,
          );
        }
        merged[k] = v;
        sources[k] = 'file';
      }
    }
  }
  for (const k of keys) {
    const v = env[envName(k, prefix)];
    if (v !== undefined && v !== '') {
      merged[k] = v;
      sources[k] = 'env';
    }
  }
  for (const [k, v] of Object.entries(inputs.flags ?? {})) {
    if (v === undefined || !keys.includes(k)) continue;
    merged[k] = v;
    sources[k] = 'flag';
  }

  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue.path[0] ?? '');
    const where =
      sources[key] === 'env'
        ? `environment variable ${envName(key, prefix)}`
        : sources[key] === 'file'
          ? `config file ${inputs.file}`
          : sources[key] === 'flag'
            ? `flag --${key.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()}`
            : 'default';
    throw new ConfigError(`setting "${issue.path.join('.')}" from ${where}: ${issue.message}`);
  }
  return { value: parsed.data, sources: sources as LoadedConfig<z.infer<S>>['sources'] };
}

/**
 * A daemon's `--config FILE`. `baton` also has a global `--config` (the
 * CLI's client config), and commander hands the flag to it wherever it is
 * written; for `baton master` and `baton node` it means the daemon's
 * settings file.
 */
export function daemonConfigFile(
  flags: Record<string, string | undefined>,
  cmd: { parent?: { opts(): Record<string, unknown> } | null },
): string | undefined {
  return flags.config ?? (cmd.parent?.opts().config as string | undefined);
}
