import { execFileSync, spawnSync } from 'node:child_process';

/** Why terminal tests cannot run here, or undefined when tmux works. */
export function tmuxMissing(): string | undefined {
  const r = spawnSync('tmux', ['-V'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'tmux is not installed (apt-get install tmux)';
}

/**
 * A command in a detached tmux session of a fixed size: a real terminal
 * (the program sees a TTY), and `screen()` is what a person would see on
 * it now, with colours and cursor movements already applied.
 */
export class TmuxSession {
  private static next = 0;
  readonly name = `baton-test-${process.pid}-${TmuxSession.next++}`;

  constructor(command: string, env: NodeJS.ProcessEnv, width = 160, height = 50) {
    // The exit status is written on the screen, as a person would see it with
    // `echo $?`, and the pane stays (until kill) so its last screen can be read.
    const wrapped = `${command}; echo "[exit $?]"; exec sleep 86400`;
    execFileSync(
      'tmux',
      ['new-session', '-d', '-s', this.name, '-x', String(width), '-y', String(height), wrapped],
      { env: { ...process.env, ...env, TERM: 'xterm-256color' } },
    );
  }

  /** The visible screen, trailing blank lines dropped. */
  screen(): string {
    return execFileSync('tmux', ['capture-pane', '-p', '-t', this.name], { encoding: 'utf8' })
      .replace(/\s+$/, '')
      .split('\n')
      .map((l) => l.trimEnd())
      .join('\n');
  }

  /** The screen with its escape sequences (-e): to see where colours are. */
  screenWithColours(): string {
    return execFileSync('tmux', ['capture-pane', '-p', '-e', '-t', this.name], {
      encoding: 'utf8',
    });
  }

  /** The command's exit status once it has exited (undefined before). */
  exitStatus(): number | undefined {
    const m = /\[exit (\d+)\]$/.exec(this.screen());
    return m ? Number(m[1]) : undefined;
  }

  /** The screen without the exit status line. */
  output(): string {
    return this.screen().replace(/\n?\[exit \d+\]$/, '');
  }

  sendKeys(...keys: string[]): void {
    execFileSync('tmux', ['send-keys', '-t', this.name, ...keys]);
  }

  kill(): void {
    spawnSync('tmux', ['kill-session', '-t', this.name]);
  }
}
