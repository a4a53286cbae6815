import { randomBytes } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { ErrorCode, ProtocolError, TOPIC_ROOT } from '../../protocol/index.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BrokerAccounts, ResyncReport } from './broker-accounts.js';
import { sharedUpFilter } from './external-link.js';

/**
 * Box accounts on Mosquitto 2 through its dynamic-security plugin, driven by JSON commands on
 * `$CONTROL/dynamic-security/v1` (answers on `…/response`), as the plugin's admin: the user of the
 * cloud's `--broker` URL (`mosquitto_ctrl dynsec init` makes it).
 *
 * A box is a dynsec client: username = client id = device id, password = its secret, which the
 * plugin hashes and keeps itself (the cloud has the secret in memory at pairing only). Its own role,
 * `scanbox-box-<id>`, allows publishing on its own up/ and subscribing to its own down/; everything
 * else is refused by the plugin's defaults (publish and subscribe denied). Deleting the client
 * disconnects the box at once.
 *
 * The cloud's own user is given the role `scanbox-service-<group>` (the shared subscription to every
 * up/, publishing on every down/) the first time a worker of that group starts. Mosquitto drops every
 * connection of a user whose roles change, this one included: it reconnects.
 */
export const DYNSEC_TOPIC = '$CONTROL/dynamic-security/v1';
export const DYNSEC_RESPONSE_TOPIC = `${DYNSEC_TOPIC}/response`;
const BOX_ROLE_PREFIX = 'scanbox-box-';
/** Removals per control message: each one is written to the plugin's JSON file once. */
const BATCH = 50;
/** listClients / listRoles page size. */
const PAGE = 5_000;

export interface DynsecAcl {
  acltype: 'publishClientSend' | 'publishClientReceive' | 'subscribeLiteral' | 'subscribePattern' | 'unsubscribeLiteral' | 'unsubscribePattern';
  topic: string;
  allow: boolean;
}

export function boxRoleName(deviceId: string): string {
  return `${BOX_ROLE_PREFIX}${deviceId}`;
}

/** A box: publish on its own up/, subscribe to its own down/ (`down/+` or one kind), nothing else. */
export function boxAcls(deviceId: string): DynsecAcl[] {
  return [
    { acltype: 'publishClientSend', topic: `${TOPIC_ROOT}/${deviceId}/up/#`, allow: true },
    { acltype: 'subscribePattern', topic: `${TOPIC_ROOT}/${deviceId}/down/#`, allow: true },
  ];
}

export function serviceRoleName(group: string): string {
  return `scanbox-service-${group}`;
}

/** The cloud: the shared subscription of its group to every up/, and publishing on every down/. */
export function serviceAcls(group: string): DynsecAcl[] {
  return [
    { acltype: 'subscribePattern', topic: sharedUpFilter(group), allow: true },
    { acltype: 'publishClientSend', topic: `${TOPIC_ROOT}/+/down/#`, allow: true },
  ];
}

export type DynsecCommand = { command: string } & Record<string, unknown>;
export interface DynsecResponse {
  command: string;
  error?: string;
  data?: Record<string, unknown>;
}

const CLOSED = 'the broker connection closed';
/** How many times a command cut short by a dropped connection is sent (the first time included). */
const CLOSED_RETRIES = 3;

const alreadyExists = (r: DynsecResponse) => r.error !== undefined && /already exists/i.test(r.error);
const notFound = (r: DynsecResponse) => r.error !== undefined && /not found/i.test(r.error);

/**
 * Request/response over the control topic. Every admin connection receives every answer, so each
 * command carries correlation data naming this instance and the request; the plugin answers all the
 * commands of one message in one message, in order.
 */
