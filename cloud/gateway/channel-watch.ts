import type { Clock } from '../../protocol/clock.js';
import type { Logger } from '../log.js';
import type { CloudStore } from '../store/store.js';
import type { ChannelRouter } from './channels.js';

/**
 * `scanbox-cloud channel pin|disable|enable` runs in another process and only writes the store; the
 * running cloud reads the overrides every `pollMs` and hands them to the router, and writes each
 * channel's breaker state and window figures for `channel list`. Read once before the first payment.
 */
export async function watchChannels(deps: { store: CloudStore; router: ChannelRouter; logger: Logger; clock: Clock; pollMs: number }): Promise<() => void> {
  let busy = false;
  let last = '';
  const sync = async () => {
    const overrides = await deps.store.channelOverrides();
    const key = JSON.stringify(overrides);
    if (key !== last) {
      last = key;
      deps.router.setOverrides(toRouting(overrides));
      deps.logger.info({ overrides }, 'channel overrides applied');
    }
    await deps.store.saveChannelStates(Object.entries(deps.router.summaries()).map(([channel, summary]) => ({ channel, summary, at: deps.clock.now() })));
  };
  await sync();
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    sync()
      .catch((err: unknown) => deps.logger.error({ err: (err as Error).message }, 'channel overrides poll failed'))
      .finally(() => (busy = false));
  }, deps.pollMs);
  timer.unref();
  return () => clearInterval(timer);
}

function toRouting(rows: Awaited<ReturnType<CloudStore['channelOverrides']>>) {
  const pinned: Record<string, string> = {};
  const disabled = new Set<string>();
  for (const r of rows) {
    if (r.mode === 'disabled') disabled.add(r.channel);
    else for (const w of r.wallets) pinned[w] = r.channel;
  }
  return { pinned, disabled };
}
