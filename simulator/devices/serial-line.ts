import { onPath } from '../system-tools.js';
import { PtyPair } from './pty.js';
import type { SerialEnd } from './serial-end.js';
import { SocketLine } from './socket-line.js';

/**
 * A box's serial line as the simulator plugs it in: the path the box's agent opens (`a`) and the
 * simulator's far end. `pty`: a socat pseudo-terminal pair, the agent on the real serialport
 * binding, as on a box. `mock`: the agent on serialport's mock binding (`start --serial mock`) and
 * its far end on a Unix socket, for a machine without socat.
 */
export interface SerialLine {
  readonly a: string;
  /** The simulator's end as a path an outside program opens (a POS on the ECR line): pseudo-terminals only. */
  readonly b: string;
  openEnd(): Promise<SerialEnd>;
  close(): Promise<void>;
}

export type SerialMode = 'pty' | 'mock';
export type SerialModeRequest = SerialMode | 'auto';
export const SERIAL_MODE_REQUESTS: readonly SerialModeRequest[] = ['auto', 'pty', 'mock'];

/** `name`: scanner or ecr; the box's end is `<dir>/<name>-box` (pty) or `<dir>/<name>-box.sock` (mock). */
export function createSerialLine(mode: SerialMode, opts: { dir: string; name: string }): Promise<SerialLine> {
  if (mode === 'mock') return SocketLine.create({ dir: opts.dir, name: `${opts.name}-box` });
  return PtyPair.create({ dir: opts.dir, names: [`${opts.name}-box`, `${opts.name}-sim`] });
}

/** `auto`: pseudo-terminals when socat is installed, else the mock binding; `why` says which and why, for the story's first lines. */
export function chooseSerialMode(requested: SerialModeRequest, socat: boolean = onPath('socat')): { mode: SerialMode; why: string } {
  const mock = "serialport's mock binding inside the box's process, its scanner and cash-register ends on Unix sockets";
  if (requested === 'pty') return { mode: 'pty', why: 'pseudo-terminals from socat (--serial pty)' };
  if (requested === 'mock') return { mode: 'mock', why: `${mock} (--serial mock)` };
  if (socat) return { mode: 'pty', why: 'pseudo-terminals from socat' };
  return { mode: 'mock', why: `${mock}: socat is not installed (sudo apt-get install -y socat for real pseudo-terminals)` };
}
