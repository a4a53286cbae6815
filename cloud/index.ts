import { AttemptsService } from './payments/attempts-service.js';
import { ChannelLimits } from './payments/channel-limits.js';
import { openBroker } from './broker/cloud-broker.js';
import { parseBrokerUrl } from './broker/external-connection.js';
import { EmqxAuth } from './http/emqx-auth.js';
import { systemClock, type Clock } from '../protocol/clock.js';
import { parseConfig, secretKeyFileOf, type CloudConfig, type CloudConfigInput } from './config.js';
import { DeviceAuthenticator } from './broker/device-auth.js';
import { Fleet } from './fleet/fleet.js';
import type { Gateway } from './gateway/gateway.js';
import { startHttpApi } from './http/public-api.js';
import { counterServices } from './refunds/services.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { exportFleetGauges } from './fleet/fleet-gauges.js';
import { exportPendingGauges } from './payments/pending-gauges.js';
import { startMetricsEndpoint } from './http/metrics-endpoint.js';
import { watchRevocations } from './fleet/revocation-watch.js';
import { CommandWatch } from './fleet/command-watch.js';
import { ServerKey } from './pairing/server-key.js';
import { openStore, storeName, workerIdOf } from './store/open-store.js';
import { LeaseKeeper, type WorkerLease } from './payments/lease-keeper.js';
import type { CloudStore } from './store/store.js';
import type { MachineConfig } from './payments/transaction.js';
import { channelsFromConfig } from './gateway/channels.js';
import { watchChannels } from './gateway/channel-watch.js';
import { reverseWindowsOf, WALLET_RULES } from './gateway/wallet-rules.js';
import { Dashboard } from './dashboard/dashboard.js';
import { storeDoctorAccess } from './dashboard/doctor-access.js';

export { httpGateway } from './gateway/http-gateway.js';
export { instantGateway } from './gateway/instant-gateway.js';
export { SqliteStore } from './store/sqlite-store.js';
export { loadConfig, parseConfig, CloudConfig } from './config.js';
export { createPairingCode } from './pairing/pairing.js';
export { ServerKey } from './pairing/server-key.js';
export type { Gateway } from './gateway/gateway.js';
export type { CloudStore, DeviceRow } from './store/store.js';
export type { Attempt } from './payments/transaction.js';
export type { Clock } from '../protocol/clock.js';

export interface StartCloudOptions {
  /** Serves every channel the config does not define (a test's or a simulator's gateway); default: the config's channels only. */
  gateway?: Gateway;
  dbPath?: string;
  mqttPort?: number;
  httpPort?: number;
  /** Port of the metrics listener (0: any free port). */
  metricsPort?: number;
  /** Any subset of the config; the rest takes defaults. */
  config?: CloudConfigInput;
  clock?: Clock;
  /** Timers of the attempt steps (default: the system clock's). */
  timers?: Clock;
  logger?: Logger;
  random?: () => number;
  /** Also export Node's process series on /metrics (the CLI's cloud does; a test's need not). */
  processMetrics?: boolean;
}

export interface RunningCloud {
  mqttUrl: string;
  httpUrl: string;
  mqttPort: number;
  httpPort: number;
  /** `GET` this for the Prometheus text (its own listener, loopback by default). */
  metricsUrl: string;
  store: CloudStore;
  metrics: Metrics;
  config: CloudConfig;
  /** The operators' dashboard at /dashboard (absent when `dashboard.enabled` is false): its live stream, for tests and benchmarks. */
  dashboard?: Pick<Dashboard, 'live'>;
  /** Stop accepting, let queued store writes commit, then close everything. */
  close(): Promise<void>;
}

export function machineConfig(c: CloudConfig): MachineConfig {
  return {
    queryFirstDelayMs: c.queryFirstDelayMs,
    queryIntervalMs: c.queryIntervalMs,
    pollDeadlineMs: c.pollDeadlineMs,
    reverseMinDelayMs: c.reverseMinDelayMs,
    reverseWindows: reverseWindowsOf(WALLET_RULES),
    reverseRetryMs: c.reverseRetryMs,
    reverseRetryMaxMs: c.reverseRetryMaxMs,
    reverseFastRetries: c.reverseFastRetries,
    lateCheckDelayMs: c.lateCheckDelayMs,
    lateCheckTries: c.lateCheckTries,
  };
}

