/**
 * `baton exec POD [-c C] [-i] -- COMMAND [ARGS...]`: runs a command in a
 * running container on the pod's node, through a master, and exits with
 * the command's exit code (as kubectl does, saying so on stderr).
 */
import { status } from '@grpc/grpc-js';
import { Command } from 'commander';
import { ClientError } from '../../client/cluster-client';
import { err, ReportedError, withClient } from '../output';

interface ExecOpts {
  container?: string;
  stdin?: boolean;
}

export function execCommand(): Command {
  return new Command('exec')
    .description('run a command in a container of a pod')
    .argument('<pod>')
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('-c, --container <name>', "which container (default: the pod's first container)")
    .option('-i, --stdin', 'pass stdin to the command')
    .usage('[options] <pod> -- <command> [args...]')
    .action(async (pod: string, command: string[], opts: ExecOpts, cmd: Command) => {
      const exitCode = await withClient(cmd, async (client, namespace) => {
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once('SIGINT', stop);
        try {
          return await client.exec(
            { namespace, name: pod, container: opts.container ?? '', command },
            {
              stdin: opts.stdin ? process.stdin : undefined,
              stdout: process.stdout,
              stderr: process.stderr,
              signal: ac.signal,
            },
          );
        } catch (e) {
          // Ctrl-C: the node kills the command; exit as an interrupted process does.
          if (ac.signal.aborted && e instanceof ClientError && e.code === status.CANCELLED)
            throw new ReportedError('interrupted', 130);
          throw e;
        } finally {
          process.off('SIGINT', stop);
          // The command may end before its input does (a terminal never does).
          if (opts.stdin) process.stdin.destroy();
        }
      });
      if (exitCode !== 0) {
        err(`command terminated with exit code ${exitCode}`);
        throw new ReportedError(`exit code ${exitCode}`, exitCode);
      }
    });
}
