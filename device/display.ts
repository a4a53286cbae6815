import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';

/** What the box's screen shows and its speaker says. `voice` is null when the box stays silent. */
export interface Screen {
  screen: string;
  voice: string | null;
  outTradeNo?: string;
  saleRef?: string;
}

/** The box's screen and speaker. A real box drives an LCD and a TTS chip; CI and the demo print. */
export interface Display {
  show(screen: Screen): void;
}

/**
 * Prints each screen as one pino line `{"msg":"display","screen":…,"voice":…}` and tells in-process
 * subscribers (the simulator, tests), so what the customer would see is observable without hardware.
 */
export class ConsoleDisplay implements Display {
  private readonly events = new EventEmitter();
  current: Screen | null = null;

  constructor(private readonly logger: Logger) {}

  show(screen: Screen): void {
    this.current = screen;
    this.logger.info({ screen: screen.screen, voice: screen.voice, outTradeNo: screen.outTradeNo, saleRef: screen.saleRef }, 'display');
    this.events.emit('screen', screen);
  }

  /** Returns the function that unsubscribes. */
  subscribe(fn: (screen: Screen) => void): () => void {
    this.events.on('screen', fn);
    return () => this.events.off('screen', fn);
  }
}
