/**
 * What a container needs besides its image, resolved on the node before it
 * starts: environment variables (plain values, ConfigMap and Secret keys,
 * the downward API, `$(VAR)` references as Kubernetes expands them) and
 * volumes as host directories (emptyDir, hostPath, and ConfigMap/Secret
 * files written under the pod's directory). A reference that cannot be
 * resolved is a CreateContainerConfigError naming what is missing, as the
 * kubelet reports it; the container waits and is retried.
 */
import { chmodSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ConfigMap, Container, Pod, Secret } from '../api/schema';
import { parseQuantity } from '../api/schema/quantity';
import { ContainerLaunch, RuntimeError } from './runtime';

/** Reads a ConfigMap or Secret; undefined when it does not exist. */
export type ObjectLookup = (
  kind: 'ConfigMap' | 'Secret',
  namespace: string,
  name: string,
) => Promise<ConfigMap | Secret | undefined>;

const configError = (message: string) => new RuntimeError('CreateContainerConfigError', message);

/** The keys of a ConfigMap or Secret as bytes. */
function entries(o: ConfigMap | Secret): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (o.kind === 'Secret') {
    for (const [k, v] of Object.entries((o as Secret).data ?? {}))
      out.set(k, Buffer.from(v, 'base64'));
  } else {
    const cm = o as ConfigMap;
    for (const [k, v] of Object.entries(cm.data ?? {})) out.set(k, Buffer.from(v));
    for (const [k, v] of Object.entries(cm.binaryData ?? {})) out.set(k, Buffer.from(v, 'base64'));
  }
  return out;
}

/**
 * Expands `$(NAME)` from `vars` as Kubernetes does: `$$(NAME)` escapes to
 * the literal `$(NAME)`, and a reference to an unknown name stays as written.
 */
export function expandVars(s: string, vars: ReadonlyMap<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name?: string) =>
    m === '$$' ? '$' : (vars.get(name!) ?? m),
  );
}

/** A downward-API field of the pod, as `fieldRef.fieldPath` names it. */
function podField(pod: Pod, path: string, podIP: string | undefined, hostIP: string): string {
  const sub = /^metadata\.(labels|annotations)\['([^']*)'\]$/.exec(path);
  if (sub) return pod.metadata[sub[1] as 'labels' | 'annotations']?.[sub[2]] ?? '';
  switch (path) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace ?? 'default';
    case 'metadata.uid':
      return pod.metadata.uid ?? '';
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? 'default';
    case 'status.hostIP':
    case 'status.hostIPs':
      return hostIP;
    case 'status.podIP':
    case 'status.podIPs':
      return podIP ?? '';
    default:
      return '';
  }
}

export class PodConfig {
  constructor(
    /** Where pods' volumes live: `<podsDir>/<uid>/volumes/<name>`. */
    private readonly podsDir: string,
    private readonly lookup: ObjectLookup,
    /** Service variables for a namespace (see serviceEnv); none when absent. */
    private readonly serviceVars?: (namespace: string) => [string, string][],
  ) {}

  podDir(uid: string): string {
    return join(this.podsDir, uid);
  }

  /** Removes everything the node wrote for a pod (emptyDirs, ConfigMap and Secret files). */
  cleanup(uid: string): void {
    rmSync(this.podDir(uid), { recursive: true, force: true });
  }

  private async object(
    kind: 'ConfigMap' | 'Secret',
    namespace: string,
    name: string,
    optional: boolean | undefined,
  ): Promise<Map<string, Buffer> | undefined> {
    const o = await this.lookup(kind, namespace, name);
    if (o) return entries(o);
    if (optional) return undefined;
    throw configError(`${kind.toLowerCase()} "${name}" not found`);
  }

  /** The container's environment, resolved and expanded, in Kubernetes' order (envFrom, then env). */
  async env(
    pod: Pod,
    c: Container,
    podIP: string | undefined,
    hostIP: string,
  ): Promise<[string, string][]> {
    const ns = pod.metadata.namespace ?? 'default';
    // Services first: the container's own variables win over them.
    const vars = new Map<string, string>(
      pod.spec.enableServiceLinks === false ? [] : (this.serviceVars?.(ns) ?? []),
    );
    for (const from of c.envFrom ?? []) {
      const ref = from.configMapRef ?? from.secretRef!;
      const kind = from.configMapRef ? 'ConfigMap' : 'Secret';
      const data = await this.object(kind, ns, ref.name, ref.optional);
      for (const [k, v] of data ?? []) vars.set(`${from.prefix ?? ''}${k}`, v.toString());
    }
    for (const e of c.env ?? []) {
      const src = e.valueFrom;
      if (!src) {
        vars.set(e.name, expandVars(e.value ?? '', vars));
        continue;
      }
      if (src.fieldRef) {
        vars.set(e.name, podField(pod, src.fieldRef.fieldPath, podIP, hostIP));
        continue;
      }
      const key = src.configMapKeyRef ?? src.secretKeyRef;
      if (!key) continue; // resourceFieldRef: accepted, not implemented (a warning at apply)
      const kind = src.configMapKeyRef ? 'ConfigMap' : 'Secret';
      const data = await this.object(kind, ns, key.name ?? '', key.optional);
      if (!data) continue;
      const v = data.get(key.key);
      if (v === undefined) {
        if (key.optional) continue;
        throw configError(
          `couldn't find key ${key.key} in ${kind} ${ns}/${key.name} (env ${e.name})`,
        );
      }
      vars.set(e.name, v.toString());
    }
    return [...vars];
  }

