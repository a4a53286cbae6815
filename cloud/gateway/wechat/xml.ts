import { SOURCES } from './sources.js';

/**
 * The flat `<xml>` format of WeChat Pay v2: one root `<xml>`, each field a child element holding text
 * (WeChat sends CDATA for strings, plain text for numbers). Hand-written on purpose: the format is flat,
 * and a parser that knows no DOCTYPE or entity declaration cannot be led into XXE or entity expansion
 * (SOURCES.xmlSecurity). Anything that is not this format is refused with a `WechatXmlError` — the
 * caller turns that into an "unknown" outcome, never a failure or a success.
 */
export const MAX_XML_BYTES = 64 * 1024;

export type WechatXmlErrorKind = 'TOO_LARGE' | 'NOT_UTF8' | 'MALFORMED' | 'NOT_FLAT' | 'DUPLICATE_FIELD' | 'FORBIDDEN';

export class WechatXmlError extends Error {
  override readonly name = 'WechatXmlError';
  constructor(
    readonly kind: WechatXmlErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Field names WeChat uses: `appid`, `refund_fee_0`, `coupon_id_1`… */
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Characters XML 1.0 cannot carry at all (C0 controls but tab, LF, CR; lone surrogates; U+FFFE/U+FFFF). */
const NOT_XML_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * `<xml><k><![CDATA[v]]></k>…</xml>`, fields in the order given. Every value goes in CDATA (a `]]>`
 * inside a value is split across two sections), so `<`, `&` and quotes need no escaping.
 */
export function encodeXml(params: Readonly<Record<string, string>>): string {
  let out = '<xml>';
  for (const [k, v] of Object.entries(params)) {
    if (!NAME.test(k)) throw new WechatXmlError('MALFORMED', `wechat xml: bad field name ${JSON.stringify(k)}`);
    if (typeof v !== 'string') throw new WechatXmlError('MALFORMED', `wechat xml: field ${k} is not a string`);
    if (NOT_XML_CHAR.test(v)) throw new WechatXmlError('MALFORMED', `wechat xml: field ${k} holds a character XML cannot carry`);
    out += `<${k}><![CDATA[${v.split(']]>').join(']]]]><![CDATA[>')}]]></${k}>`;
  }
  return `${out}</xml>`;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeText(raw: string, field: string): string {
  return raw.replace(/&([^;&<]*);?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw new WechatXmlError('MALFORMED', `wechat xml: bare '&' in ${field}`);
    const named = ENTITIES[ref];
    if (named !== undefined) return named;
    const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(ref);
    const cp = m ? parseInt(m[1] ?? m[2] ?? '', m[1] ? 16 : 10) : NaN;
    if (!Number.isInteger(cp) || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      // Only the five predefined entities and character references exist without a DTD.
      throw new WechatXmlError('FORBIDDEN', `wechat xml: unknown entity &${ref}; in ${field}`);
    }
    return String.fromCodePoint(cp);
  });
}

/**
 * Parse a flat v2 answer into its fields. Refused: more than `maxBytes` (checked before anything is
 * read), bytes that are not UTF-8, a DOCTYPE or any declaration, processing instructions after the
 * XML declaration, nested elements, attributes, a field given twice (the signature and the reader
 * could otherwise see different values), unknown entities, text outside the fields, anything after
 * `</xml>`. CDATA and text are taken verbatim (not trimmed): the signature is over exactly these values.
 */
export function decodeXml(body: string | Uint8Array, opts: { maxBytes?: number } = {}): Record<string, string> {
  const maxBytes = opts.maxBytes ?? MAX_XML_BYTES;
  const size = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
  if (size > maxBytes) throw new WechatXmlError('TOO_LARGE', `wechat xml: ${size} bytes, more than ${maxBytes}`);
  let s: string;
  if (typeof body === 'string') s = body;
  else {
    try {
      s = new TextDecoder('utf-8', { fatal: true }).decode(body);
    } catch {
      throw new WechatXmlError('NOT_UTF8', 'wechat xml: the body is not UTF-8');
    }
  }
  if (NOT_XML_CHAR.test(s)) throw new WechatXmlError('MALFORMED', 'wechat xml: a character XML cannot carry');
  const fields = Object.create(null) as Record<string, string>;
  let i = s.startsWith('\uFEFF') ? 1 : 0;

  const fail = (kind: WechatXmlErrorKind, what: string): never => {
    throw new WechatXmlError(kind, `wechat xml: ${what} at offset ${i}`);
  };
  const skipSpace = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };
  /** Whitespace and comments between elements. */
  const skipMisc = () => {
    for (;;) {
      skipSpace();
      if (!s.startsWith('<!--', i)) return;
      const end = s.indexOf('-->', i + 4);
      if (end < 0) fail('MALFORMED', 'unterminated comment');
      i = end + 3;
    }
  };

  skipSpace();
  if (s.startsWith('<?xml', i)) {
    const end = s.indexOf('?>', i);
    if (end < 0) fail('MALFORMED', 'unterminated XML declaration');
    i = end + 2;
  }
  skipMisc();
  if (s.startsWith('<!', i)) fail('FORBIDDEN', 'a declaration (DOCTYPE/ENTITY)');
  if (s.startsWith('<?', i)) fail('FORBIDDEN', 'a processing instruction');
  const root = /^<xml\s*>/.exec(s.slice(i, i + 16));
  if (!root) fail('MALFORMED', 'no <xml> root');
  i += root![0].length;

  for (;;) {
    skipMisc();
    if (i >= s.length) fail('MALFORMED', 'missing </xml>');
    if (s[i] !== '<') fail('MALFORMED', 'text outside a field');
    if (s.startsWith('</', i)) {
      const close = /^<\/xml\s*>/.exec(s.slice(i, i + 16));
      if (!close) fail('MALFORMED', 'unexpected closing tag');
      i += close![0].length;
      break;
    }
    if (s.startsWith('<!', i)) fail(s.startsWith('<![CDATA[', i) ? 'MALFORMED' : 'FORBIDDEN', 'a declaration or CDATA outside a field');
    if (s.startsWith('<?', i)) fail('FORBIDDEN', 'a processing instruction');
    const open = /^<([A-Za-z_][A-Za-z0-9_]*)\s*(\/?)>/.exec(s.slice(i, i + 200));
    if (!open) fail('MALFORMED', 'a tag that is not a plain field (attributes? bad name?)');
    const name = open![1]!;
    i += open![0].length;
    let value = '';
    if (open![2] !== '/') {
      for (;;) {
        const lt = s.indexOf('<', i);
        if (lt < 0) fail('MALFORMED', `unterminated field ${name}`);
        value += decodeText(s.slice(i, lt), name);
        i = lt;
        if (s.startsWith('<![CDATA[', i)) {
          const end = s.indexOf(']]>', i + 9);
          if (end < 0) fail('MALFORMED', `unterminated CDATA in ${name}`);
          value += s.slice(i + 9, end);
          i = end + 3;
          continue;
        }
        if (s.startsWith('</', i)) {
          const close = /^<\/([A-Za-z_][A-Za-z0-9_]*)\s*>/.exec(s.slice(i, i + 200));
          if (!close || close[1] !== name) fail('MALFORMED', `field ${name} closed by another tag`);
          i += close![0].length;
          break;
        }
        if (s.startsWith('<!--', i)) fail('MALFORMED', `a comment inside field ${name}`);
        fail(s.startsWith('<!', i) || s.startsWith('<?', i) ? 'FORBIDDEN' : 'NOT_FLAT', `markup inside field ${name}`);
      }
    }
    if (Object.prototype.hasOwnProperty.call(fields, name)) fail('DUPLICATE_FIELD', `field ${name} given twice`);
    fields[name] = value;
  }
  skipMisc();
  if (i !== s.length) fail('MALFORMED', 'content after </xml>');
  return fields;
}

export const XML_SOURCE = SOURCES.xmlSecurity;
