/** protocol v3 (MQTT; pairing bodies stay v1): the one contract between device, cloud and simulator. */
export * from './errors.js';
export * from './money.js';
export * from './payment-code.js';
export * from './topics.js';
export * from './states.js';
export * from './fields.js';
export * from './messages.js';
export * from './pairing.js';
export * from './business-day.js';
export * from './refunds.js';
export * from './doctor.js';
export * from './ecr.js';
export * from './records.js';
export * from './backoff.js';
export * from './clock.js';
