/**
 * `baton scale` and `baton set image`, with kubectl's semantics: each is a
 * read-modify-write of the named objects (see ../mutate.ts), reported per
 * object as `deployment.apps/web scaled` / `... image updated`.
 */
import { Command, InvalidArgumentError } from 'commander';
import { ApiObject } from '../../api/types';
import { mutate } from '../mutate';
import { resourceName } from '../printers';
import {
  forEachResource,
  parseResourceArgs,
  ResourceRef,
  resourceString,
  usageFailure,
} from '../resource-args';
import { CliError, out, withClient } from '../output';

/** Kinds with a `spec.replicas` to scale (kubectl no longer scales Jobs). */
const SCALABLE = new Set(['Deployment', 'ReplicaSet']);

function count(flag: string) {
  return (v: string): number => {
    if (!/^-?[0-9]+$/.test(v))
      throw new InvalidArgumentError(`${flag} must be an integer, got "${v}"`);
    return Number(v);
  };
}

interface ScaleOpts {
  replicas?: number;
  currentReplicas: number;
}

export function scaleCommand(): Command {
  return new Command('scale')
    .description('set a new size for deployments or replica sets')
    .usage('[--current-replicas=count] --replicas=COUNT (TYPE NAME... | TYPE/NAME...)')
    .argument('<resources...>', 'TYPE/NAME... or TYPE NAME..., e.g. deploy/web')
    .option('--replicas <count>', 'the new number of replicas (required)', count('--replicas'))
    .option(
      '--current-replicas <count>',
      'only scale if the current size is this (-1: any)',
      count('--current-replicas'),
      -1,
    )
    .action(async (args: string[], opts: ScaleOpts, cmd: Command) => {
      let refs: ResourceRef[];
      try {
        if (opts.replicas === undefined || opts.replicas < 0)
          throw new CliError(
            'The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0',
          );
        refs = parseResourceArgs(args);
      } catch (e) {
        usageFailure(e);
      }
      const replicas = opts.replicas;
      await withClient(cmd, (client, ns) =>
        forEachResource(refs, async ({ kind, name }) => {
          if (!SCALABLE.has(kind.kind))
            throw new CliError(
              `cannot scale ${resourceString(kind)} "${name}": only deployments and replicasets can be scaled`,
            );
          const { object } = await mutate(client, kind.kind, ns, name, (o) => {
            const spec = o.spec as { replicas?: number };
            const current = spec.replicas ?? 1;
            if (opts.currentReplicas >= 0 && current !== opts.currentReplicas)
              throw new CliError(`Expected replicas to be ${opts.currentReplicas}, was ${current}`);
            if (current === replicas) return undefined;
            spec.replicas = replicas;
            return o;
          });
          out(`${resourceName(object)} scaled`);
        }),
      );
    });
}

interface ContainerLike {
  name: string;
  image?: string;
}
interface PodSpecLike {
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
}

/** The pod spec an object runs: a Pod's own, or its template's (kubectl's UpdatePodSpecForObject). */
function podSpecOf(o: ApiObject): PodSpecLike | undefined {
  type Templated = { template?: { spec?: PodSpecLike } };
  const spec = o.spec as
    (PodSpecLike & Templated & { jobTemplate?: { spec?: Templated } }) | undefined;
  switch (o.kind) {
    case 'Pod':
      return spec;
    case 'Deployment':
    case 'ReplicaSet':
    case 'Job':
      return spec?.template?.spec;
    case 'CronJob':
      return spec?.jobTemplate?.spec?.template?.spec;
    default:
      return undefined;
  }
}

/**
 * Sets `images` (container name, or `*` for all, to image) in `spec`; true
 * when anything changed. Every name must match a container or init
 * container, or nothing is set: a typo should not half-apply.
 */
export function setImages(spec: PodSpecLike, images: ReadonlyMap<string, string>): boolean {
  const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  const missing = [...images.keys()].filter((n) => n !== '*' && !all.some((c) => c.name === n));
  if (missing.length > 0)
    throw new CliError(missing.map((n) => `unable to find container named "${n}"`).join('\n'));
  let changed = false;
  for (const c of all) {
    const image = images.get(c.name) ?? images.get('*');
    if (image === undefined || c.image === image) continue;
    c.image = image;
    changed = true;
  }
  return changed;
}

/** `deploy/web web=nginx:1.28 sidecar=x:1` → the resource args and the images (kubectl's GetResourcesAndPairs). */
function splitImageArgs(args: readonly string[]): {
  resources: string[];
  images: Map<string, string>;
} {
  const first = args.findIndex((a) => a.includes('='));
  const resources = first < 0 ? [...args] : args.slice(0, first);
  const pairs = first < 0 ? [] : args.slice(first);
  const images = new Map<string, string>();
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new CliError(`all resources must be specified before image changes: ${p}`);
    const name = p.slice(0, eq);
    const image = p.slice(eq + 1);
    if (!name || !image) throw new CliError(`invalid image format: "${p}" (use NAME=IMAGE)`);
    images.set(name, image);
  }
  if (resources.length === 0)
    throw new CliError(
      'one or more resources must be specified as <resource> <name> or <resource>/<name>',
    );
  if (images.size === 0) throw new CliError('at least one image update is required');
  if (images.size > 1 && images.has('*'))
    throw new CliError(
      'all containers are already specified by *, but saw more than one container_name=container_image pairs',
    );
  return { resources, images };
}

function setImageCommand(): Command {
  return new Command('image')
    .description("update containers' images in pods, deployments, replica sets, jobs or cron jobs")
    .usage('(TYPE NAME... | TYPE/NAME...) CONTAINER_NAME_1=CONTAINER_IMAGE_1 ...')
    .argument('<args...>', 'resources, then CONTAINER=IMAGE pairs (* for every container)')
    .action(async (args: string[], _opts: unknown, cmd: Command) => {
      let refs: ResourceRef[];
      let images: Map<string, string>;
      try {
        const split = splitImageArgs(args);
        images = split.images;
        refs = parseResourceArgs(split.resources);
      } catch (e) {
        usageFailure(e);
      }
      await withClient(cmd, (client, ns) =>
        forEachResource(refs, async ({ kind, name }) => {
          const { object, changed } = await mutate(client, kind.kind, ns, name, (o) => {
            const spec = podSpecOf(o);
            if (!spec)
              throw new CliError(
                `${resourceString(kind)} "${name}": the object is not a pod and has no pod template`,
              );
            return setImages(spec, images) ? o : undefined;
          });
          // Like kubectl, nothing is printed for an object that already ran those images.
          if (changed) out(`${resourceName(object)} image updated`);
        }),
      );
    });
}

export function setCommand(): Command {
  return new Command('set')
    .description('change a field of existing objects (image)')
    .addCommand(setImageCommand().exitOverride());
}
