import type { CloudConfigInput } from '../../cloud/config.js';
import { until } from '../cloud/harness.js';
import type { MosquittoBroker } from '../support/mosquitto.js';

/**
 * The brokers the security probes run against, and how each shows what it refused: the same
 * probes, one expectation per broker where brokers legitimately differ. The embedded broker closes
 * a connection that publishes outside its own up/ and counts every refusal on the cloud's /metrics;
 * Mosquitto (dynamic security, managed by the cloud) drops such a publish and keeps the connection,
 * answers every refused login with CONNACK 5, and logs its refusals (read from its log here).
 */
export type BrokerKind = 'embedded' | 'mosquitto';
export const BROKER_KINDS: readonly BrokerKind[] = ['embedded', 'mosquitto'];

export type RefusalKind = 'auth' | 'publish' | 'subscribe';

export interface BrokerUnderTest {
  readonly kind: BrokerKind;
  /** CONNACK return code of a refused login: a wrong secret or someone else's id; a revoked box. */
  readonly refusedWith: { wrongSecret: number; revoked: number };
  readonly forbiddenPublish: 'closes the connection' | 'is dropped';
  /** Where the refusal records stand now. */
  mark(): Promise<number>;
  /** Refusals recorded since `mark`; undefined when this broker records none of that kind. */
  since(mark: number, kind: RefusalKind): Promise<number | undefined>;
  /** Waits until exactly `n` refusals of `kind` are recorded since `mark` (resolves at once where none are recorded). */
  refusalsReach(mark: number, kind: RefusalKind, n: number, timeoutMs?: number): Promise<void>;
  /** Resolves once the broker has dealt with the last will of `deviceId`'s connection, which just died. */
  willHandled(deviceId: string, mark: number, timeoutMs?: number): Promise<void>;
}

const COUNTER: Record<RefusalKind, string> = { auth: 'auth_refused_total', publish: 'publish_refused_total', subscribe: 'subscribe_refused_total' };

/** The embedded broker: its counters on the cloud's /metrics. A mark is a total of the three. */
export function embeddedUnderTest(scrape: () => Promise<(name: string) => number>): BrokerUnderTest {
  const marks: ((name: string) => number)[] = [];
  const self: BrokerUnderTest = {
    kind: 'embedded',
    refusedWith: { wrongSecret: 4, revoked: 5 },
    forbiddenPublish: 'closes the connection',
    async mark() {
      marks.push(await scrape());
      return marks.length - 1;
    },
    async since(mark, kind) {
      return (await scrape())(COUNTER[kind]) - marks[mark]!(COUNTER[kind]);
    },
    async refusalsReach(mark, kind, n, timeoutMs = 3_000) {
      await until(`${n} ${kind} refusals counted`, async () => (await self.since(mark, kind)) === n, timeoutMs);
    },
    // The refusal of the will is the event that says it has been handled.
    willHandled: (_deviceId, mark, timeoutMs) => self.refusalsReach(mark, 'publish', 1, timeoutMs),
  };
  return self;
}

const LINE: Record<RefusalKind, RegExp | undefined> = {
  auth: /disconnected, not authorised/,
  publish: /^Denied PUBLISH from /,
  // Mosquitto logs a refused subscription as an ordinary SUBSCRIBE; the granted 128 is the record.
  subscribe: undefined,
};

/** Mosquitto: its log lines. A mark is a line number. */
export function mosquittoUnderTest(m: MosquittoBroker): BrokerUnderTest {
  const self: BrokerUnderTest = {
    kind: 'mosquitto',
    refusedWith: { wrongSecret: 5, revoked: 5 },
    forbiddenPublish: 'is dropped',
    mark: async () => m.lines().length,
    async since(mark, kind) {
      const re = LINE[kind];
      return re ? m.lines().slice(mark).filter((l) => re.test(l)).length : undefined;
    },
    async refusalsReach(mark, kind, n, timeoutMs = 3_000) {
      if (!LINE[kind]) return;
      await until(`${n} ${kind} refusals in the mosquitto log`, async () => (await self.since(mark, kind)) === n, timeoutMs);
    },
    // Mosquitto sends or drops (ACL) a will as it closes the connection, in the same step that logs it.
    async willHandled(deviceId, mark, timeoutMs = 3_000) {
      await m.waitForLine(new RegExp(`^Client ${deviceId} (closed its connection|disconnected)`), timeoutMs, mark);
    },
  };
  return self;
}

/** The part of a cloud's config that puts it on `m`. */
export function onMosquitto(m: MosquittoBroker): CloudConfigInput {
  return { broker: { url: m.adminUrl, group: 'scanbox-probe', accounts: 'dynsec' } };
}
