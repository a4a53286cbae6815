import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeXml, encodeXml, MAX_XML_BYTES, WechatXmlError, type WechatXmlErrorKind } from '../../../cloud/gateway/wechat/xml.js';

function refusal(body: string | Uint8Array, opts?: { maxBytes?: number }): WechatXmlErrorKind | 'accepted' {
  try {
    decodeXml(body, opts);
    return 'accepted';
  } catch (err) {
    if (err instanceof WechatXmlError) return err.kind;
    throw err;
  }
}

describe('WeChat v2 XML: encode', () => {
  it('puts every value in CDATA inside one <xml> root', () => {
    expect(encodeXml({ appid: 'wx1', total_fee: '100' })).toBe('<xml><appid><![CDATA[wx1]]></appid><total_fee><![CDATA[100]]></total_fee></xml>');
  });
  it('carries markup characters without escaping, and splits a ]]> across two CDATA sections', () => {
    const xml = encodeXml({ body: 'a<b>&"\'c]]>d' });
    expect(xml).toBe("<xml><body><![CDATA[a<b>&\"'c]]]]><![CDATA[>d]]></body></xml>");
    expect(decodeXml(xml)).toEqual({ body: 'a<b>&"\'c]]>d' });
  });
  it('refuses a field name that is not a name, and characters XML cannot carry', () => {
    expect(() => encodeXml({ 'a b': 'x' })).toThrow(WechatXmlError);
    expect(() => encodeXml({ '<x>': 'x' })).toThrow(WechatXmlError);
    expect(() => encodeXml({ body: 'a\u0000b' })).toThrow(WechatXmlError);
    expect(() => encodeXml({ body: 'a\u0007b' })).toThrow(WechatXmlError);
  });
  it('round trips any XML-legal text', () => {
    const legal = fc.string({ unit: 'grapheme', maxLength: 30 }).filter((s) => !/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/.test(s));
    const params = fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,10}$/), legal, { maxKeys: 10 });
    fc.assert(fc.property(params, (p) => void expect(decodeXml(encodeXml(p))).toEqual(p)), { numRuns: 300 });
  });
});

describe('WeChat v2 XML: decode', () => {
  it('reads an answer as WeChat writes it: CDATA strings, plain numbers, newlines between fields', () => {
    const body = `<xml>
   <return_code><![CDATA[SUCCESS]]></return_code>
   <return_msg><![CDATA[OK]]></return_msg>
   <total_fee>888</total_fee>
   <err_code_des><![CDATA[需要用户输入支付密码]]></err_code_des>
</xml>`;
    expect(decodeXml(body)).toEqual({ return_code: 'SUCCESS', return_msg: 'OK', total_fee: '888', err_code_des: '需要用户输入支付密码' });
  });
  it('accepts an XML declaration, a BOM, comments between fields, empty and self-closed fields', () => {
    const body = '\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<!-- hi --><xml><a></a><b/><!-- x --><c>1</c></xml>\n';
    expect(decodeXml(body)).toEqual({ a: '', b: '', c: '1' });
  });
  it('decodes the predefined entities and character references in plain text, and takes text verbatim', () => {
    expect(decodeXml('<xml><a>x &lt;&amp;&gt;&quot;&apos; &#25195;&#x7801;</a><b> sp </b></xml>')).toEqual({ a: 'x <&>"\' 扫码', b: ' sp ' });
  });
  it('joins text and several CDATA sections of one field', () => {
    expect(decodeXml('<xml><a>1<![CDATA[<2>]]>3<![CDATA[]]></a></xml>')).toEqual({ a: '1<2>3' });
  });
  it('reads bytes as UTF-8', () => {
    expect(decodeXml(Buffer.from('<xml><a><![CDATA[微信]]></a></xml>', 'utf8'))).toEqual({ a: '微信' });
  });
  it('a __proto__ field is just a field', () => {
    const f = decodeXml('<xml><__proto__>x</__proto__><a>1</a></xml>');
    expect(f.a).toBe('1');
    expect(Object.getOwnPropertyNames(f).sort()).toEqual(['__proto__', 'a']);
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });
});

