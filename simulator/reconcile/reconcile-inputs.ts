import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { CloudAttemptRecord, DeviceAttemptRecord, describeIssues } from '../../protocol/index.js';
import { fetchLedger } from '../gateway/gateway-control.js';
import { LedgerEntries, type LedgerEntry } from '../gateway/ledger.js';

/**
 * Reads what `scanbox-cloud attempts --json`, `scanbox-device attempts --json` and the gateway wrote,
 * and refuses anything that is not exactly that: reconciling a wrong file would prove nothing.
 */
export class InputError extends Error {
  override readonly name = 'InputError';
}

export function loadCloudAttempts(file: string): Promise<CloudAttemptRecord[]> {
  return loadJsonFile(file, z.array(CloudAttemptRecord), 'cloud attempts (scanbox-cloud attempts --json)');
}

export function loadDeviceAttempts(file: string): Promise<DeviceAttemptRecord[]> {
  return loadJsonFile(file, z.array(DeviceAttemptRecord), 'box attempts (scanbox-device attempts --json)');
}

/** A JSON file, or the gateway simulator's base URL (its `GET /v1/ledger`). */
export async function loadLedger(fileOrUrl: string): Promise<LedgerEntry[]> {
  if (!/^https?:\/\//.test(fileOrUrl)) return loadJsonFile(fileOrUrl, LedgerEntries, 'gateway ledger');
  try {
    return await fetchLedger(fileOrUrl.replace(/\/+(v1\/ledger)?$/, ''));
  } catch (err) {
    throw new InputError(`gateway ledger from ${fileOrUrl}: ${(err as Error).message}`);
  }
}

async function loadJsonFile<S extends z.ZodType>(file: string, schema: S, what: string): Promise<z.output<S>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(`${file}: cannot read ${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new InputError(`${file}: not valid JSON (expected ${what})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new InputError(`${file}: not valid ${what}: ${describeIssues(parsed.error)}`);
  return parsed.data;
}
