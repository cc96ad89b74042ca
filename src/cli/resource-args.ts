/**
 * The resource arguments of kubectl's workload verbs (`scale`, `set image`,
 * `rollout ...`): `TYPE/NAME...` or `TYPE NAME...` (kubectl's
 * ResourceTypeOrNameArgs), and running a verb on each named object with
 * kubectl's error reporting: one line per failed object, the others still
 * done, exit 1 at the end.
 */
import { KindInfo } from '../api/types';
import { CliError, err, errorLine, kindOf, ReportedError } from './output';

export interface ResourceRef {
  kind: KindInfo;
  name: string;
}

/** Parses `deploy/web rs/x` or `deployment web api`. Throws CliError. */
export function parseResourceArgs(args: readonly string[]): ResourceRef[] {
  if (args.length === 0) throw new CliError('required resource not specified');
  if (args[0].includes('/')) {
    return args.map((a) => {
      const [type, name, ...rest] = a.split('/');
      if (!type || !name || rest.length > 0)
        throw new CliError(
          a.includes('/')
            ? `arguments in resource/name form must have a single resource and name, got "${a}"`
            : `there is no need to specify a resource type as a separate argument when passing arguments in resource/name form, got "${a}"`,
        );
      return { kind: kindOf(type), name };
    });
  }
  const [type, ...names] = args;
  const kind = kindOf(type);
  if (names.length === 0)
    throw new CliError('resource(s) were provided, but no name was specified');
  for (const n of names)
    if (n.includes('/'))
      throw new CliError(
        `there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'baton get resource/<resource_name>' instead of 'baton get resource resource/<resource_name>')`,
      );
  return names.map((name) => ({ kind, name }));
}

/** kubectl's resource string in messages: `deployments.apps`, `pods`, `jobs.batch`. */
export function resourceString(k: KindInfo): string {
  const group = k.apiVersion.includes('/') ? `.${k.apiVersion.split('/')[0]}` : '';
  return `${k.plural}${group}`;
}

/** kubectl's GroupKind string: `Deployment.apps`, `Pod`. */
export function groupKind(k: KindInfo): string {
  const group = k.apiVersion.includes('/') ? `.${k.apiVersion.split('/')[0]}` : '';
  return `${k.kind}${group}`;
}

/** Reports `e` (a CliError) and ends the command with exit code 1; anything else is rethrown. */
export function usageFailure(e: unknown): never {
  if (!(e instanceof CliError)) throw e;
  err(errorLine(e));
  throw new ReportedError(e.message);
}

/**
 * Runs `fn` on each ref in turn; a failure is reported (ClientError as
 * "Error from server", anything else as "error:") and the next ref still
 * runs. Ends with exit code 1 if any failed.
 */
export async function forEachResource(
  refs: readonly ResourceRef[],
  fn: (ref: ResourceRef) => Promise<void>,
): Promise<void> {
  let failed = 0;
  for (const ref of refs) {
    try {
      await fn(ref);
    } catch (e) {
      if (e instanceof ReportedError) throw e;
      failed++;
      err(errorLine(e));
    }
  }
  if (failed > 0) throw new ReportedError(`${failed} of ${refs.length} failed`);
}
