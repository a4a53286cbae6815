import { InvalidArgumentError, Option } from 'commander';
import { WALLET_MODES } from '../rig.js';

/** `--wallets scripted|real-formats`, the same for demo, fleet and chaos. */
export function walletsOption(): Option {
  return new Option('--wallets <mode>', 'scripted: one JSON gateway; real-formats: WeChat Pay and Alipay through the real adapters and wire-faithful HTTPS simulators')
    .choices(WALLET_MODES)
    .default('scripted');
}

/** `--channels 1|2`: provider accounts per wallet; with 2, a primary and a backup, and channel outages to play. */
export function channelsOption(): Option {
  return new Option('--channels <n>', '1, or 2 per wallet: a cheap primary and a dearer backup (channel outages then move payments between them)')
    .default(1)
    .argParser((v): 1 | 2 => {
      if (v !== '1' && v !== '2') throw new InvalidArgumentError('--channels is 1 or 2');
      return Number(v) as 1 | 2;
    });
}
