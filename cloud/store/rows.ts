import type { Merchant } from '../merchants/merchant.js';
import type { Attempt } from '../payments/transaction.js';
import { ATTEMPT_COLUMNS } from './sqlite-schema.js';
import type { AttemptEventRow, DeviceCommandRow, DeviceRow, DoctorReportRow, OperatorActionRow, OperatorRow, OperatorSessionRow, ReconcileFindingRow, RefundEventRow } from './store.js';

/**
 * A row of either store (the same column names on SQLite and PostgreSQL) as the store interface
 * answers it. What only one engine needs decoding (a doctor report's checks: JSON text on SQLite,
 * JSONB on PostgreSQL) is decoded by its store and handed in.
 */
export type Row = Record<string, unknown>;

export function toMerchant(r: Row): Merchant {
  return {
    merchantId: r.merchant_id as string,
    name: (r.name as string | null) ?? null,
    wechatSubMchId: (r.wechat_sub_mch_id as string | null) ?? null,
    alipayAppAuthToken: (r.alipay_app_auth_token as string | null) ?? null,
    createdAt: r.created_at as number,
    updatedAt: (r.updated_at as number | null) ?? (r.created_at as number),
  };
}

export function toAttempt(row: Row): Attempt {
  const a: Record<string, unknown> = {};
  for (const [field, col] of ATTEMPT_COLUMNS) a[field] = row[col] ?? null;
  return a as unknown as Attempt;
}

/**
 * The exception desk's "not resolved" condition, the same SQL on both engines: no operator marked
 * this row resolved in the state it is in now (a resolution holds only while that state does).
 */
export function unresolvedSql(kind: 'attempt' | 'refund', table: string, idColumn: string): string {
  return `NOT EXISTS (SELECT 1 FROM operator_actions oa WHERE oa.subject_kind='${kind}' AND oa.subject_id=${table}.${idColumn} AND oa.action='resolve' AND oa.subject_state=${table}.state)`;
}

export function toAttemptEvent(r: Row): AttemptEventRow {
  return {
    seq: r.seq as number,
    outTradeNo: r.out_trade_no as string,
    at: r.at as number,
    event: r.event as string,
    fromState: (r.from_state as AttemptEventRow['fromState']) ?? null,
    toState: r.to_state as AttemptEventRow['toState'],
    note: r.note as string,
  };
}

export function toRefundEvent(r: Row): RefundEventRow {
  return {
    seq: r.seq as number,
    refundId: r.refund_id as string,
    outTradeNo: r.out_trade_no as string,
    at: r.at as number,
    event: r.event as string,
    fromState: (r.from_state as RefundEventRow['fromState']) ?? null,
    toState: r.to_state as RefundEventRow['toState'],
    note: r.note as string,
  };
}

export function toFinding(r: Row): ReconcileFindingRow {
  return {
    billDate: r.bill_date as string,
    channel: r.channel as string,
    outTradeNo: r.out_trade_no as string,
    kind: r.kind as string,
    status: r.status as ReconcileFindingRow['status'],
    merchantId: (r.merchant_id as string | null) ?? null,
    amount: r.amount as number,
    detail: r.detail as string,
    action: (r.action as string | null) ?? null,
    foundAt: r.found_at as number,
    updatedAt: r.updated_at as number,
  };
}

export function toDeviceCommand(r: Row): DeviceCommandRow {
  return {
    id: r.id as string,
    deviceId: r.device_id as string,
    command: r.command as DeviceCommandRow['command'],
    createdAt: r.created_at as number,
    sentAt: (r.sent_at as number | null) ?? null,
    doneAt: (r.done_at as number | null) ?? null,
    outcome: (r.outcome as DeviceCommandRow['outcome']) ?? null,
  };
}

export function toDoctorReport(r: Row, checks: DoctorReportRow['checks']): DoctorReportRow {
  return {
    deviceId: r.device_id as string,
    commandId: r.command_id as string,
    messageId: r.message_id as string,
    firmware: r.firmware as string,
    checks,
    sentAt: r.sent_at as number,
    receivedAt: r.received_at as number,
  };
}

export function toDevice(r: Row): DeviceRow {
  return {
    deviceId: r.device_id as string,
    hardwareId: r.hardware_id as string,
    merchantId: r.merchant_id as string,
    storeId: r.store_id as string,
    status: r.status as DeviceRow['status'],
    connectivity: r.connectivity as DeviceRow['connectivity'],
    lastSeenAt: (r.last_seen_at as number | null) ?? null,
    firmware: (r.firmware as string | null) ?? null,
    outboxDepth: (r.outbox_depth as number | null) ?? null,
    pendingAttempts: (r.pending_attempts as number | null) ?? null,
    pairedAt: r.paired_at as number,
    revokedAt: (r.revoked_at as number | null) ?? null,
  };
}

export function toOperator(r: Row): OperatorRow {
  return { name: r.name as string, passwordHash: r.password_hash as string, createdAt: r.created_at as number, updatedAt: r.updated_at as number };
}

export function toSession(r: Row): OperatorSessionRow {
  return { idHash: r.id_hash as string, operator: r.operator as string, csrfToken: r.csrf_token as string, createdAt: r.created_at as number, lastSeenAt: r.last_seen_at as number };
}

export function toAction(r: Row): OperatorActionRow {
  return {
    id: r.id as number,
    at: r.at as number,
    operator: r.operator as string,
    action: r.action as OperatorActionRow['action'],
    subjectKind: r.subject_kind as OperatorActionRow['subjectKind'],
    subjectId: r.subject_id as string,
    subjectState: (r.subject_state as string | null) ?? null,
    note: r.note as string,
    outcome: r.outcome as string,
  };
}