describe('WeChat v2 XML: refused', () => {
  it('more bytes than the cap, before reading them (string and bytes); the cap itself is allowed', () => {
    const pad = 'x'.repeat(MAX_XML_BYTES);
    expect(refusal(`<xml><a>${pad}</a></xml>`)).toBe('TOO_LARGE');
    expect(refusal(Buffer.from(`<xml><a>${pad}</a></xml>`))).toBe('TOO_LARGE');
    expect(refusal('<xml><a>1</a></xml>', { maxBytes: 19 })).toBe('accepted');
    expect(refusal('<xml><a>1</a></xml>', { maxBytes: 18 })).toBe('TOO_LARGE');
    // multi-byte characters count as bytes: 19 characters, 21 bytes
    expect(refusal('<xml><a>微</a></xml>', { maxBytes: 21 })).toBe('accepted');
    expect(refusal('<xml><a>微</a></xml>', { maxBytes: 20 })).toBe('TOO_LARGE');
  });
  it('a DOCTYPE, an ENTITY, an unknown entity (XXE)', () => {
    expect(refusal('<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><a>&x;</a></xml>')).toBe('FORBIDDEN');
    expect(refusal('<?xml version="1.0"?><!DOCTYPE xml><xml><a>1</a></xml>')).toBe('FORBIDDEN');
    expect(refusal('<xml><!ENTITY x "y"><a>1</a></xml>')).toBe('FORBIDDEN');
    expect(refusal('<xml><a>&x;</a></xml>')).toBe('FORBIDDEN');
    expect(refusal('<xml><a><!DOCTYPE x></a></xml>')).toBe('FORBIDDEN');
    expect(refusal('<xml><?php x ?><a>1</a></xml>')).toBe('FORBIDDEN');
  });
  it('nested elements', () => {
    expect(refusal('<xml><a><b>1</b></a></xml>')).toBe('NOT_FLAT');
  });
  it('a field given twice', () => {
    expect(refusal('<xml><total_fee>1</total_fee><total_fee>100</total_fee></xml>')).toBe('DUPLICATE_FIELD');
  });
  it('bytes that are not UTF-8', () => {
    expect(refusal(Uint8Array.from([0x3c, 0x78, 0x6d, 0x6c, 0x3e, 0xff, 0xfe, 0x3c, 0x2f, 0x78, 0x6d, 0x6c, 0x3e]))).toBe('NOT_UTF8');
  });
  const malformed: [string, string][] = [
    ['empty body', ''],
    ['not XML at all', 'SUCCESS'],
    ['JSON', '{"return_code":"SUCCESS"}'],
    ['another root', '<root><a>1</a></root>'],
    ['no closing root', '<xml><a>1</a>'],
    ['unterminated field', '<xml><a>1'],
    ['field closed by another tag', '<xml><a>1</b></xml>'],
    ['attributes', '<xml><a x="1">1</a></xml>'],
    ['root with attributes', '<xml x="1"><a>1</a></xml>'],
    ['text outside fields', '<xml>oops<a>1</a></xml>'],
    ['content after </xml>', '<xml><a>1</a></xml><b>2</b>'],
    ['a second document', '<xml></xml><xml></xml>'],
    ['a bare ampersand', '<xml><a>1 & 2</a></xml>'],
    ['unterminated CDATA', '<xml><a><![CDATA[1</a></xml>'],
    ['CDATA outside a field', '<xml><![CDATA[x]]></xml>'],
    ['unterminated comment', '<xml><!-- x <a>1</a></xml>'],
    ['a NUL character', '<xml><a>1\u0000</a></xml>'],
    ['a field name that starts with a digit', '<xml><1a>1</1a></xml>'],
  ];
  for (const [what, body] of malformed) {
    it(`malformed: ${what}`, () => {
      const r = refusal(body);
      expect(r).not.toBe('accepted');
      expect(['MALFORMED', 'NOT_FLAT', 'FORBIDDEN']).toContain(r);
    });
  }
  it('never throws anything but WechatXmlError, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b))), (body) => {
        try {
          decodeXml(body);
        } catch (err) {
          expect(err).toBeInstanceOf(WechatXmlError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
