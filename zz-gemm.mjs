const m = (await import('module')).createRequire(import.meta.url)('./native/build/topoprobe_native.node');
m.setThreads(2);
function bench(name, ta, tb, M, N, K, batch = 1) {
  const a = new Float32Array(batch * M * K).map(() => Math.random()), b = new Float32Array(batch * K * N).map(() => Math.random());
  const oa = Int32Array.from({ length: batch }, (_, i) => i * M * K), ob = Int32Array.from({ length: batch }, (_, i) => i * K * N);
  const out = new Float32Array(batch * M * N);
  m.gemm(ta, tb, M, N, K, a, oa, b, ob, out);
  const t = performance.now(); const reps = 5;
  for (let i = 0; i < reps; i++) m.gemm(ta, tb, M, N, K, a, oa, b, ob, out);
  const s = (performance.now() - t) / reps / 1000;
  console.log(name.padEnd(34), (2 * M * N * K * batch / s / 1e9).toFixed(0).padStart(5), 'GFLOP/s', (s * 1000).toFixed(1), 'ms');
}
bench('1024^3', false, false, 1024, 1024, 1024);
bench('qkv fwd x W^T 2048x768x768', false, true, 2048, 768, 768);
bench('ffn1 fwd 2048x3072x768', false, true, 2048, 3072, 768);
bench('ffn2 fwd 2048x768x3072', false, true, 2048, 768, 3072);
bench('ffn1 dx = dy W 2048x768x3072', false, false, 2048, 768, 3072);
bench('ffn1 dW = dy^T x 3072x768x2048', true, false, 3072, 768, 2048);
bench('attn scores 384 x 64x64x64', false, true, 64, 64, 64, 384);
bench('attn ctx 384 x 64x64x64', false, false, 64, 64, 64, 384);
