import { z } from 'zod';

/**
 * The `dashboard` section of the cloud's config (config.ts). Everything has a default: the
 * dashboard is on, at /dashboard on the cloud's HTTP(S) listener, and nobody can log in until an
 * operator is added (`scanbox-cloud operator add NAME`).
 */
const ms = z.number().int().positive();

export const DashboardConfig = z.strictObject({
  enabled: z.boolean().default(true),
  /** A session unused this long is over (the live stream does not count as use)… */
  sessionIdleMs: ms.default(30 * 60_000),
  /** …and any session is over this long after its login. */
  sessionMaxMs: ms.default(12 * 3_600_000),
  /**
   * Refused logins: after `operatorFree` failures of one operator name (or `addressFree` from one
   * address) within `windowMs`, every further try is refused (429) until `baseMs` doubled per extra
   * failure (at most `maxMs`) has passed since the last one — the right password too.
   */
  loginLimit: z
    .strictObject({
      operatorFree: z.number().int().min(1).default(5),
      addressFree: z.number().int().min(1).default(20),
      baseMs: ms.default(1_000),
      maxMs: ms.default(15 * 60_000),
      windowMs: ms.default(15 * 60_000),
    })
    .prefault({}),
  /** The exception desk lists REVERSE_PENDING and REFUND_PENDING attempts older than this (the alert's 10 min). */
  pendingThresholdMs: ms.default(10 * 60_000),
  /** How often the live stream pushes (charts, fleet, boxes): computed once per push for every open dashboard; never more than every 2 s. */
  liveIntervalMs: z.number().int().min(2_000).default(2_000),
  /** Open live streams at most (each is a held connection). */
  maxLiveStreams: z.number().int().min(1).default(200),
  /** Origins (scheme://host[:port]) besides the listener's own and publicHttpUrl's that may POST (a reverse proxy's). */
  allowedOrigins: z.array(z.string().url()).default([]),
});
export type DashboardConfig = z.infer<typeof DashboardConfig>;
