import { Option } from 'commander';
import { WALLET_MODES } from '../rig.js';

/** `--wallets scripted|real-formats`, the same for demo, fleet and chaos. */
export function walletsOption(): Option {
  return new Option('--wallets <mode>', 'scripted: one JSON gateway; real-formats: WeChat Pay and Alipay through the real adapters and wire-faithful HTTPS simulators')
    .choices(WALLET_MODES)
    .default('scripted');
}
