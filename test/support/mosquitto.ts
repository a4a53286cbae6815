import { startMosquitto, type MosquittoBroker, type MosquittoOptions } from '../../simulator/stack/mosquitto.js';
import { perTestFile } from './per-test-file.js';

/**
 * The throwaway Mosquitto lives in the simulator (simulator/stack/mosquitto.ts), which the rig's
 * mosquitto-postgres stack runs too; tests take it from here, with the per-file hook.
 */
export { findDynsecPlugin, startMosquitto, type ConfigPaths, type MosquittoBroker, type MosquittoOptions } from '../../simulator/stack/mosquitto.js';

/** A broker for the calling test file: started before its first test, stopped after its last. */
export function useMosquitto(opts: MosquittoOptions = {}): () => MosquittoBroker {
  return perTestFile('useMosquitto', 'broker', () => startMosquitto(opts), 30_000);
}
