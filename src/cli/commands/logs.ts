/**
 * `baton logs POD`: a container's output, streamed from its node through a
 * master, with kubectl's flags (-c, -f, --tail, -p).
 */
import { Command, InvalidArgumentError } from 'commander';
import { once } from 'node:events';
import { withClient } from '../output';

interface LogsOpts {
  container?: string;
  follow?: boolean;
  tail: number;
  previous?: boolean;
}

function lineCount(v: string): number {
  if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError('expected a whole number of lines');
  return Number(v);
}

export function logsCommand(): Command {
  return new Command('logs')
    .description("print a pod's container output")
    .argument('<pod>')
    .option('-c, --container <name>', "which container (default: the pod's first container)")
    .option('-f, --follow', 'keep streaming new output until interrupted')
    .option('--tail <lines>', 'only the last lines (-1: all)', lineCount, -1)
    .option('-p, --previous', 'the previous, terminated attempt of the container')
    .action(async (pod: string, opts: LogsOpts, cmd: Command) => {
      await withClient(cmd, async (client, namespace) => {
        const ac = new AbortController();
        const stop = () => ac.abort();
        process.once('SIGINT', stop);
        try {
          for await (const chunk of client.logs(
            {
              namespace,
              name: pod,
              container: opts.container ?? '',
              follow: opts.follow ?? false,
              tailLines: opts.tail,
              previous: opts.previous ?? false,
            },
            ac.signal,
          )) {
            if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
          }
        } finally {
          process.off('SIGINT', stop);
        }
      });
    });
}