export async function startCloud(opts: StartCloudOptions): Promise<RunningCloud> {
  const overrides = Object.fromEntries(Object.entries({ dbPath: opts.dbPath, mqttPort: opts.mqttPort, httpPort: opts.httpPort }).filter(([, v]) => v !== undefined));
  const metricsPort = opts.metricsPort === undefined ? {} : { metrics: { ...opts.config?.metrics, port: opts.metricsPort } };
  const config = parseConfig({ ...opts.config, ...overrides, ...metricsPort });
  const logger = opts.logger ?? createLogger(config.logLevel);
  const clock = opts.clock ?? systemClock;
  const metrics = new Metrics({ processMetrics: opts.processMetrics ?? false });
  const store = await openStore(config, { commitThread: true, ...(config.store ? { worker: workerIdOf(config) } : {}) });
  const cleanup: (() => Promise<void> | void)[] = [() => store.close()];
  try {
    const key = config.dbPath === ':memory:' && !config.secretKeyFile ? ServerKey.random() : ServerKey.load(secretKeyFileOf(config));
    const auth = new DeviceAuthenticator({ store, logger, metrics, key, clock, backoff: config.loginBackoff });
    const broker = await openBroker({ config, auth, store, logger, metrics, clock });
    cleanup.unshift(() => broker.close());
    const link = broker.serviceLink;
    cleanup.unshift(() => link.close());
    const fleet = new Fleet({ store, clock, logger, metrics, heartbeatIntervalS: config.heartbeatIntervalS });
    const router = channelsFromConfig(config, { merchants: (id) => store.getMerchant(id), clock, random: opts.random ?? Math.random, logger, metrics }, opts.gateway);
    cleanup.unshift(() => router.close());
    cleanup.unshift(await watchChannels({ store, router, logger, clock, pollMs: config.channelPollMs }));
    // Several workers on one PostgreSQL store share the work under leases; the only cloud (SQLite) takes none.
    const worker: WorkerLease | undefined = config.store ? { owner: workerIdOf(config), ttlMs: config.workerLeaseMs } : undefined;
    let keeper: LeaseKeeper | undefined;
    // Runs after both services closed: the others take this worker's attempts over at once.
    cleanup.unshift(() => keeper?.release());
    const timers = opts.timers ?? systemClock;
    // One width per channel for every call through it, payments' and refunds' alike.
    const channelLimits = new ChannelLimits(config.gatewayConcurrency);
    const counter = counterServices({ store, gateway: router, config, channelLimits, logger, metrics, clock, timers, random: opts.random ?? Math.random, publish: (t, p, q) => link.publish(t, p, q), downVersionFor: (id) => fleet.downVersionFor(id), ...(worker ? { worker } : {}) });
    cleanup.unshift(() => counter.refunds.close());
    const attempts = new AttemptsService({
      store,
      gateway: router,
      channelFor: (wallet, merchantId, amount, outTradeNo) => router.channelFor(wallet, merchantId, amount, outTradeNo),
      logger,
      metrics,
      clock,
      timers,
      random: opts.random ?? Math.random,
      machine: machineConfig(config),
      gatewayCallTimeoutMs: config.gatewayCallTimeoutMs,
      channelLimits,
      resumeSpreadMs: config.resumeSpreadMs,
      resumeRatePerS: config.resumeRatePerS,
      publish: (topic, payload, qos) => link.publish(topic, payload, qos),
      onHeartbeat: (deviceId, msg) => fleet.heartbeat(deviceId, msg),
      heard: (deviceId, v) => fleet.announce(deviceId, v),
      downVersionFor: (deviceId) => fleet.downVersionFor(deviceId),
      refunds: counter.refunds,
      totals: counter.totals,
      ...(worker ? { worker } : {}),
    });
    cleanup.unshift(() => fleet.stop(), () => attempts.close());
    if (worker) {
      keeper = new LeaseKeeper({ store, clock, timers, logger, metrics, worker, attempts, refunds: counter.refunds });
      const k = keeper;
      cleanup.unshift(() => k.stop());
    }
    link.onMessage((topic, payload, publisher) => void attempts.handleMessage(topic, payload, publisher));
    const commands = new CommandWatch({ store, logger, clock, pollMs: config.revocationPollMs, goneMs: config.unpairGoneMs, graceMs: config.unpairGraceMs, publish: (t, p, q) => link.publish(t, p, q), downVersionFor: (id) => fleet.downVersionFor(id) });
    cleanup.unshift(commands.start());
    broker.setEvents({
      // Unacknowledged results (and queued commands) go out again once the box can receive them: at
      // once for a persistent session (its subscriptions survive), else when it subscribes.
      onDeviceConnected: (id, persistent) => {
        commands.connected(id, persistent);
        void fleet.connected(id).then(() => (persistent ? attempts.resendUnacked(id) : undefined));
      },
      onDeviceSubscribed: (id) => {
        commands.subscribed(id);
        void attempts.resendUnacked(id);
      },
      onDeviceDisconnected: (id) => {
        commands.disconnected(id);
        void fleet.disconnected(id);
      },
    });
    fleet.start();
    if (keeper) await keeper.start();
    else {
      await attempts.resumeAll();
      await counter.refunds.resumeAll();
    }

    const mqttUrl = config.publicMqttUrl ?? broker.url;
    let httpUrl = '';
    const dashboard = config.dashboard.enabled
      ? new Dashboard({
          store,
          clock,
          logger,
          metrics,
          config: config.dashboard,
          secure: config.tls !== undefined,
          publicHttpUrl: config.publicHttpUrl,
          pairingUrl: () => config.publicHttpUrl ?? httpUrl,
          pairingCodeTtlS: config.pairingCodeTtlS,
          attempts,
          refunds: counter.refunds,
          disconnect: (id) => broker.disconnect(id),
          doctor: storeDoctorAccess(store, clock),
        })
      : undefined;
    const http = await startHttpApi({
      pairing: { store, key, clock, logger, metrics, codeTtlS: config.pairingCodeTtlS, mqttUrl: () => mqttUrl, onRevoked: (ids) => ids.forEach((id) => broker.disconnect(id)), accounts: broker.accounts },
      clock,
      logger,
      metrics,
      host: config.host,
      port: config.httpPort,
      rateLimit: config.pairRateLimit,
      tls: config.tls,
      metricsToken: config.metrics.token,
      dashboard,
      brokerAuth: emqxAuthOf(config, auth, logger, metrics, clock),
    });
    httpUrl = http.url;
    cleanup.unshift(() => http.stopAccepting());
    if (dashboard) {
      dashboard.start();
      // Before the listener closes: the live streams end first, or closing would wait for them.
      cleanup.unshift(() => dashboard.close());
      if (!config.tls && !['127.0.0.1', '::1', 'localhost'].includes(config.host)) {
        logger.warn({ host: config.host }, 'the dashboard is served over plain HTTP on a non-loopback address: passwords and session cookies cross the network in clear; set tls, or put it behind an HTTPS proxy');
      }
    }
    cleanup.unshift(exportFleetGauges({ store, metrics, logger }), exportPendingGauges({ store, metrics, clock, logger }));
    const metricsEndpoint = await startMetricsEndpoint(metrics, config.metrics.host, config.metrics.port);
    cleanup.unshift(() => metricsEndpoint.close());
    const stopWatch = watchRevocations({ store, logger, pollMs: config.revocationPollMs, since: clock.now() - 1000, disconnect: broker.disconnect });
    cleanup.unshift(stopWatch);
    cleanup.unshift(() => broker.stopAccepting());

    const running: RunningCloud = {
      mqttUrl,
      httpUrl: config.publicHttpUrl ?? http.url,
      mqttPort: broker.port,
      httpPort: http.port,
      metricsUrl: metricsEndpoint.url,
      store,
      metrics,
      config,
      ...(dashboard ? { dashboard } : {}),
      close: () => runCleanup(cleanup),
    };
    // Supervisors and the simulator wait for this line: printed at any log level but silent.
    (logger.level === 'silent' ? logger : logger.child({}, { level: 'info' })).info({ mqttPort: running.mqttPort, httpPort: running.httpPort, mqttUrl: running.mqttUrl, httpUrl: running.httpUrl, metricsUrl: running.metricsUrl, db: storeName(config), ...(config.store ? { worker: workerIdOf(config) } : {}) }, 'ready');
    return running;
  } catch (err) {
    await runCleanup(cleanup);
    throw err;
  }
}

/** EMQX's HTTP authenticator and authorizer, when the external broker asks the cloud (`accounts: "http"`). */
function emqxAuthOf(config: CloudConfig, auth: DeviceAuthenticator, logger: Logger, metrics: Metrics, clock: Clock): EmqxAuth | undefined {
  const b = config.broker;
  if (b?.accounts !== 'http' || !b.httpAuthSecret) return undefined;
  const { username, password } = parseBrokerUrl(b.url);
  return new EmqxAuth({ auth, secret: b.httpAuthSecret, service: { username, password, group: b.group }, logger, metrics, clock });
}

/** In order, each step once, and every step even if an earlier one failed. */
function runCleanup(steps: (() => Promise<void> | void)[]): Promise<void> {
  const pending = steps.splice(0);
  return pending.reduce<Promise<void>>((p, step) => p.then(() => Promise.resolve(step()).catch(() => undefined)), Promise.resolve());
}
