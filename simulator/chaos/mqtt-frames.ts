/**
 * Just enough MQTT framing for the fault proxy: split a byte stream into whole control packets,
 * read the client id from CONNECT, and tell PUBLISH packets apart. It never rewrites a packet.
 */
export const PACKET_CONNECT = 1;
export const PACKET_PUBLISH = 3;

export function packetType(packet: Buffer): number {
  return packet[0]! >> 4;
}

/** Accumulates chunks and yields complete packets; incomplete tails wait for more bytes. */
export class MqttFramer {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const packets: Buffer[] = [];
    for (let len = frameLength(this.buf); len > 0 && len <= this.buf.length; len = frameLength(this.buf)) {
      packets.push(this.buf.subarray(0, len));
      this.buf = this.buf.subarray(len);
    }
    return packets;
  }
}

/** Total length of the first packet in `buf`, or 0 when its header is not complete yet. */
function frameLength(buf: Buffer): number {
  const v = readVarint(buf, 1);
  return v ? 1 + v.bytes + v.value : 0;
}

function readVarint(buf: Buffer, offset: number): { value: number; bytes: number } | undefined {
  let value = 0;
  for (let i = 0; i < 4; i++) {
    const b = buf[offset + i];
    if (b === undefined) return undefined;
    value += (b & 0x7f) * 128 ** i;
    if ((b & 0x80) === 0) return { value, bytes: i + 1 };
  }
  throw new Error('malformed MQTT remaining length');
}

/** Client id of a CONNECT packet (MQTT 3.1.1 or 5), or undefined for anything else. */
export function connectClientId(packet: Buffer): string | undefined {
  if (packetType(packet) !== PACKET_CONNECT) return undefined;
  const header = readVarint(packet, 1);
  if (!header) return undefined;
  let at = 1 + header.bytes;
  at += 2 + packet.readUInt16BE(at); // protocol name
  const level = packet[at]!;
  at += 1 + 1 + 2; // level, flags, keep-alive
  if (level === 5) {
    const props = readVarint(packet, at);
    if (!props) return undefined;
    at += props.bytes + props.value;
  }
  const len = packet.readUInt16BE(at);
  return packet.subarray(at + 2, at + 2 + len).toString('utf8');
}
