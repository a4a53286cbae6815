import { describe, expect, it } from 'vitest';
import { ALL_UP_FILTER, ErrorCode, deviceDownFilter, downTopic, parseTopic, upTopic } from '../../protocol/index.js';

describe('topics', () => {
  it('builds and parses both directions', () => {
    expect(upTopic('sbABC123', 'pay')).toBe('scanbox/v1/d/sbABC123/up/pay');
    expect(downTopic('sbABC123', 'result')).toBe('scanbox/v1/d/sbABC123/down/result');
    expect(parseTopic('scanbox/v1/d/sbABC123/up/pay')).toEqual({ deviceId: 'sbABC123', direction: 'up', kind: 'pay' });
    expect(parseTopic('scanbox/v1/d/sb-1_x/down/error')).toEqual({ deviceId: 'sb-1_x', direction: 'down', kind: 'error' });
    expect(deviceDownFilter('sb1')).toBe('scanbox/v1/d/sb1/down/+');
    expect(ALL_UP_FILTER).toBe('scanbox/v1/d/+/up/+');
  });

  it.each([
    'scanbox/v1/d/sb1/up/pay/extra',
    'scanbox/v1/d/sb1/up',
    'scanbox/v2/d/sb1/up/pay',
    'Scanbox/v1/d/sb1/up/pay',
    '/scanbox/v1/d/sb1/up/pay',
    'scanbox/v1/d//up/pay',
    'scanbox/v1/d/+/up/pay',
    'scanbox/v1/d/#/up/pay',
    'scanbox/v1/d/$SYS/up/pay',
    'scanbox/v1/d/sb1/up/result',
    'scanbox/v1/d/sb1/down/pay',
    'scanbox/v1/d/sb1/sideways/pay',
    'scanbox/v1/d/sb1/up/+',
    '',
    `scanbox/v1/d/${'a'.repeat(65)}/up/pay`,
  ])('rejects %j', (topic) => {
    expect(() => parseTopic(topic)).toThrow(expect.objectContaining({ code: ErrorCode.TOPIC_INVALID }));
  });

  it.each(['a+b', 'a#', 'a/b', '$x', '', 'a b'])('refuses to build a topic for device id %j', (id) => {
    expect(() => upTopic(id, 'pay')).toThrow(expect.objectContaining({ code: ErrorCode.TOPIC_INVALID }));
    expect(() => downTopic(id, 'result')).toThrow(expect.objectContaining({ code: ErrorCode.TOPIC_INVALID }));
  });
});
