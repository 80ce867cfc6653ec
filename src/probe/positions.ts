/**
 * Which positions of an encoded sentence a probe scores, shared by measurement and guided fine-tuning.
 *
 * - clean (the default): the real word pieces only, i.e. 1 .. length-2 ([CLS] and [SEP] left out, pads never);
 * - paper (the authors' code): every position of the padded sequence, [CLS], [SEP] and pads included.
 */
export type ProbeMode = 'clean' | 'paper';

/** Scored positions of one sentence of `length` pieces (specials included) padded to `padTo`. */
export function scoredPositions(length: number, padTo: number, mode: ProbeMode): number[] {
  if (mode === 'paper') return Array.from({ length: padTo }, (_, i) => i);
  return Array.from({ length: Math.max(0, length - 2) }, (_, i) => i + 1);
}

/**
 * Copies the rows of sentence `b` at `positions` out of a flat [batch, width, hidden] array of hidden
 * states, as one [positions.length, hidden] array.
 */
export function rowsAt(states: Float32Array, hidden: number, width: number, b: number, positions: readonly number[]): Float32Array {
  const rows = new Float32Array(positions.length * hidden);
  positions.forEach((p, k) => rows.set(states.subarray((b * width + p) * hidden, (b * width + p + 1) * hidden), k * hidden));
  return rows;
}
