import { z } from 'zod';
import { isProtocolError } from '../../protocol/index.js';
import { parseBrokerUrl } from './external-connection.js';

/**
 * An external MQTT 5 broker instead of the embedded one (cloud/README.md "External broker"). Absent:
 * the cloud runs its embedded broker. The URL carries the cloud's broker user and password: keep it
 * in a 0600 config file or the SCANBOX_CLOUD_BROKER environment variable rather than on a command
 * line others can read.
 */
export const BrokerConfig = z
  .strictObject({
    /** `mqtt(s)://user:password@host:port`: on Mosquitto the dynamic-security admin. */
    url: z.string().superRefine((url, ctx) => {
      try {
        parseBrokerUrl(url);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: isProtocolError(err) ? err.message : 'not a broker URL' });
      }
    }),
    /** The shared-subscription group: the workers of one cloud share it. */
    group: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, '1–64 of A-Z a-z 0-9 _ -').default('scanbox-cloud'),
    /**
     * Who keeps the boxes' accounts: `dynsec`, the cloud on Mosquitto's dynamic-security plugin
     * (dynsec.ts); `http`, nobody: the broker asks the cloud at each login and publish (EMQX's HTTP
     * authenticator and authorizer, cloud/http/emqx-auth.ts).
     */
    accounts: z.enum(['dynsec', 'http']).default('dynsec'),
    /** The value of the `x-scanbox-broker-secret` header the broker sends on its HTTP auth requests (accounts `http`). */
    httpAuthSecret: z.string().min(32).optional(),
    /** PEM CA that signed an mqtts:// broker's certificate, when it is not a public one. */
    caFile: z.string().min(1).optional(),
    /** The worker's keepalive: the broker notices a dead worker, and hands its share on, after 1.5 of these. */
    keepaliveS: z.number().int().min(1).max(600).default(10),
  })
  .superRefine((b, ctx) => {
    if (b.accounts === 'http' && !b.httpAuthSecret) ctx.addIssue({ code: 'custom', path: ['httpAuthSecret'], message: 'accounts "http" needs httpAuthSecret (32 characters or more), the header value the broker sends' });
  });
export type BrokerConfig = z.infer<typeof BrokerConfig>;
