import type { ReadStream } from 'node:tty';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';

/**
 * How `scanbox-cloud operator add|password` gets a password: never from the command line (it would
 * sit in the shell's history and in every process listing), but from standard input with
 * `--password-stdin` (a script, a secret store: one line, its newline dropped), or typed twice at a
 * terminal prompt that does not echo.
 */
export interface PasswordSource {
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  /** Where the prompt is written (stderr: stdout stays for the command's answer). */
  prompt: NodeJS.WritableStream;
}

export async function readPassword(fromStdin: boolean, src: PasswordSource = { stdin: process.stdin, prompt: process.stderr }): Promise<string> {
  if (fromStdin) return (await readAll(src.stdin)).replace(/\r?\n$/, '');
  if (!src.stdin.isTTY) {
    throw new ProtocolError(ErrorCode.SCHEMA_INVALID, 'standard input is not a terminal: pipe the password in with --password-stdin (it is never taken as an argument)');
  }
  const first = await promptHidden(src, 'password: ');
  const again = await promptHidden(src, 'again: ');
  if (first !== again) throw new ProtocolError(ErrorCode.SCHEMA_INVALID, 'the two passwords differ; nothing was changed');
  return first;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks).toString('utf8');
}

/** One line typed with the terminal in raw mode: nothing is echoed; backspace works; Ctrl-C and Ctrl-D give up. */
function promptHidden(src: PasswordSource, question: string): Promise<string> {
  const tty = src.stdin as ReadStream;
  src.prompt.write(question);
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (err?: Error) => {
      tty.setRawMode(false);
      tty.pause();
      tty.off('data', onData);
      src.prompt.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new ProtocolError(ErrorCode.SCHEMA_INVALID, 'no password given; nothing was changed'));
        if (ch === '\u007f' || ch === '\b') typed = [...typed].slice(0, -1).join('');
        else typed += ch;
      }
    };
    tty.setRawMode(true);
    tty.resume();
    tty.on('data', onData);
  });
}
