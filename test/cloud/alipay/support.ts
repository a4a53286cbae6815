import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';

/**
 * Test keys, made at test time and never written anywhere: the app's key pair (we sign requests), Alipay's key
 * pair (the fake gateway signs answers) and a stranger's (a forger). RSA 2048 like Alipay's key tool.
 */
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  privatePem: string;
  publicPem: string;
}

function pair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privateKey,
    publicKey,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

let cached: { app: KeyPair; alipay: KeyPair; stranger: KeyPair } | undefined;
export function keys(): { app: KeyPair; alipay: KeyPair; stranger: KeyPair } {
  cached ??= { app: pair(), alipay: pair(), stranger: pair() };
  return cached;
}

/** SHA256WithRSA over the UTF-8 bytes, base64: what Alipay does, written here without the code under test. */
export function rsa2(text: string, key: KeyObject): string {
  return sign('sha256', Buffer.from(text, 'utf8'), key).toString('base64');
}

/**
 * A gateway answer as Alipay frames it: `{"<method>_response":<nodeText>,"sign":"…"}`, the signature made over
 * nodeText exactly as given (its whitespace, key order and escapes are what is signed).
 */
export function alipayBody(method: string, nodeText: string, key: KeyObject = keys().alipay.privateKey): string {
  const nodeKey = `${method.split('.').join('_')}_response`;
  return `{"${nodeKey}":${nodeText},"sign":"${rsa2(nodeText, key)}"}`;
}
