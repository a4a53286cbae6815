import { z } from 'zod';
import { merchantId } from '../gateway/gateway.js';

/**
 * A merchant under the provider's account: the boxes paired to it pay into it. Its wallet ids are
 * what the provider's adapters name on every call (service-provider / ISV mode): WeChat's
 * `sub_mch_id`, Alipay's `app_auth_token` (the merchant's authorisation of the provider's app).
 */
export interface Merchant {
  merchantId: string;
  name: string | null;
  wechatSubMchId: string | null;
  alipayAppAuthToken: string | null;
  createdAt: number;
  updatedAt: number;
}

/** What `merchant add|set` may change; absent keeps, null clears. */
export const MerchantPatch = z.strictObject({
  name: z.string().min(1).max(64).nullable().optional(),
  /** WeChat Pay sub-merchant number: digits. */
  wechatSubMchId: z.string().regex(/^[0-9]{1,32}$/, 'WeChat sub_mch_id is 1–32 digits').nullable().optional(),
  /** Alipay app_auth_token: letters, digits and dots as Alipay issues them. */
  alipayAppAuthToken: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'Alipay app_auth_token is 1–64 of A-Z a-z 0-9 . _ -').nullable().optional(),
});
export type MerchantPatch = z.infer<typeof MerchantPatch>;
export { merchantId };

/** How an adapter finds a merchant's wallet ids. */
export type MerchantLookup = (merchantId: string) => Promise<Merchant | undefined>;

/** Adds the merchant, with no wallet sub-ids, unless it exists (benchmarks and tests that pair boxes in bulk). */
export async function ensureMerchant(store: { getMerchant: MerchantLookup; addMerchant(id: string, patch: MerchantPatch, now: number): Promise<Merchant> }, merchantId: string, now = Date.now()): Promise<void> {
  if (!(await store.getMerchant(merchantId))) await store.addMerchant(merchantId, {}, now);
}
