/**
 * Reading tensors back, on every backend. WebGPU has no synchronous read (src/backend/webgpu.ts), so code
 * that runs on it reads with these (or `await t.data()`), never `dataSync`/`arraySync`.
 */
import * as tf from '@tensorflow/tfjs';

/** A copy of a float tensor's values that the caller owns (an optimizer may later write the tensor in place). */
export async function readCopy(t: tf.Tensor): Promise<Float32Array> {
  const data = await t.data();
  // On the CPU backends data() can hand out the tensor's own storage; a copy is always safe.
  return Float32Array.from(data as Float32Array);
}

/** Reads named scalars in one transfer (one wait for a GPU) and disposes them. */
export async function readScalars(values: Record<string, tf.Scalar>): Promise<Record<string, number>> {
  const keys = Object.keys(values);
  if (keys.length === 0) return {};
  const stacked = tf.stack(keys.map((k) => values[k]!));
  const data = await stacked.data();
  tf.dispose([stacked, ...Object.values(values)]);
  return Object.fromEntries(keys.map((k, i) => [k, data[i]!]));
}
