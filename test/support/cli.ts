import { execFile } from 'node:child_process';
import { BATON_BIN } from './master-cluster';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `baton` CLI as a child process (asynchronously, so masters
 * in this process keep serving) against `server`, with no config file.
 */
export function runBaton(
  server: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [BATON_BIN, ...args],
      {
        env: {
          ...process.env,
          BATON_SERVER: server,
          BATON_CONFIG: '/nonexistent/baton-config',
          ...env,
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
    ),
  );
}
