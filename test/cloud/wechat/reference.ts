import { createHash, createHmac } from 'node:crypto';

/**
 * An independent re-implementation of the WeChat Pay v2 signature, written from the doc's steps and
 * sharing no code with cloud/gateway/wechat/sign.ts, plus a plain XML writer for answers. The tests
 * play "WeChat" with these.
 */
export const PUBLISHED = {
  // From the "签名算法" page's worked example (see SOURCES.sign).
  key: '192006250b4c09247ec02edce69f6a2d',
  params: { appid: 'wxd930ea5d5a258f4f', mch_id: '10000100', device_info: '1000', body: 'test', nonce_str: 'ibuaiVcKdpRxkhJA' },
  stringA: 'appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100&nonce_str=ibuaiVcKdpRxkhJA',
  md5: '9A0A8659F005D6984697E2CA0A9CF3B7',
  hmacSha256: '6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6',
} as const;

export function refSign(fields: Record<string, string>, key: string, type: 'MD5' | 'HMAC-SHA256'): string {
  const pairs: [string, string][] = [];
  for (const k in fields) {
    const v = fields[k]!;
    if (k === 'sign' || v === '') continue;
    pairs.push([k, v]);
  }
  // Byte-wise comparison of the (ASCII) names is the doc's "ASCII码从小到大".
  pairs.sort((a, b) => Buffer.compare(Buffer.from(a[0], 'latin1'), Buffer.from(b[0], 'latin1')));
  let temp = '';
  pairs.forEach(([k, v], n) => {
    temp += (n === 0 ? '' : '&') + k + '=' + v;
  });
  temp += '&key=' + key;
  const bytes = Buffer.from(temp, 'utf8');
  const hex = type === 'MD5' ? createHash('md5').update(bytes).digest('hex') : createHmac('sha256', Buffer.from(key, 'utf8')).update(bytes).digest('hex');
  return hex.toUpperCase();
}

/** An answer as WeChat writes it: CDATA strings, one field per line. */
export function refXml(fields: Record<string, string>): string {
  const lines = Object.entries(fields).map(([k, v]) => (/^\d+$/.test(v) ? `<${k}>${v}</${k}>` : `<${k}><![CDATA[${v}]]></${k}>`));
  return `<xml>\n${lines.join('\n')}\n</xml>`;
}

/** `fields` signed under `key` (or with `sign` as given: null leaves it out), as XML. */
export function signedAnswer(fields: Record<string, string>, key: string, type: 'MD5' | 'HMAC-SHA256', sign?: string | null): string {
  const s = sign === undefined ? refSign(fields, key, type) : sign;
  return refXml(s === null ? fields : { ...fields, sign: s });
}