  /** Host paths of the pod's volumes, made and (for ConfigMaps and Secrets) written afresh. */
  async volumes(pod: Pod): Promise<Map<string, string>> {
    const ns = pod.metadata.namespace ?? 'default';
    const root = join(this.podDir(pod.metadata.uid!), 'volumes');
    const out = new Map<string, string>();
    for (const v of pod.spec.volumes ?? []) {
      const dir = join(root, v.name);
      if (v.emptyDir) {
        mkdirSync(dir, { recursive: true, mode: 0o777 });
        chmodSync(dir, 0o777);
        out.set(v.name, dir);
      } else if (v.hostPath) {
        out.set(v.name, hostPath(v.hostPath.path, v.hostPath.type ?? ''));
      } else if (v.configMap || v.secret) {
        const src = v.configMap ?? v.secret!;
        const name = v.configMap ? v.configMap.name : v.secret!.secretName;
        const kind = v.configMap ? 'ConfigMap' : 'Secret';
        const data = await this.object(kind, ns, name, src.optional);
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        const mode = src.defaultMode ?? 0o644;
        const items: { key: string; path: string; mode?: number }[] =
          src.items ??
          [...(data ?? new Map<string, Buffer>()).keys()].map((key) => ({ key, path: key }));
        for (const it of items) {
          const bytes = data?.get(it.key);
          if (bytes === undefined) {
            if (src.optional) continue;
            throw configError(
              `configuration key "${it.key}" not found in ${kind} ${ns}/${name} (volume ${v.name})`,
            );
          }
          const file = join(dir, it.path);
          mkdirSync(dirname(file), { recursive: true });
          writeFileSync(file, bytes, { mode: it.mode ?? mode });
          chmodSync(file, it.mode ?? mode);
        }
        out.set(v.name, dir);
      }
      // persistentVolumeClaim, projected, downwardAPI: accepted with a warning, not mounted.
    }
    return out;
  }

  /** The launch spec of `c`: env resolved, mounts as host paths, limits in runtime units. */
  async launch(
    pod: Pod,
    c: Container,
    opts: {
      init: boolean;
      restarts: number;
      podIP: string | undefined;
      hostIP: string;
      volumes: Map<string, string>;
    },
  ): Promise<ContainerLaunch> {
    const env = await this.env(pod, c, opts.podIP, opts.hostIP);
    const vars = new Map(env);
    const limits = c.resources?.limits ?? {};
    const requests = c.resources?.requests ?? {};
    const mounts: ContainerLaunch['mounts'] = [];
    for (const m of c.volumeMounts ?? []) {
      const base = opts.volumes.get(m.name);
      if (base === undefined) continue; // an unimplemented volume kind
      let hostPath = base;
      if (m.subPath || m.subPathExpr) {
        const sub = m.subPath ?? expandVars(m.subPathExpr!, vars);
        if (sub.startsWith('/') || sub.split('/').includes('..'))
          throw configError(
            `volumeMount ${m.name}: subPath "${sub}" must be relative without ".."`,
          );
        hostPath = join(base, sub);
        if (!existsSync(hostPath)) mkdirSync(hostPath, { recursive: true, mode: 0o777 });
      }
      mounts.push({ hostPath, containerPath: m.mountPath, readOnly: m.readOnly === true });
    }
    const cpuReq = requests.cpu ?? limits.cpu;
    return {
      pod: {
        uid: pod.metadata.uid!,
        namespace: pod.metadata.namespace ?? 'default',
        name: pod.metadata.name,
      },
      name: c.name,
      init: opts.init,
      restarts: opts.restarts,
      image: c.image,
      imagePullPolicy: c.imagePullPolicy,
      command: c.command?.map((s) => expandVars(s, vars)),
      args: c.args?.map((s) => expandVars(s, vars)),
      env,
      workingDir: c.workingDir,
      mounts,
      memoryBytes:
        limits.memory !== undefined ? Math.round(parseQuantity(limits.memory)) : undefined,
      nanoCpus:
        limits.cpu !== undefined
          ? Math.round(parseQuantity(limits.cpu) * 1e9) || undefined
          : undefined,
      // Kubernetes' shares: 1024 per cpu requested, at least 2.
      cpuShares:
        cpuReq !== undefined ? Math.max(2, Math.round(parseQuantity(cpuReq) * 1024)) : undefined,
      tty: c.tty,
      stdin: c.stdin,
    };
  }
}

/** A hostPath volume checked (or made) as its `type` says. */
function hostPath(path: string, type: string): string {
  const st = (() => {
    try {
      return statSync(path);
    } catch {
      return undefined;
    }
  })();
  const fail = (what: string) => {
    throw configError(`hostPath volume: ${path} ${what}`);
  };
  switch (type) {
    case 'DirectoryOrCreate':
      if (!st) mkdirSync(path, { recursive: true, mode: 0o755 });
      else if (!st.isDirectory()) fail('exists and is not a directory');
      break;
    case 'Directory':
      if (!st?.isDirectory()) fail('is not a directory');
      break;
    case 'FileOrCreate':
      if (!st) {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, '', { mode: 0o644 });
      } else if (!st.isFile()) fail('exists and is not a file');
      break;
    case 'File':
      if (!st?.isFile()) fail('is not a file');
      break;
    case 'Socket':
      if (!st?.isSocket()) fail('is not a socket');
      break;
    case 'CharDevice':
      if (!st?.isCharacterDevice()) fail('is not a character device');
      break;
    case 'BlockDevice':
      if (!st?.isBlockDevice()) fail('is not a block device');
      break;
    default:
      break; // "": no check, as in Kubernetes
  }
  return path;
}
