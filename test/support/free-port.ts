/** The simulator's stack needs it too (simulator/stack/free-port.ts); one copy. */
export { freeLoopbackPort } from '../../simulator/stack/free-port.js';
