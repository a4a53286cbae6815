import type { IncomingMessage } from 'node:http';
import { ErrorCode, ProtocolError } from '../../protocol/index.js';

/** A dashboard form is a few fields and a note: anything bigger is refused before it is read whole. */
export const MAX_FORM_BYTES = 16 * 1024;

/**
 * The fields of a posted form (`application/x-www-form-urlencoded`, what a plain HTML form and htmx
 * send). Another content type is refused (UNSUPPORTED_MEDIA_TYPE), as is a body over MAX_FORM_BYTES
 * (PAYLOAD_TOO_LARGE).
 */
export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new ProtocolError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, `a dashboard form is sent as application/x-www-form-urlencoded, not "${type.slice(0, 60) || 'no content type'}"`);
  }
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      // Stop reading, but leave the socket to carry the refusal (the caller closes it after).
      if (size > MAX_FORM_BYTES) return void (req.pause(), reject(new ProtocolError(ErrorCode.PAYLOAD_TOO_LARGE, `a dashboard form is at most ${MAX_FORM_BYTES} bytes`)));
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
  return new URLSearchParams(body.toString('utf8'));
}
