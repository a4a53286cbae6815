import { describe, expect, it } from 'vitest';
import { isProtocolError } from '../../protocol/index.js';
import { ecrErrorLine, parseEcrLine } from '../../device/ecr.js';

function errorOf(line: string) {
  try {
    parseEcrLine(line);
  } catch (err) {
    if (isProtocolError(err)) return ecrErrorLine(err);
  }
  throw new Error(`accepted: ${line}`);
}

describe('ECR line parsing', () => {
  it('accepts a sale and a cancel', () => {
    expect(parseEcrLine('{"type":"sale","ref":"A-1","amount":1234,"currency":"CNY"}')).toEqual({ type: 'sale', ref: 'A-1', amount: 1234, currency: 'CNY' });
    expect(parseEcrLine(' {"type":"cancel","ref":"A-1"}\r')).toEqual({ type: 'cancel', ref: 'A-1' });
  });

  it('ECR v2: hello and lookup, with or without the register\'s version', () => {
    expect(parseEcrLine('{"type":"hello"}')).toEqual({ type: 'hello' });
    expect(parseEcrLine('{"type":"hello","v":2,"name":"POS-3"}')).toEqual({ type: 'hello', v: 2, name: 'POS-3' });
    expect(parseEcrLine('{"type":"lookup","ref":"R-1"}')).toEqual({ type: 'lookup', ref: 'R-1' });
    expect(parseEcrLine('{"type":"lookup","v":2,"ref":"R-1"}')).toEqual({ type: 'lookup', v: 2, ref: 'R-1' });
  });

  it('reads tolerantly: unknown fields are dropped; a line without v is v1; a newer v is read by the fields it knows', () => {
    expect(parseEcrLine('{"type":"sale","ref":"A","amount":100,"currency":"CNY","tip":5,"cashier":{"id":7}}')).toEqual({ type: 'sale', ref: 'A', amount: 100, currency: 'CNY' });
    expect(parseEcrLine('{"type":"cancel","ref":"A","v":3,"reason":"customer left"}')).toEqual({ type: 'cancel', v: 3, ref: 'A' });
    expect(parseEcrLine('{"type":"hello","v":2,"name":"POS","capabilities":["refund"]}')).toEqual({ type: 'hello', v: 2, name: 'POS' });
  });

  it.each([
    ['not json', 'BAD_JSON', 'not valid JSON'],
    ['{"type":"void","ref":"A"}', 'SCHEMA_INVALID', 'type must be "sale", "cancel", "hello", "lookup", "refund" or "totals"'],
    ['{"type":"refund","ref":"A"}', 'SCHEMA_INVALID', 'refundRef'],
    ['{"type":"refund","refundRef":"RF-1","amount":100,"currency":"CNY"}', 'SCHEMA_INVALID', 'a refund names its sale: ref or outTradeNo'],
    ['{"type":"totals","date":"2026-02-30"}', 'SCHEMA_INVALID', 'date must be a real calendar day'],
    ['{"type":"lookup"}', 'SCHEMA_INVALID', 'ref'],
    ['{"type":"lookup","ref":"has space"}', 'SCHEMA_INVALID', 'ref must be printable ASCII'],
    ['{"type":"hello","name":12}', 'SCHEMA_INVALID', 'name'],
    ['{"type":"sale","v":0,"ref":"A","amount":100,"currency":"CNY"}', 'SCHEMA_INVALID', 'v must be a protocol version'],
    ['{"type":"sale","v":"2","ref":"A","amount":100,"currency":"CNY"}', 'SCHEMA_INVALID', 'v must be a protocol version'],
    ['{"type":"sale","ref":"A","amount":12.34,"currency":"CNY"}', 'SCHEMA_INVALID', 'amount: amount must be whole minor units'],
    ['{"type":"sale","ref":"A","amount":-5,"currency":"CNY"}', 'SCHEMA_INVALID', 'amount must be greater than 0'],
    ['{"type":"sale","ref":"A","amount":"12","currency":"CNY"}', 'SCHEMA_INVALID', 'amount'],
    ['{"type":"sale","ref":"A","amount":100,"currency":"USD"}', 'SCHEMA_INVALID', 'currency must be CNY'],
    ['{"type":"sale","ref":"has space","amount":100,"currency":"CNY"}', 'SCHEMA_INVALID', 'ref must be printable ASCII'],
    ['{"type":"sale","amount":100,"currency":"CNY"}', 'SCHEMA_INVALID', 'ref'],
  ])('%s → %s naming the problem', (line, code, text) => {
    const e = errorOf(line);
    expect(e.type).toBe('error');
    expect(e.code).toBe(code);
    expect(e.message).toContain(text);
  });
});
