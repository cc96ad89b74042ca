import { Command, CommanderError } from 'commander';
import { ClientError } from '../client/cluster-client';
import { ConfigError } from '../common/config';
import { VERSION } from '../common/version';
import { execCommand } from './commands/exec';
import { logsCommand } from './commands/logs';
import { clusterCommand } from './commands/cluster';
import { masterCommand } from './commands/master';
import { nodeCommand } from './commands/node';
import { applyCommand, deleteCommand, describeCommand, getCommand } from './commands/objects';
import { cordon, drain, uncordon } from './commands/nodes';
import { rolloutCommand } from './commands/rollout';
import { scaleCommand, setCommand } from './commands/workloads';
import { topCommand } from './commands/top';
import { ManifestError } from './manifests';
import { LocalClusterError } from './local-cluster';
import { downCommand, statusCommand, upCommand } from './commands/up';
import { createCommand } from './commands/create';
import { editCommand } from './commands/edit';
import { annotateCommand, labelCommand } from './commands/metadata';
import { completeCommand, completionCommand } from './commands/completion';
import { CliError, errorLine, ReportedError } from './output';
import { loginCommand, tokenCommand } from './commands/token';

/**
 * Builds the `baton` command tree. Subcommands register themselves here as
 * they are built (master, node, up, apply, get, ...).
 */
export function buildProgram(): Command {
  const program = new Command('baton')
    .description('Baton: a container orchestrator with replicated masters and a kubectl-like CLI')
    .version(VERSION, '-v, --version', 'print the Baton version')
    .option(
      '-s, --server <list>',
      'master addresses, host:port[,host:port...] (default: $BATON_SERVER or ~/.baton/config)',
    )
    .option('--config <file>', 'client config file (default: $BATON_CONFIG or ~/.baton/config)')
    .option('-n, --namespace <ns>', 'namespace for namespaced objects (default: "default")')
    .showHelpAfterError('(run "baton --help" for usage)')
    .exitOverride();
  for (const c of [
    upCommand(),
    downCommand(),
    statusCommand(),
    createCommand(),
    applyCommand(),
    getCommand(),
    describeCommand(),
    editCommand(),
    deleteCommand(),
    labelCommand(),
    annotateCommand(),
    scaleCommand(),
    setCommand(),
    rolloutCommand(),
    logsCommand(),
    execCommand(),
    topCommand(),
    cordon(),
    uncordon(),
    drain(),
    clusterCommand(),
    tokenCommand(),
    loginCommand(),
    masterCommand(),
    nodeCommand(),
    completionCommand(),
  ]) {
    program.addCommand(c.exitOverride());
  }
  // What the completion scripts call; not for people.
  program.addCommand(completeCommand(() => buildProgram()).exitOverride(), { hidden: true });
  return program;
}

/** Runs the CLI and resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  if (argv.length <= 2) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return err.exitCode;
    }
    if (err instanceof ReportedError) return err.exitCode;
    if (
      err instanceof ClientError ||
      err instanceof ConfigError ||
      err instanceof ManifestError ||
      err instanceof LocalClusterError ||
      err instanceof CliError
    ) {
      process.stderr.write(`${errorLine(err)}\n`);
      return 1;
    }
    throw err;
  }
}
