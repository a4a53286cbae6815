import { describeIssues } from '../../protocol/index.js';
import { LedgerEntries, type LedgerEntry } from './ledger.js';
import type { ScenarioBindings } from './gateway-server.js';
import type { ScenarioInput } from './scenario.js';

/**
 * The other side of the gateway service's control endpoints, for a demo, fleet run or test that
 * drives a gateway running in another process.
 */
export async function bindScenarios(baseUrl: string, bindings: ScenarioBindings): Promise<void> {
  const res = await fetch(`${baseUrl}/v1/scenarios`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(bindings),
  });
  if (!res.ok) throw new Error(`binding scenarios at ${baseUrl} failed: HTTP ${res.status} ${await res.text()}`);
}

export function bindScenario(baseUrl: string, code: string, scenario: ScenarioInput): Promise<void> {
  return bindScenarios(baseUrl, { code, scenario });
}

export async function fetchLedger(baseUrl: string): Promise<LedgerEntry[]> {
  const res = await fetch(`${baseUrl}/v1/ledger`);
  if (!res.ok) throw new Error(`reading the ledger at ${baseUrl} failed: HTTP ${res.status}`);
  const parsed = LedgerEntries.safeParse(await res.json());
  if (!parsed.success) throw new Error(`the ledger at ${baseUrl} is invalid: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
