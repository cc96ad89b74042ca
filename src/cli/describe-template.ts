/**
 * A pod template as kubectl's DescribePodTemplate prints it: what
 * `rollout history --revision N` shows.
 */
import type { PodTemplateSpec } from '../api/schema';

/** `t` under a "Pod Template:" heading; fields without a value say <none>, as kubectl's do. */
export function describeTemplate(t: PodTemplateSpec): string {
  const lines: string[] = ['Pod Template:'];
  const field = (indent: string, key: string, value: string, width: number) =>
    `${indent}${`${key}:`.padEnd(width)}${value}`;
  const map = (m: Record<string, string> | undefined, sep: string) => {
    const entries = Object.entries(m ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return entries.length === 0 ? ['<none>'] : entries.map(([k, v]) => `${k}${sep}${v}`);
  };
  const block = (indent: string, key: string, values: string[], width: number) => {
    lines.push(field(indent, key, values[0], width));
    for (const v of values.slice(1)) lines.push(`${indent}${' '.repeat(width)}${v}`);
  };
  block('  ', 'Labels', map(t.metadata?.labels, '='), 14);
  block('  ', 'Annotations', map(t.metadata?.annotations, ': '), 14);
  const containers = (title: string, cs: PodTemplateSpec['spec']['containers'] | undefined) => {
    if (!cs || cs.length === 0) return;
    lines.push(`  ${title}:`);
    for (const c of cs) {
      lines.push(`   ${c.name}:`);
      const w = 14;
      block('    ', 'Image', [c.image ?? '<none>'], w);
      const ports = (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`);
      block('    ', 'Port', ports.length ? [ports.join(', ')] : ['<none>'], w);
      if (c.command?.length) block('    ', 'Command', c.command, w);
      if (c.args?.length) block('    ', 'Args', c.args, w);
      const env = (c.env ?? []).map((e) =>
        e.value !== undefined ? `${e.name}: ${e.value}` : `${e.name}: <set from a source>`,
      );
      block('    ', 'Environment', env.length ? env : ['<none>'], w);
      const mounts = (c.volumeMounts ?? []).map((m) => `${m.mountPath} from ${m.name}`);
      block('    ', 'Mounts', mounts.length ? mounts : ['<none>'], w);
    }
  };
  containers('Init Containers', t.spec.initContainers);
  containers('Containers', t.spec.containers);
  const volumes = (t.spec.volumes ?? []).map((v) => v.name);
  block('  ', 'Volumes', volumes.length ? volumes : ['<none>'], 14);
  return lines.join('\n');
}
