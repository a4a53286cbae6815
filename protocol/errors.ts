/**
 * One error vocabulary for every part. A code says what went wrong in a way a program can act on;
 * the message says it in words a cashier, an engineer or a support agent can read.
 */
export const ErrorCode = {
  // transport and schema
  BAD_JSON: 'BAD_JSON',
  SCHEMA_INVALID: 'SCHEMA_INVALID',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  TOPIC_INVALID: 'TOPIC_INVALID',
  UNSUPPORTED_VERSION: 'UNSUPPORTED_VERSION',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  // identity and authorisation
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  DEVICE_REVOKED: 'DEVICE_REVOKED',
  // payment code
  CODE_EMPTY: 'CODE_EMPTY',
  CODE_NOT_DIGITS: 'CODE_NOT_DIGITS',
  CODE_TOO_LONG: 'CODE_TOO_LONG',
  CODE_WRONG_LENGTH: 'CODE_WRONG_LENGTH',
  CODE_UNKNOWN_PREFIX: 'CODE_UNKNOWN_PREFIX',
  // money
  AMOUNT_INVALID: 'AMOUNT_INVALID',
  AMOUNT_NEGATIVE: 'AMOUNT_NEGATIVE',
  AMOUNT_PRECISION: 'AMOUNT_PRECISION',
  AMOUNT_TOO_LARGE: 'AMOUNT_TOO_LARGE',
  AMOUNT_ZERO: 'AMOUNT_ZERO',
  CURRENCY_UNSUPPORTED: 'CURRENCY_UNSUPPORTED',
  // pairing
  PAIRING_CODE_INVALID: 'PAIRING_CODE_INVALID',
  PAIRING_CODE_EXPIRED: 'PAIRING_CODE_EXPIRED',
  PAIRING_CODE_USED: 'PAIRING_CODE_USED',
  RATE_LIMITED: 'RATE_LIMITED',
  ALREADY_PAIRED: 'ALREADY_PAIRED',
  NOT_PAIRED: 'NOT_PAIRED',
  CLOUD_UNREACHABLE: 'CLOUD_UNREACHABLE',
  /** The hardware id is paired to another merchant's box; revoke that one first, or prove its secret. */
  HARDWARE_ID_IN_USE: 'HARDWARE_ID_IN_USE',
  /** Secrets travel only over TLS, except to loopback or when the engineer says --insecure. */
  INSECURE_TRANSPORT: 'INSECURE_TRANSPORT',
  // cashier flow on the box
  OFFLINE: 'OFFLINE',
  /** The cloud told the box to unpair: it finishes what is in flight and takes no new sale. */
  UNPAIRING: 'UNPAIRING',
  NO_SALE_WAITING: 'NO_SALE_WAITING',
  SALE_BUSY: 'SALE_BUSY',
  SALE_UNKNOWN: 'SALE_UNKNOWN',
  SALE_ALREADY_PAID: 'SALE_ALREADY_PAID',
  /** A refund of a sale that is not paid (open, cancelling, or closed NOT_PAID). */
  SALE_NOT_PAID: 'SALE_NOT_PAID',
  /** A refund of more than what remains of the sale after its other refunds. */
  REFUND_EXCEEDS_REMAINING: 'REFUND_EXCEEDS_REMAINING',
  /** A refund ref already used with another sale or amount. */
  REFUND_CONFLICT: 'REFUND_CONFLICT',
  /** A lookup of a refund ref the box never had. */
  REFUND_UNKNOWN: 'REFUND_UNKNOWN',
  DUPLICATE_SCAN: 'DUPLICATE_SCAN',
  LINE_TOO_LONG: 'LINE_TOO_LONG',
  // payment conversation
  ATTEMPT_UNKNOWN: 'ATTEMPT_UNKNOWN',
  ATTEMPT_CONFLICT: 'ATTEMPT_CONFLICT',
  ATTEMPT_TOMBSTONED: 'ATTEMPT_TOMBSTONED',
  DUPLICATE_PAYMENT: 'DUPLICATE_PAYMENT',
  GATEWAY_TIMEOUT: 'GATEWAY_TIMEOUT',
  GATEWAY_ERROR: 'GATEWAY_ERROR',
  // local state
  JOURNAL_CORRUPT: 'JOURNAL_CORRUPT',
  JOURNAL_TOO_NEW: 'JOURNAL_TOO_NEW',
  STORE_CORRUPT: 'STORE_CORRUPT',
  STORE_TOO_NEW: 'STORE_TOO_NEW',
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  CONFIG_INVALID: 'CONFIG_INVALID',
  MERCHANT_UNKNOWN: 'MERCHANT_UNKNOWN',
  MERCHANT_EXISTS: 'MERCHANT_EXISTS',
  /** A dashboard operator (`scanbox-cloud operator`) that exists already, or does not exist. */
  OPERATOR_EXISTS: 'OPERATOR_EXISTS',
  OPERATOR_UNKNOWN: 'OPERATOR_UNKNOWN',
  SERIAL_ERROR: 'SERIAL_ERROR',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
export const ERROR_CODES = Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]];

/** The typed error every part throws for a known failure. `details` must never carry secrets. */
export class ProtocolError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
    this.details = details;
  }
}

export function isProtocolError(err: unknown, code?: ErrorCode): err is ProtocolError {
  return err instanceof ProtocolError && (code === undefined || err.code === code);
}
