import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON lines on stdout. Secrets never reach a log call; the redaction list is a second net for
 * a field someone adds by mistake later.
 */
export function createLogger(level: string = 'info'): Logger {
  return pino({
    level,
    base: { svc: 'scanbox-cloud' },
    redact: { paths: ['secret', 'password', '*.secret', '*.password'], censor: '[redacted]' },
  });
}
