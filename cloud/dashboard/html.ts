/**
 * The dashboard's only way to make HTML: a tagged template that escapes every value put into it,
 * unless the value is itself the output of `html` (or `trustedMarkup`, for the one thing the cloud
 * renders with another library: the pairing QR's SVG). A sale reference, a wallet's message or an
 * operator's note is text, whatever characters the register or the wallet chose to send.
 */
const SAFE: unique symbol = Symbol('safe-html');

export interface SafeHtml {
  readonly [SAFE]: true;
  readonly text: string;
}

export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/** Text as it may stand in an element or in a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

function isSafe(v: unknown): v is SafeHtml {
  return typeof v === 'object' && v !== null && (v as SafeHtml)[SAFE] === true;
}

function render(v: HtmlValue): string {
  if (v === null || v === undefined || v === false) return '';
  if (isSafe(v)) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

function safe(text: string): SafeHtml {
  return { [SAFE]: true, text };
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return safe(out);
}

/** Markup made by code the cloud trusts with no outside text in it unescaped (the QR library's SVG). */
export function trustedMarkup(text: string): SafeHtml {
  return safe(text);
}
