/** How a scanner or cash register ends a line. Scanners ship configured for any of the three. */
export const TERMINATORS = { CR: '\r', LF: '\n', CRLF: '\r\n' } as const;
export type Terminator = keyof typeof TERMINATORS;
export const TERMINATOR_NAMES = Object.keys(TERMINATORS) as Terminator[];
