/**
 * `baton create`: objects from manifests that must not exist yet (`-f`),
 * or kubectl's generators for the common kinds (`create deployment NAME
 * --image I -- CMD`, namespace, configmap, secret generic, service,
 * job). `--dry-run=client -o yaml` prints the manifest a generator makes
 * without talking to a master, to start a file from.
 */
import { Command, Option } from 'commander';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ApiObject } from '../../api/types';
import { loadManifests } from '../manifests';
import { OutputFormat, parseOutputFormat, printObjects, resourceName } from '../printers';
import { CliError, err, errorLine, out, ReportedError, withClient } from '../output';

type DryRun = 'none' | 'client' | 'server';

interface CreateOpts {
  dryRun?: string | boolean;
  output?: string;
}

function dryRunOf(v: string | boolean | undefined): DryRun {
  if (v === undefined || v === false || v === 'none') return 'none';
  if (v === true || v === 'client') return 'client';
  if (v === 'server') return 'server';
  throw new CliError(`--dry-run: expected none, client or server, got "${String(v)}"`);
}

function common(c: Command): Command {
  return c
    .option(
      '--dry-run [mode]',
      'client: print, send nothing; server: validate on a master without writing',
    )
    .option('-o, --output <format>', 'yaml, json or name: print the object made');
}

/** Sends (or with --dry-run=client only prints) objects; kubectl's "created" lines. */
async function send(cmd: Command, objs: ApiObject[], sources: string[] = []): Promise<void> {
  // `create -o yaml deployment x` and `create deployment x -o yaml` alike.
  const opts = cmd.optsWithGlobals() as CreateOpts;
  const dry = dryRunOf(opts.dryRun);
  const format: OutputFormat | undefined = opts.output ? parseOutputFormat(opts.output) : undefined;
  const show = (o: ApiObject, suffix: string) =>
    out(
      format
        ? printObjects([o], format, { now: new Date(), color: false, kind: o.kind })
        : `${resourceName(o)} created${suffix}`,
    );
  if (dry === 'client') {
    for (const o of objs) show(o, ' (dry run)');
    return;
  }
  let failed = 0;
  await withClient(cmd, async (client, ns) => {
    for (const [i, o] of objs.entries()) {
      if (o.metadata.namespace === undefined && namespaced(o)) o.metadata.namespace = ns;
      try {
        const r = await client.create(JSON.stringify(o), dry === 'server');
        for (const w of r.warnings) err(`Warning: ${w}`);
        show(JSON.parse(r.objectJson) as ApiObject, dry === 'server' ? ' (server dry run)' : '');
      } catch (e) {
        failed++;
        err(`${errorLine(e)}${sources[i] ? ` (${sources[i]})` : ''}`);
      }
    }
  });
  if (failed > 0) throw new ReportedError();
}

function namespaced(o: ApiObject): boolean {
  return o.kind !== 'Namespace' && o.kind !== 'Node';
}

export function createCommand(): Command {
  const create = common(
    new Command('create')
      .description('create objects from manifests (they must not exist), or from a generator')
      .option('-f, --filename <path...>', 'file, directory or - for stdin')
      .option('-R, --recursive', 'process directories recursively'),
  ).action(async (opts: CreateOpts & { filename?: string[]; recursive?: boolean }, cmd) => {
    if (!opts.filename)
      throw new CliError(
        'give -f FILE, or one of: deployment, namespace, configmap, secret generic, service, job (see "baton create --help")',
      );
    const docs = await loadManifests(opts.filename, { recursive: opts.recursive });
    await send(
      cmd as Command,
      docs.map((d) => d.object as ApiObject),
      docs.map((d) => `${d.source}, document ${d.index}`),
    );
  });
  create.addCommand(deploymentGenerator());
  create.addCommand(jobGenerator());
  create.addCommand(
    common(new Command('namespace').alias('ns').description('create a namespace'))
      .argument('<name>')
      .action(async (name: string, _opts: unknown, cmd: Command) =>
        send(cmd, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }]),
      ),
  );
  create.addCommand(configMapGenerator());
  const secret = new Command('secret').description('create a secret');
  secret.addCommand(secretGenerator());
  create.addCommand(secret);
  create.addCommand(serviceGenerator());
  for (const c of create.commands) {
    c.exitOverride();
    for (const s of c.commands) s.exitOverride();
  }
  return create;
}

function containerFrom(name: string, image: string, command: string[], port?: string) {
  return {
    name,
    image,
    ...(command.length > 0 ? { command } : {}),
    ...(port ? { ports: [{ containerPort: portNumber(port, '--port') }] } : {}),
  };
}

function portNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535)
    throw new CliError(`${flag}: expected a port from 1 to 65535, got "${v}"`);
  return n;
}

/** kubectl derives the container name from the image: `nginx:1.27` → `nginx`. */
export function containerName(image: string): string {
  const last = image.split('/').pop() ?? image;
  return (
    last
      .split(/[:@]/)[0]
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
      .replace(/^-+|-+$/g, '') || 'app'
  );
}

function deploymentGenerator(): Command {
  return common(
    new Command('deployment')
      .alias('deploy')
      .description('create a deployment running an image (a command after --)')
      .argument('<name>')
      .argument('[command...]', 'the command to run, after --')
      .requiredOption('--image <image>', 'the image of the container')
      .option('--replicas <n>', 'how many pods', '1')
      .option('--port <port>', 'the port the container serves'),
  ).action(
    async (
      name: string,
      command: string[],
      opts: CreateOpts & { image: string; replicas: string; port?: string },
      cmd: Command,
    ) => {
      const replicas = Number(opts.replicas);
      if (!/^\d+$/.test(opts.replicas))
        throw new CliError(`--replicas: expected a whole number, got "${opts.replicas}"`);
      const labels = { app: name };
      await send(cmd, [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name, labels },
          spec: {
            replicas,
            selector: { matchLabels: labels },
            template: {
              metadata: { labels },
              spec: {
                containers: [
                  containerFrom(containerName(opts.image), opts.image, command, opts.port),
                ],
              },
            },
          },
        },
      ]);
    },
  );
}

