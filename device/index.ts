/** The box agent's in-process API, for the simulator, benchmarks and tests. */
export { startAgent, type Agent, type AgentDeps } from './agent.js';
export { loadConfig, DeviceConfig, envName, type DeviceConfigInput } from './config.js';
export { ConsoleDisplay, type Display, type Screen } from './display.js';
export { Journal, JOURNAL_FILE, SCHEMA_VERSION, type Credentials } from './journal.js';
export { type MqttConnect } from './link.js';
export { pairBox, type PairOptions, type PairOutcome } from './pairing.js';
export { awaitPairingScan, type PairingScanDeps } from './pairing-scan.js';
export { openRealSerial, type SerialFactory, type SerialLike } from './serial-port.js';
export { systemClock, type Clock } from '../protocol/clock.js';
export { readStatus, type BoxStatus } from './status.js';
export { FIRMWARE_VERSION } from './version.js';