export class DynsecControl {
  private readonly tag = randomBytes(6).toString('hex');
  private seq = 0;
  private readonly pending = new Map<string, { resolve: (r: DynsecResponse[]) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

  constructor(
    private readonly client: MqttClient,
    private readonly timeoutMs: number,
  ) {}

  async start(): Promise<void> {
    this.client.on('message', this.onMessage);
    // An answer lost with a dropped connection would only be waited for until the timeout.
    this.client.on('close', this.onClose);
    const [granted] = await this.client.subscribeAsync(DYNSEC_RESPONSE_TOPIC, { qos: 1 });
    if ((granted?.qos ?? 128) >= 0x80) throw notAdmin(`subscribing to ${DYNSEC_RESPONSE_TOPIC} was refused`);
  }

  stop(): void {
    this.client.off('message', this.onMessage);
    this.client.off('close', this.onClose);
    for (const [id, p] of this.pending) this.settle(id, () => p.reject(new ProtocolError(ErrorCode.INTERNAL, 'dynamic-security control stopped')));
  }

  /**
   * The answers to `commands`, in order; an answer's `error` is for the caller to judge. Sent again
   * once reconnected when the connection drops first: another worker granting the shared broker
   * user its role makes Mosquitto drop all of that user's connections, ours included. Every command
   * the cloud sends is safe to repeat (its callers take "already exists" and "not found" as done).
   */
  async run(commands: DynsecCommand[]): Promise<DynsecResponse[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runOnce(commands);
      } catch (err) {
        if (attempt >= CLOSED_RETRIES || !(err instanceof Error) || !err.message.includes(CLOSED)) throw err;
        await connected(this.client, this.timeoutMs);
      }
    }
  }

  /** As `run`, but never sent again: for a command that itself drops the connection (granting our own user a role). */
  runOnce(commands: DynsecCommand[]): Promise<DynsecResponse[]> {
    const id = `${this.tag}:${++this.seq}`;
    const body = JSON.stringify({ commands: commands.map((c, i) => ({ ...c, correlationData: `${id}:${i}` })) });
    return new Promise((resolve, reject) => {
      const what = commands.map((c) => c.command).join(', ');
      const timer = setTimeout(
        () => this.settle(id, () => reject(new ProtocolError(ErrorCode.INTERNAL, `no answer from Mosquitto's dynamic-security plugin to ${what} within ${this.timeoutMs} ms (is the plugin loaded, and is the cloud's broker user its admin?)`))),
        this.timeoutMs,
      );
      this.pending.set(id, { resolve, reject, timer });
      this.client.publishAsync(DYNSEC_TOPIC, body, { qos: 1 }).catch((err: Error) => this.settle(id, () => reject(new ProtocolError(ErrorCode.INTERNAL, `sending ${what} to the dynamic-security plugin failed: ${err.message}`))));
    });
  }

  private settle(id: string, then: () => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(id);
    then();
  }

  private readonly onMessage = (topic: string, payload: Buffer): void => {
    if (topic !== DYNSEC_RESPONSE_TOPIC) return;
    let responses: (DynsecResponse & { correlationData?: string })[];
    try {
      responses = (JSON.parse(payload.toString()) as { responses?: typeof responses }).responses ?? [];
    } catch {
      return;
    }
    const first = responses[0]?.correlationData;
    if (typeof first !== 'string') return;
    const id = first.slice(0, first.lastIndexOf(':'));
    const p = this.pending.get(id);
    if (p) this.settle(id, () => p.resolve(responses));
  };

  private readonly onClose = (): void => {
    for (const [id, p] of this.pending) this.settle(id, () => p.reject(new ProtocolError(ErrorCode.INTERNAL, `${CLOSED} before the dynamic-security plugin answered`)));
  };
}

function notAdmin(why: string): ProtocolError {
  return new ProtocolError(ErrorCode.CONFIG_INVALID, `${why}: the cloud's broker user must be the dynamic-security admin (made by mosquitto_ctrl dynsec init)`);
}

function failed(r: DynsecResponse, what: string): ProtocolError {
  return new ProtocolError(ErrorCode.INTERNAL, `Mosquitto's dynamic-security plugin refused ${what}: ${r.error}`, { command: r.command });
}

export interface DynsecAccountsDeps {
  /** A connection as the plugin's admin, kept for the accounts (not the service link's). */
  client: MqttClient;
  /** That admin's username: the user the service role is granted to. */
  username: string;
  group: string;
  logger: Logger;
  metrics: Metrics;
  timeoutMs?: number;
}

