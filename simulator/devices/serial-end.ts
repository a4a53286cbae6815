import { SerialPort } from 'serialport';

/**
 * The simulator's end of a serial line: the scanner or cash register side, facing the box's agent
 * on the other end. Implemented over a real pseudo-terminal (openSerialEnd) and over serialport's
 * mock binding (MockSerialLine).
 */
export interface SerialEnd {
  write(data: Buffer | string): Promise<void>;
  /** Bytes the box wrote; returns the unsubscribe function. */
  onData(listener: (chunk: Buffer) => void): () => void;
  close(): Promise<void>;
}

/** Opens one end of a pty pair (or any serial device path) as a SerialEnd. Baud is ignored on a pty. */
export async function openSerialEnd(path: string, baudRate = 9600): Promise<SerialEnd> {
  const port = new SerialPort({ path, baudRate, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return {
    write: (data) =>
      new Promise<void>((resolve, reject) => {
        // serialport would queue the bytes until a reopen that never comes: a pulled cable loses them.
        if (!port.isOpen) return reject(new Error(`${path} is not open (unplugged?)`));
        port.write(data, (err) => (err ? reject(err) : port.drain((e) => (e ? reject(e) : resolve()))));
      }),
    onData: (listener) => {
      port.on('data', listener);
      return () => port.off('data', listener);
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
  };
}
