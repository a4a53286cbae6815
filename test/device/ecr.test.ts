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

  it.each([
    ['not json', 'BAD_JSON', 'not valid JSON'],
    ['{"type":"refund","ref":"A"}', 'SCHEMA_INVALID', 'type must be "sale" or "cancel"'],
    ['{"type":"sale","ref":"A","amount":12.34,"currency":"CNY"}', 'SCHEMA_INVALID', 'amount: amount must be whole minor units'],
    ['{"type":"sale","ref":"A","amount":-5,"currency":"CNY"}', 'SCHEMA_INVALID', 'amount must be greater than 0'],
    ['{"type":"sale","ref":"A","amount":"12","currency":"CNY"}', 'SCHEMA_INVALID', 'amount'],
    ['{"type":"sale","ref":"A","amount":100,"currency":"USD"}', 'SCHEMA_INVALID', 'currency must be CNY'],
    ['{"type":"sale","ref":"has space","amount":100,"currency":"CNY"}', 'SCHEMA_INVALID', 'ref must be printable ASCII'],
    ['{"type":"sale","amount":100,"currency":"CNY"}', 'SCHEMA_INVALID', 'ref'],
    ['{"type":"sale","ref":"A","amount":100,"currency":"CNY","tip":5}', 'SCHEMA_INVALID', 'tip'],
  ])('%s → %s naming the problem', (line, code, text) => {
    const e = errorOf(line);
    expect(e.type).toBe('error');
    expect(e.code).toBe(code);
    expect(e.message).toContain(text);
  });
});
