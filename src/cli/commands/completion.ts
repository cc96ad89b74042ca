/**
 * Shell completion. `baton completion bash|zsh` prints a small script that
 * hands the words typed so far to the hidden `baton __complete`, which walks
 * the command tree (so completion never drifts from the real commands and
 * flags) and, where an object name is expected, asks the masters for the
 * names of that kind (as kubectl's completion does).
 */
import { Command, Option } from 'commander';
import { ApiObject, KINDS, resolveKind } from '../../api/types';
import { connect, GlobalFlags } from '../client-config';
import { CliError, out } from '../output';

const BASH = `# baton completion for bash: source <(baton completion bash)
_baton() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  local IFS=$'\\n'
  COMPREPLY=( $(compgen -W "$(baton __complete "\${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)" -- "$cur") )
}
complete -o default -F _baton baton
`;

const ZSH = `#compdef baton
# baton completion for zsh: source <(baton completion zsh)
_baton() {
  local -a candidates
  candidates=("\${(@f)$(baton __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -- \${candidates}
}
compdef _baton baton
`;

export function completionCommand(): Command {
  return new Command('completion')
    .description('print a shell completion script: source <(baton completion bash)')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh')
        throw new CliError(`unsupported shell "${shell}": bash or zsh`);
      out(shell === 'bash' ? BASH : ZSH);
    });
}

/** Verbs whose positional arguments are KIND then NAME... */
const KIND_THEN_NAMES = new Set(['get', 'describe', 'delete', 'edit', 'label', 'annotate']);
/** Verbs (by path) whose arguments are names of one kind. */
const NAMES_OF: Record<string, string> = {
  logs: 'Pod',
  exec: 'Pod',
  cordon: 'Node',
  uncordon: 'Node',
  drain: 'Node',
  'top pods': 'Pod',
  'top nodes': 'Node',
};
const VALUES: Record<string, string[]> = {
  '--output': ['wide', 'yaml', 'json', 'name'],
  '-o': ['wide', 'yaml', 'json', 'name'],
};

/** The hidden `__complete WORD...`: candidates for the last word, one per line. */
export function completeCommand(program: () => Command): Command {
  const c = new Command('__complete')
    .argument('[words...]')
    .allowUnknownOption()
    .helpOption(false)
    .action(async (words: string[]) => {
      for (const w of await candidates(program(), words)) out(w);
    });
  return c;
}

function optionNames(cmd: Command): string[] {
  const all: Option[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) all.push(...c.options);
  return all.flatMap((o) => [o.long, o.short].filter((x): x is string => !!x));
}

export async function candidates(root: Command, words: string[]): Promise<string[]> {
  const current = words[words.length - 1] ?? '';
  const before = words.slice(0, -1);
  let cmd = root;
  const path: string[] = [];
  const positional: string[] = [];
  const flags: Record<string, string> = {};
  for (let i = 0; i < before.length; i++) {
    const w = before[i];
    if (w.startsWith('-')) {
      const opt = [...cmd.options, ...root.options].find((o) => o.long === w || o.short === w);
      if (opt && (opt.required || opt.optional) && !w.includes('=') && i + 1 < before.length)
        flags[opt.long ?? w] = before[++i];
      continue;
    }
    const sub = cmd.commands.find((c) => c.name() === w || c.aliases().includes(w));
    if (sub && positional.length === 0) {
      cmd = sub;
      path.push(sub.name());
    } else positional.push(w);
  }
  const prev = before[before.length - 1];
  if (prev && VALUES[prev]) return VALUES[prev];
  if (prev === '-n' || prev === '--namespace') return names(root, flags, 'Namespace');
  if (current.startsWith('-')) return optionNames(cmd);
  const visible = cmd.commands.filter((c) => c.name() !== '__complete');
  if (visible.length > 0 && positional.length === 0) return visible.map((c) => c.name());
  const verb = path.join(' ');
  if (NAMES_OF[verb]) return names(root, flags, NAMES_OF[verb]);
  if (KIND_THEN_NAMES.has(verb) || path[0] === 'rollout' || verb === 'scale') {
    if (positional.length === 0) {
      const kinds = KINDS.flatMap((k) => [k.plural, ...k.shortNames]);
      return verb === 'scale' || path[0] === 'rollout' || current.includes('/')
        ? [...kinds, ...(await slashNames(root, flags, current))]
        : kinds;
    }
    const k = resolveKind(positional[0]);
    if (k) return names(root, flags, k.kind);
  }
  return [];
}

async function slashNames(root: Command, flags: Record<string, string>, current: string) {
  const slash = current.indexOf('/');
  if (slash < 0) return [];
  const type = current.slice(0, slash);
  const k = resolveKind(type);
  if (!k) return [];
  return (await names(root, flags, k.kind)).map((n) => `${type}/${n}`);
}

/** Names of `kind` in the namespace the words name; nothing when no master answers. */
async function names(
  root: Command,
  flags: Record<string, string>,
  kind: string,
): Promise<string[]> {
  const k = KINDS.find((x) => x.kind === kind);
  try {
    const g = root.opts() as GlobalFlags;
    const { client, namespace } = connect({
      server: flags['--server'] ?? g.server,
      config: flags['--config'] ?? g.config,
      namespace: flags['--namespace'] ?? g.namespace,
    });
    try {
      const r = await client.list({ kind, namespace: k?.namespaced ? namespace : '' });
      return r.itemsJson.map((j) => (JSON.parse(j) as ApiObject).metadata.name);
    } finally {
      client.close();
    }
  } catch {
    return [];
  }
}
