/**
 * `baton edit TYPE NAME`: the object as YAML in the user's editor
 * ($BATON_EDITOR, $KUBE_EDITOR, $EDITOR, else vi), written back with the
 * resourceVersion that was read. As kubectl does, a rejected edit reopens
 * the file with the reason on top; saving it unchanged (or emptying it)
 * gives up, and the attempted edit is kept in a file the message names.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { ApiObject } from '../../api/types';
import { ClientError } from '../../client/cluster-client';
import { resourceName } from '../printers';
import { parseResourceArgs } from '../resource-args';
import { CliError, errorLine, out, withClient } from '../output';

const HEADER = `# Please edit the object below. Lines beginning with a '#' will be ignored,
# and an empty file will abort the edit. If an error occurs while saving this file will be
# reopened with the relevant failures.
#
`;

export function editorCommand(): string[] {
  const e = process.env.BATON_EDITOR || process.env.KUBE_EDITOR || process.env.EDITOR || 'vi';
  return e.split(/\s+/).filter(Boolean);
}

function strip(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n')
    .trim();
}

export function editCommand(): Command {
  return new Command('edit')
    .description('edit an object in your editor ($BATON_EDITOR, $KUBE_EDITOR, $EDITOR or vi)')
    .argument('<resource...>', 'TYPE NAME or TYPE/NAME')
    .option('-o, --output <format>', 'yaml (default) or json in the editor', 'yaml')
    .action(async (args: string[], opts: { output: string }, cmd: Command) => {
      const [ref, ...more] = parseResourceArgs(args);
      if (more.length > 0) throw new CliError('edit one object at a time');
      if (opts.output !== 'yaml' && opts.output !== 'json')
        throw new CliError(`--output: expected yaml or json, got "${opts.output}"`);
      await withClient(cmd, async (client, ns) => {
        const namespace = ref.kind.namespaced ? ns : '';
        const current = JSON.parse(
          (await client.get(ref.kind.kind, namespace, ref.name)).objectJson,
        ) as ApiObject;
        const render = (o: unknown) =>
          opts.output === 'json' ? JSON.stringify(o, null, 2) + '\n' : toYaml(o);
        const original = render(current);
        const dir = mkdtempSync(join(tmpdir(), 'baton-edit-'));
        const file = join(dir, `${ref.kind.plural}-${ref.name}.${opts.output}`);
        let text = HEADER + original;
        let lastEdited = strip(original);
        let keep = false;
        try {
          for (;;) {
            writeFileSync(file, text);
            const [bin, ...editorArgs] = editorCommand();
            const r = spawnSync(bin, [...editorArgs, file], { stdio: 'inherit' });
            if (r.error || r.status !== 0)
              throw new CliError(
                `the editor "${[bin, ...editorArgs].join(' ')}" failed${r.error ? `: ${r.error.message}` : ` (exit code ${r.status})`}`,
              );
            const edited = strip(readFileSync(file, 'utf8'));
            if (edited === '') {
              out('Edit cancelled, saved file was empty.');
              return;
            }
            if (edited === strip(original)) {
              out('Edit cancelled, no changes made.');
              return;
            }
            if (edited === lastEdited) {
              keep = true;
              throw new CliError(`edit not saved; the last attempt is kept in ${file}`);
            }
            lastEdited = edited;
            let problem: string;
            try {
              const obj = parseYaml(edited) as ApiObject;
              if (!obj || typeof obj !== 'object' || !obj.metadata)
                throw new Error('the file must hold one object with its metadata');
              if (obj.kind !== current.kind || obj.metadata.name !== current.metadata.name)
                throw new Error('the kind and name of an object cannot be changed by an edit');
              obj.metadata.resourceVersion = current.metadata.resourceVersion;
              await client.update(JSON.stringify(obj));
              out(`${resourceName(current)} edited`);
              return;
            } catch (e) {
              if (e instanceof ClientError && e.code === 10) {
                keep = true;
                writeFileSync(file, edited + '\n');
                throw new CliError(
                  `${resourceName(current)} was changed by someone else while you edited it; your version is kept in ${file} (edit again, or apply it)`,
                );
              }
              problem = errorLine(e);
            }
            text =
              HEADER +
              problem
                .split('\n')
                .map((l) => `# ${l}`)
                .join('\n') +
              '\n#\n' +
              edited +
              '\n';
          }
        } finally {
          if (!keep) rmSync(dir, { recursive: true, force: true });
        }
      });
    });
}
