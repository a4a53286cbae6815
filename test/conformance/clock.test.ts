import { systemClock } from '../../protocol/clock.js';
import { backgroundClock } from '../../simulator/clock.js';
import { FakeClock } from '../support/fake-clock.js';
import { describeClockConformance } from './clock.js';

/** Every Clock, real and fake, through the same suite. */
const realTime = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describeClockConformance('systemClock (protocol/clock.ts), real time', () => ({ clock: systemClock, pass: realTime, slackMs: 2 }));

describeClockConformance("backgroundClock (simulator/clock.ts: timers don't hold the process), real time", () => ({ clock: backgroundClock, pass: realTime, slackMs: 2 }));

describeClockConformance('FakeClock, advance (settling between timers)', () => {
  const clock = new FakeClock();
  return { clock, pass: (ms) => clock.advance(ms), slackMs: 0 };
});

describeClockConformance('FakeClock, advanceSync', () => {
  const clock = new FakeClock();
  return { clock, pass: async (ms) => clock.advanceSync(ms), slackMs: 0 };
});
