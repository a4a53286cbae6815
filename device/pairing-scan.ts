import type { Logger } from 'pino';
import { isProtocolError } from '../protocol/index.js';
import type { Clock } from '../protocol/clock.js';
import { readCaFile, type DeviceConfig } from './config.js';
import type { Display } from './display.js';
import { pairBox, type PairOutcome } from './pairing.js';
import { ScannerReader } from './scanner.js';
import type { SerialFactory } from './serial-port.js';

export interface PairingScanDeps {
  clock: Clock;
  random: () => number;
  openSerial: SerialFactory;
  logger: Logger;
  display: Display;
}

/**
 * An unpaired box waits for the engineer to scan the pairing QR (`scanbox:pair?code=…&cloud=…`)
 * with its own scanner, then pairs over HTTPS. A failed attempt is shown and the box keeps waiting;
 * payment codes scanned meanwhile are ignored. Whoever prints a QR chooses the cloud address, so
 * plain HTTP beyond loopback needs `insecurePairing` in the box's own config, not in the QR.
 */
export function awaitPairingScan(config: DeviceConfig, deps: PairingScanDeps): Promise<PairOutcome> {
  return new Promise((resolve) => {
    const pairing = {
      dataDir: config.dataDir,
      insecure: config.insecurePairing,
      warn: (message: string) => deps.logger.warn(message),
      ...(config.caFile ? { ca: readCaFile(config.caFile) } : {}),
    };
    let busy = false;
    const scanner = new ScannerReader({
      clock: deps.clock,
      random: deps.random,
      factory: deps.openSerial,
      backoff: config.serialReopen,
      log: deps.logger,
      path: config.scannerPath,
      baudRate: config.baudRate,
      debounceMs: config.scanDebounceMs,
      handlers: {
        onScan: () => deps.display.show({ screen: '设备未配对：请扫描配对二维码', voice: null }),
        onReject: (err) => deps.logger.warn({ code: err.code }, 'not a pairing QR'),
        onState: (state) => deps.logger.info({ port: 'scanner', state }, 'port state'),
        onPairing: (qr) => {
          if (busy) return;
          busy = true;
          deps.display.show({ screen: '正在配对…', voice: null });
          pairBox({ ...pairing, code: qr.code, cloudUrl: qr.cloudUrl }).then(
            (out) => {
              deps.logger.info({ deviceId: out.deviceId, merchantId: out.merchantId, storeId: out.storeId }, 'paired by scan');
              void scanner.stop().then(() => resolve(out));
            },
            (err: unknown) => {
              busy = false;
              const code = isProtocolError(err) ? err.code : 'INTERNAL';
              deps.logger.warn({ code, reason: (err as Error).message }, 'pairing by scan failed');
              deps.display.show({ screen: `配对失败（${code}），请重新扫码`, voice: '配对失败' });
            },
          );
        },
      },
    });
    deps.display.show({ screen: '设备未配对：请扫描配对二维码', voice: '请扫描配对二维码' });
    scanner.start();
  });
}
