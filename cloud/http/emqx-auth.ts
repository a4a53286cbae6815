import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { ALL_UP_FILTER, decodeJson, isProtocolError, parseTopic } from '../../protocol/index.js';
import type { Clock } from '../../protocol/clock.js';
import type { DeviceAuthenticator } from '../broker/device-auth.js';
import { sharedUpFilter } from '../broker/external-link.js';
import { publishRefusal, subscribeRefusal } from '../broker/topic-rules.js';
import type { Logger } from '../log.js';
import { LogThrottle } from '../log-throttle.js';
import type { Metrics } from '../metrics.js';
import { readBody } from './public-api.js';

/**
 * EMQX 5's HTTP authenticator and HTTP authorizer, served by the cloud on its HTTP listener: EMQX
 * asks at each box login and at each publish and subscribe (its authorization cache aside), and the
 * cloud answers from its store with the rules of the embedded broker. A login is checked by the
 * same DeviceAuthenticator as the embedded broker's, with the same backoff (a wrong secret's answer
 * is held back); a box may publish on its own up/ and subscribe to its own down/ only. The cloud's
 * own workers log in as the user of their `--broker` URL and may take the shared subscription of
 * their group and publish on every down/.
 *
 * EMQX sends a header configured on its side (`x-scanbox-broker-secret`) with each request: without
 * it the answer is "deny". Every answer is 200 with `allow` or `deny` and never `ignore` or an error
 * status: EMQX reads a 4xx/5xx as "ignore", and an authorization nobody decides falls to EMQX's
 * `no_match`, which allows by default. A malformed request is refused and logged instead.
 *
 * The request bodies are templates set in EMQX (deploy/README.md "EMQX"):
 *   authentication: {"clientid":"${clientid}","username":"${username}","password":"${password}","peerhost":"${peerhost}"}
 *   authorization:  {"clientid":"${clientid}","username":"${username}","topic":"${topic}","action":"${action}"}
 */
export const EMQX_AUTHN_PATH = '/v1/broker/emqx/authn';
export const EMQX_AUTHZ_PATH = '/v1/broker/emqx/authz';
export const BROKER_SECRET_HEADER = 'x-scanbox-broker-secret';

const text = z.string().max(1024);
const AuthnRequest = z.object({ clientid: text, username: text.optional(), password: text.optional(), peerhost: text.optional() });
const AuthzRequest = z.object({ clientid: text, username: text.optional(), topic: text, action: text });

export interface EmqxAuthDeps {
  auth: DeviceAuthenticator;
  /** The header value EMQX is configured to send. */
  secret: string;
  /** The cloud's own broker user (the `--broker` URL's) and its shared-subscription group. */
  service: { username: string; password: string; group: string };
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
}

type Verdict = { result: 'allow' | 'deny'; why?: string };

export class EmqxAuth {
  private readonly logs = new LogThrottle(60_000);
  private readonly secret: Buffer;

  constructor(private readonly deps: EmqxAuthDeps) {
    this.secret = Buffer.from(deps.secret);
  }

  handles(path: string): boolean {
    return path === EMQX_AUTHN_PATH || path === EMQX_AUTHZ_PATH;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const authn = path === EMQX_AUTHN_PATH;
    const verdict = await this.decide(req, authn).catch((err: unknown): Verdict => {
      this.deps.logger.error({ err: (err as Error).message, path }, 'EMQX auth request failed; answered deny');
      return { result: 'deny', why: 'internal error' };
    });
    // is_superuser false: no box and no worker skips the authorizer.
    const body = authn ? { result: verdict.result, is_superuser: false } : { result: verdict.result };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  private async decide(req: IncomingMessage, authn: boolean): Promise<Verdict> {
    if (req.method !== 'POST') return this.malformed(`${req.method} instead of POST`);
    if (!this.fromBroker(req)) {
      this.deps.metrics.inc('auth_refused_total', 'broker secret missing or wrong');
      return this.malformed(`no ${BROKER_SECRET_HEADER} header, or a wrong one: set it in EMQX's HTTP authenticator and authorizer`, req.socket.remoteAddress);
    }
    const raw = await readBody(req);
    try {
      return authn ? await this.authenticate(decodeJson(AuthnRequest, raw, 'EMQX authentication request')) : this.authorize(decodeJson(AuthzRequest, raw, 'EMQX authorization request'));
    } catch (err) {
      if (isProtocolError(err)) return this.malformed(`${err.message} (check the request body template in EMQX)`);
      throw err;
    }
  }

  private async authenticate(r: z.infer<typeof AuthnRequest>): Promise<Verdict> {
    const username = r.username || undefined;
    const password = r.password ? Buffer.from(r.password) : undefined;
    if (username === this.deps.service.username) return this.serviceLogin(password);
    const v = await this.deps.auth.check(r.clientid, username, password, r.peerhost || 'unknown');
    return v.ok ? { result: 'allow' } : { result: 'deny', why: v.why };
  }

  private serviceLogin(password: Buffer | undefined): Verdict {
    const expected = Buffer.from(this.deps.service.password);
    const ok = password !== undefined && password.length === expected.length && timingSafeEqual(password, expected);
    if (!ok) this.deps.metrics.inc('auth_refused_total', "wrong password for the cloud's broker user");
    return ok ? { result: 'allow' } : { result: 'deny', why: 'wrong password for the service user' };
  }

  private authorize(r: z.infer<typeof AuthzRequest>): Verdict {
    const { group, username } = this.deps.service;
    const action = r.action;
    if (action !== 'publish' && action !== 'subscribe') return this.malformed(`action "${action.slice(0, 40)}" is neither publish nor subscribe`);
    let why: string | null;
    if (r.username === username) {
      // Whether EMQX names a shared subscription with its $share/<group>/ prefix or without, it is the cloud's.
      if (action === 'subscribe') why = [sharedUpFilter(group), ALL_UP_FILTER].includes(r.topic) ? null : "the cloud's workers subscribe to their group's shared up/ filter only";
      else why = servicePublishRefusal(r.topic);
    } else if (r.username !== r.clientid) {
      why = 'username must equal the client id';
    } else {
      why = action === 'publish' ? publishRefusal(r.clientid, r.topic) : subscribeRefusal(r.clientid, r.topic);
    }
    if (why === null) return { result: 'allow' };
    this.deps.metrics.inc(action === 'publish' ? 'publish_refused_total' : 'subscribe_refused_total');
    const key = `id:${r.clientid.slice(0, 64)}`;
    if (this.logs.take(key, this.deps.clock.now())) this.deps.logger.warn({ deviceId: r.clientid.slice(0, 64), topic: r.topic.slice(0, 120), action, why }, `${action} refused (EMQX authorization)`);
    return { result: 'deny', why };
  }

  private fromBroker(req: IncomingMessage): boolean {
    const given = Buffer.from(String(req.headers[BROKER_SECRET_HEADER] ?? ''));
    return given.length === this.secret.length && timingSafeEqual(given, this.secret);
  }

  /** One log line a minute per cause: a misconfigured template would otherwise log every login. */
  private malformed(why: string, address = 'broker'): Verdict {
    if (this.logs.take(`bad:${why.slice(0, 60)}`, this.deps.clock.now())) this.deps.logger.warn({ address, why }, 'EMQX auth request refused');
    return { result: 'deny', why };
  }
}

/** The cloud's workers publish on down/ topics (a valid device id and kind) only. */
function servicePublishRefusal(topic: string): string | null {
  try {
    return parseTopic(topic).direction === 'down' ? null : 'the cloud publishes on down/ topics only';
  } catch {
    return 'topic is not a scanbox topic';
  }
}
