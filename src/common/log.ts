import pino, { type Logger } from 'pino';

export type { Logger };

export interface LogOptions {
  /** pino level name; defaults to $BATON_LOG_LEVEL or "info". */
  level?: string;
  /** Human-readable output; defaults to whether stderr is a terminal. */
  pretty?: boolean;
  /** Write to this file descriptor instead of stderr (2). */
  fd?: number;
}

/**
 * The root logger of a process: JSON lines by default, pretty-printed when a
 * person is watching a terminal. Components take `root.child({ component })`.
 */
export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.BATON_LOG_LEVEL ?? 'info';
  const fd = opts.fd ?? 2;
  const pretty =
    opts.pretty ??
    (process.env.BATON_LOG_PRETTY === '1' || (fd === 2 && process.stderr.isTTY === true));
  const redact = {
    paths: ['*.token', '*.password', '*.secret', 'secret', 'token'],
    censor: '[redacted]',
  };
  if (pretty) {
    return pino({
      level,
      redact,
      transport: {
        target: 'pino-pretty',
        options: { destination: fd, colorize: true, translateTime: 'HH:MM:ss.l' },
      },
    });
  }
  return pino({ level, redact }, pino.destination({ fd, sync: false }));
}

/** A logger that drops everything: for tests and benchmarks that do not want noise. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
