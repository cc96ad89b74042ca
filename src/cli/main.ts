import { Command, CommanderError } from 'commander';
import { VERSION } from '../common/version';

/**
 * Builds the `baton` command tree. Subcommands register themselves here as
 * they are built (master, node, up, apply, get, ...).
 */
export function buildProgram(): Command {
  const program = new Command('baton')
    .description('Baton: a container orchestrator with replicated masters and a kubectl-like CLI')
    .version(VERSION, '-v, --version', 'print the Baton version')
    .showHelpAfterError('(run "baton --help" for usage)')
    .exitOverride();
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
    throw err;
  }
}