function jobGenerator(): Command {
  return common(
    new Command('job')
      .description('create a job running an image to completion (a command after --)')
      .argument('<name>')
      .argument('[command...]', 'the command to run, after --')
      .requiredOption('--image <image>', 'the image of the container'),
  ).action(async (name: string, command: string[], opts: CreateOpts & { image: string }, cmd) => {
    await send(cmd as Command, [
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name },
        spec: {
          template: {
            spec: {
              containers: [containerFrom(name, opts.image, command)],
              restartPolicy: 'Never',
            },
          },
        },
      },
    ]);
  });
}

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

/**
 * `--from-literal k=v` and `--from-file [key=]path` (a directory: each
 * regular file, keyed by its name) into one map; a key given twice is an error.
 */
export function dataFrom(literals: string[], files: string[]): Record<string, string> {
  const data: Record<string, string> = {};
  const put = (k: string, v: string, from: string) => {
    if (!/^[-._a-zA-Z0-9]+$/.test(k))
      throw new CliError(
        `${from}: "${k}" is not a valid key (letters, digits, "-", "_" and "." only)`,
      );
    if (k in data)
      throw new CliError(`${from}: cannot add key "${k}", another key by that name already exists`);
    data[k] = v;
  };
  for (const l of literals) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new CliError(`--from-literal: expected KEY=VALUE, got "${l}"`);
    put(l.slice(0, eq), l.slice(eq + 1), '--from-literal');
  }
  for (const f of files) {
    const eq = f.indexOf('=');
    const [key, path] = eq > 0 ? [f.slice(0, eq), f.slice(eq + 1)] : [undefined, f];
    let st;
    try {
      st = statSync(path);
    } catch {
      throw new CliError(`--from-file: ${path}: no such file or directory`);
    }
    if (st.isDirectory()) {
      if (key) throw new CliError(`--from-file: cannot give a key for a directory (${path})`);
      for (const e of readdirSync(path).sort())
        if (statSync(join(path, e)).isFile())
          put(e, readFileSync(join(path, e), 'utf8'), '--from-file');
    } else put(key ?? basename(path), readFileSync(path, 'utf8'), '--from-file');
  }
  return data;
}

/** The options of the generators that read data: --from-literal and --from-file. */
function withData(c: Command): Command {
  return c
    .option('--from-literal <key=value>', 'a key and its value (repeatable)', collect)
    .option(
      '--from-file <[key=]path>',
      'a file, keyed by its name; a directory (repeatable)',
      collect,
    );
}

function configMapGenerator(): Command {
  return withData(
    common(
      new Command('configmap')
        .alias('cm')
        .description('create a config map from literals and files')
        .argument('<name>'),
    ),
  ).action(
    async (
      name: string,
      opts: CreateOpts & { fromLiteral?: string[]; fromFile?: string[] },
      cmd: Command,
    ) => {
      const data = dataFrom(opts.fromLiteral ?? [], opts.fromFile ?? []);
      await send(cmd, [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data }]);
    },
  );
}

function secretGenerator(): Command {
  return withData(
    common(
      new Command('generic')
        .description('create an Opaque secret from literals and files')
        .argument('<name>')
        .option('--type <type>', 'the secret type', 'Opaque'),
    ),
  ).action(
    async (
      name: string,
      opts: CreateOpts & { fromLiteral?: string[]; fromFile?: string[]; type: string },
      cmd: Command,
    ) => {
      const plain = dataFrom(opts.fromLiteral ?? [], opts.fromFile ?? []);
      const data = Object.fromEntries(
        Object.entries(plain).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
      );
      await send(cmd, [
        { apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: opts.type, data },
      ]);
    },
  );
}

/** `--tcp 80:8080` → ports; the service selects `app=NAME` as kubectl's does. */
function serviceGenerator(): Command {
  const svc = new Command('service').alias('svc').description('create a service');
  for (const type of ['clusterip', 'nodeport'] as const)
    svc.addCommand(
      common(
        new Command(type)
          .description(
            type === 'clusterip'
              ? 'a ClusterIP service selecting app=NAME'
              : 'a NodePort service selecting app=NAME',
          )
          .argument('<name>')
          .requiredOption('--tcp <ports...>', 'port[:targetPort], one or more')
          .addOption(
            new Option('--node-port <port>', 'the node port (nodeport only)').hideHelp(
              type === 'clusterip',
            ),
          ),
      ).action(
        async (name: string, opts: CreateOpts & { tcp: string[]; nodePort?: string }, cmd) => {
          const ports = opts.tcp.map((p) => {
            const [port, target] = p.split(':');
            const n = portNumber(port, '--tcp');
            return {
              ...(opts.tcp.length > 1 ? { name: `${n}-${target ?? n}` } : {}),
              port: n,
              targetPort: target !== undefined ? portNumber(target, '--tcp') : n,
              protocol: 'TCP',
              ...(opts.nodePort ? { nodePort: portNumber(opts.nodePort, '--node-port') } : {}),
            };
          });
          await send(cmd as Command, [
            {
              apiVersion: 'v1',
              kind: 'Service',
              metadata: { name, labels: { app: name } },
              spec: {
                type: type === 'clusterip' ? 'ClusterIP' : 'NodePort',
                selector: { app: name },
                ports,
              },
            },
          ]);
        },
      ),
    );
  for (const c of svc.commands) c.exitOverride();
  return svc;
}