export class DynsecAccounts implements BrokerAccounts {
  private readonly control: DynsecControl;

  private constructor(private readonly deps: DynsecAccountsDeps) {
    this.control = new DynsecControl(deps.client, deps.timeoutMs ?? 5_000);
  }

  /** Ready to add and remove boxes, with the service role granted to the cloud's own user. */
  static async start(deps: DynsecAccountsDeps): Promise<DynsecAccounts> {
    const accounts = new DynsecAccounts(deps);
    await accounts.control.start();
    await accounts.grantServiceRole();
    return accounts;
  }

  async add(deviceId: string, secret: string): Promise<void> {
    const rolename = boxRoleName(deviceId);
    const [role, client] = await this.control.run([
      { command: 'createRole', rolename, acls: boxAcls(deviceId) },
      // clientid: the account opens only a connection whose client id is the device id.
      { command: 'createClient', username: deviceId, password: secret, clientid: deviceId, textname: 'scanbox box', roles: [{ rolename }] },
    ]);
    if (role?.error && !alreadyExists(role)) {
      this.deps.metrics.inc('broker_accounts_total', 'failed');
      throw failed(role, `the role of ${deviceId}`);
    }
    if (!client || client.error) {
      this.deps.metrics.inc('broker_accounts_total', 'failed');
      // Only a role made just now: one that existed may be held by a client, and Mosquitto 2.0.11
      // leaves a dangling pointer in a client whose role is deleted (and later crashes on it).
      if (role && !role.error) await this.control.run([{ command: 'deleteRole', rolename }]).catch(() => undefined);
      throw failed(client ?? { command: 'createClient', error: 'no answer' }, `the account of ${deviceId}`);
    }
    this.deps.metrics.inc('broker_accounts_total', 'created');
  }

  async remove(deviceId: string): Promise<void> {
    await this.removeAll([deviceId]);
  }

  async resync(store: { listDevices(): Promise<{ deviceId: string; status: string }[]> }): Promise<ResyncReport> {
    const clients = new Map((await this.listClients()).map((c) => [c.username, c.roles]));
    const boxRoles = (await this.list('listRoles', 'roles')).filter((r) => r.startsWith(BOX_ROLE_PREFIX)).map((r) => r.slice(BOX_ROLE_PREFIX.length));
    const status = new Map((await store.listDevices()).map((d) => [d.deviceId, d.status]));
    // Only accounts and roles the cloud made, or devices of its store: the admin and any other user stay.
    const ours = [...clients].filter(([id, roles]) => status.has(id) || roles.includes(boxRoleName(id))).map(([id]) => id);
    const removed = [...new Set([...ours, ...boxRoles])].filter((id) => status.get(id) !== 'active');
    const active = [...status].filter(([, s]) => s === 'active').map(([id]) => id);
    const missing = active.filter((id) => !clients.has(id));
    const repaired = active.filter((id) => clients.has(id) && !clients.get(id)!.includes(boxRoleName(id)));
    await this.removeAll(removed);
    for (const id of repaired) await this.repair(id);
    if (missing.length) {
      this.deps.metrics.inc('broker_accounts_total', 'missing', missing.length);
      // The store keeps only a hash of each secret: the cloud cannot make these accounts again.
      this.deps.logger.error(
        { count: missing.length, deviceIds: missing.slice(0, 50) },
        'active boxes have no account on the broker and cannot log in: pair each again (scanbox-cloud pair create), or restore the broker\'s dynamic-security file from a backup',
      );
    }
    this.deps.logger.info({ removed: removed.length, repaired: repaired.length, missing: missing.length, accounts: clients.size }, 'broker accounts resynced with the store');
    return { removed, missing, repaired };
  }

  async close(): Promise<void> {
    this.control.stop();
    await this.deps.client.endAsync();
  }

