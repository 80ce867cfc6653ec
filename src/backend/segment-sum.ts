/**
 * A scatter-add `UnsortedSegmentSum` kernel for the cpu and wasm backends.
 *
 * `tf.gather`'s gradient (and so the gradient of every embedding lookup) is an UnsortedSegmentSum over the
 * vocabulary. The wasm backend has no such kernel, and the cpu backend's builds a one-hot comparison of
 * every id against every segment (O(numSegments x ids)), which for a 30522-word vocabulary costs tens of GB.
 * This kernel does one pass over the ids: out[segmentIds[i], :] += x[i, :]; ids outside
 * [0, numSegments) are dropped, as in TensorFlow.
 */
import * as tf from '@tensorflow/tfjs';

type AnyBackend = tf.KernelBackend & {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeTensorInfo?(shape: number[], dtype: tf.DataType, values: tf.backend_util.BackendValues): tf.TensorInfo;
  makeOutput?(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): tf.TensorInfo;
};

/** The arithmetic on plain arrays: x has `ids.length * inner` values. */
export function segmentSum(
  x: ArrayLike<number>,
  ids: ArrayLike<number>,
  inner: number,
  numSegments: number,
  out: Float32Array | Int32Array,
): void {
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] += x[src + j];
  }
}

function unsortedSegmentSum(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const backend = args.backend as AnyBackend;
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const numSegments = (args.attrs as { numSegments: number }).numSegments;
  const idsRank = segmentIds.shape.length;
  for (let d = 0; d < idsRank; d++) {
    if (segmentIds.shape[d] !== x.shape[d]) {
      throw new Error(`UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] is not a prefix of x shape [${x.shape}]`);
    }
  }
  const outShape = [numSegments, ...x.shape.slice(idsRank)];
  const inner = outShape.slice(1).reduce((a, b) => a * b, 1);
  const dtype = x.dtype === 'int32' ? 'int32' : 'float32';
  const out = dtype === 'int32' ? new Int32Array(numSegments * inner) : new Float32Array(numSegments * inner);
  const xv = backend.readSync(x.dataId) as ArrayLike<number>;
  const ids = backend.readSync(segmentIds.dataId) as ArrayLike<number>;
  segmentSum(xv, ids, inner, numSegments, out);
  if (backend.makeTensorInfo) return backend.makeTensorInfo(outShape, dtype, out);
  if (backend.makeOutput) return backend.makeOutput(outShape, dtype, undefined, out);
  throw new Error('UnsortedSegmentSum: backend can neither makeTensorInfo nor makeOutput');
}

/** Registers the kernel for `backendName`, replacing any existing one. */
export function registerSegmentSumKernel(backendName: 'cpu' | 'wasm' | 'blas'): void {
  if (tf.getKernel('UnsortedSegmentSum', backendName)) tf.unregisterKernel('UnsortedSegmentSum', backendName);
  tf.registerKernel({ kernelName: 'UnsortedSegmentSum', backendName, kernelFunc: unsortedSegmentSum as tf.KernelFunc });
}
