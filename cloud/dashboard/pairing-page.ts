import QRCode from 'qrcode';
import { pairingQrText } from '../../protocol/index.js';
import type { Merchant } from '../merchants/merchant.js';
import type { IssuedCode } from '../pairing/pairing.js';
import { when } from './format.js';
import { escapeHtml, html, trustedMarkup, type SafeHtml } from './html.js';
import { csrfField, page, type Viewer } from './layout.js';

/**
 * Pairing codes for field engineers, as `scanbox-cloud pair create` makes them: a one-time code for a
 * merchant's store, shown as text and as the QR the box's own scanner reads (it carries the cloud's
 * address too). The QR is the `qrcode` package's SVG, drawn here; nothing is fetched.
 */
function form(viewer: Viewer, merchants: readonly Merchant[], chosen?: { merchantId: string; storeId: string }): SafeHtml {
  if (merchants.length === 0) return html`<p class="flash bad">No merchant yet: add one with <code>scanbox-cloud merchant add</code> first.</p>`;
  return html`<form method="post" action="/dashboard/pairing" class="card">${csrfField(viewer)}
  <label for="merchant">Merchant</label>
  <select id="merchant" name="merchant">${merchants.map((m) => html`<option value="${m.merchantId}"${chosen?.merchantId === m.merchantId ? html` selected` : ''}>${m.merchantId}${m.name ? ` — ${m.name}` : ''}</option>`)}</select>
  <label for="store">Store</label>
  <input id="store" name="store" type="text" required pattern="[A-Za-z0-9_.:\\-]{1,64}" value="${chosen?.storeId ?? ''}">
  <button type="submit">Create pairing code</button>
</form>`;
}

export function pairingPage(viewer: Viewer, merchants: readonly Merchant[], message?: string): string {
  return page(viewer, 'Pair a box', html`${message ? html`<p class="flash bad" role="alert">${message}</p>` : ''}${form(viewer, merchants)}`, { section: '/dashboard/pairing' });
}

/** The QR as inline SVG, named for a screen reader by its code. */
export async function pairingQrSvg(code: string, cloudUrl: string): Promise<SafeHtml> {
  const svg = await QRCode.toString(pairingQrText({ code, cloudUrl }), { type: 'svg', margin: 2, errorCorrectionLevel: 'M' });
  return trustedMarkup(svg.replace('<svg ', `<svg role="img" aria-label="${escapeHtml(`pairing code ${code}`)}" data-code="${escapeHtml(code)}" `));
}

export async function pairingCodePage(viewer: Viewer, merchants: readonly Merchant[], issued: IssuedCode, cloudUrl: string): Promise<string> {
  return page(
    viewer,
    'Pair a box',
    html`<section class="card" id="pairing-code">
  <p>Pairing code <strong class="mono" data-pairing-code>${issued.code}</strong> for merchant <span class="mono">${issued.merchantId}</span>, store <span class="mono">${issued.storeId}</span>.</p>
  <p>Valid until ${when(issued.expiresAt)} UTC, once. The box calls <span class="mono" data-cloud-url>${cloudUrl}</span>.</p>
  <p>On the box: <code>scanbox-device pair --code ${issued.code} --cloud ${cloudUrl} --data /var/lib/scanbox</code>, or scan this with the box's scanner while it is unpaired:</p>
  <div class="qr">${await pairingQrSvg(issued.code, cloudUrl)}</div>
</section>
<h2>Another code</h2>
${form(viewer, merchants, { merchantId: issued.merchantId, storeId: issued.storeId })}`,
    { section: '/dashboard/pairing' },
  );
}