  private async removeAll(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += BATCH) {
      const batch = ids.slice(i, i + BATCH);
      const answers = await this.control.run(batch.flatMap((id) => [{ command: 'deleteClient', username: id }, { command: 'deleteRole', rolename: boxRoleName(id) }]));
      const bad = answers.find((r) => r.error && !notFound(r));
      if (bad) {
        this.deps.metrics.inc('broker_accounts_total', 'failed');
        throw failed(bad, 'a box account removal');
      }
      const gone = answers.filter((r, j) => j % 2 === 0 && !r.error).length;
      if (gone) this.deps.metrics.inc('broker_accounts_total', 'removed', gone);
    }
  }

  /** An account without its role logs in but may do nothing: the role is made again (Mosquitto drops the box once). */
  private async repair(deviceId: string): Promise<void> {
    const rolename = boxRoleName(deviceId);
    const [role, grant] = await this.control.run([
      { command: 'createRole', rolename, acls: boxAcls(deviceId) },
      { command: 'addClientRole', username: deviceId, rolename },
    ]);
    for (const r of [role, grant]) if (r?.error && !alreadyExists(r)) throw failed(r, `the role of ${deviceId}`);
    this.deps.metrics.inc('broker_accounts_total', 'repaired');
    this.deps.logger.warn({ deviceId }, 'broker account had lost its own-topics role; given it again');
  }

  /** Every account with its roles' names. */
  private async listClients(): Promise<{ username: string; roles: string[] }[]> {
    const clients = await this.list<{ username: string; roles?: { rolename: string }[] }>('listClients', 'clients', true);
    return clients.map((c) => ({ username: c.username, roles: (c.roles ?? []).map((r) => r.rolename) }));
  }

  private async list<T = string>(command: 'listClients' | 'listRoles', key: 'clients' | 'roles', verbose = false): Promise<T[]> {
    const out: T[] = [];
    for (let offset = 0; ; offset += PAGE) {
      const [r] = await this.control.run([{ command, verbose, count: PAGE, offset }]);
      if (!r || r.error) throw failed(r ?? { command, error: 'no answer' }, command);
      const data = r.data as { totalCount?: number } & Record<string, unknown>;
      const page = (data[key] ?? []) as T[];
      out.push(...page);
      if (page.length < PAGE || out.length >= (data.totalCount ?? 0)) return out;
    }
  }

  private async hasServiceRole(): Promise<boolean> {
    const [r] = await this.control.run([{ command: 'getClient', username: this.deps.username }]);
    if (!r || r.error) throw notAdmin(`looking up the cloud's own broker user ${this.deps.username} failed (${r?.error ?? 'no answer'})`);
    const roles = ((r.data?.client as { roles?: { rolename: string }[] } | undefined)?.roles ?? []).map((x) => x.rolename);
    return roles.includes(serviceRoleName(this.deps.group));
  }

  private async grantServiceRole(): Promise<void> {
    if (await this.hasServiceRole()) return;
    const rolename = serviceRoleName(this.deps.group);
    const [role] = await this.control.run([{ command: 'createRole', rolename, acls: serviceAcls(this.deps.group) }]);
    if (role?.error && !alreadyExists(role)) throw failed(role, `the cloud's role ${rolename}`);
    // The plugin drops our connection as it grants the role, often before it answers.
    await this.control.runOnce([{ command: 'addClientRole', username: this.deps.username, rolename }]).catch(() => undefined);
    for (let tries = 0; tries < 5; tries++) {
      await connected(this.deps.client, this.deps.timeoutMs ?? 5_000);
      try {
        if (await this.hasServiceRole()) {
          this.deps.logger.info({ user: this.deps.username, role: rolename }, "granted the cloud's broker user its service role (Mosquitto reconnects the user's connections once)");
          return;
        }
        break;
      } catch (err) {
        if ((err as Error).message.includes('connection closed')) continue;
        throw err;
      }
    }
    throw notAdmin(`granting the role ${rolename} to ${this.deps.username} did not take`);
  }
}

function connected(client: MqttClient, timeoutMs: number): Promise<void> {
  if (client.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('connect', ok);
      reject(new ProtocolError(ErrorCode.INTERNAL, `the broker connection did not come back within ${timeoutMs} ms`));
    }, timeoutMs);
    const ok = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('connect', ok);
  });
}
