import { ChildProcess, execFile, spawn } from 'node:child_process';
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

export interface RunningCli {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves once the process exited. */
  done: Promise<CliResult>;
}

/** Starts the real `baton` CLI and leaves it running: for streams a test feeds stdin to, or interrupts. */
export function startBaton(
  server: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): RunningCli {
  const child = spawn(process.execPath, [BATON_BIN, ...args], {
    env: {
      ...process.env,
      BATON_SERVER: server,
      BATON_CONFIG: '/nonexistent/baton-config',
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let errText = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (errText += d.toString()));
  const done = new Promise<CliResult>((resolve) =>
    child.once('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: out, stderr: errText }),
    ),
  );
  return { child, stdout: () => out, stderr: () => errText, done };
}
