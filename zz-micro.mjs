const m = (await import('module')).createRequire(import.meta.url)('./native/build/topoprobe_native.node');
const n = 2048 * 3072;
const a = new Float32Array(n).map(() => Math.random()), b = new Float32Array(n).map(() => Math.random());
const st = new Int32Array([1]), sh = new Int32Array([n]);
let t = performance.now();
for (let i = 0; i < 20; i++) { const o = new Float32Array(n); m.binary(2, a, st, b, st, o, sh); }
console.log('mul fresh alloc ms', ((performance.now() - t) / 20).toFixed(2));
const o = new Float32Array(n);
t = performance.now();
for (let i = 0; i < 20; i++) m.binary(2, a, st, b, st, o, sh);
console.log('mul reuse ms', ((performance.now() - t) / 20).toFixed(2));
t = performance.now();
for (let i = 0; i < 5; i++) m.unary(0, a, o);
console.log('exp ms', ((performance.now() - t) / 5).toFixed(2));
t = performance.now();
for (let i = 0; i < 5; i++) m.unary(6, a, o);
console.log('erf ms', ((performance.now() - t) / 5).toFixed(2));
t = performance.now();
for (let i = 0; i < 20; i++) { const o = new Float32Array(n); }
console.log('alloc only ms', ((performance.now() - t) / 20).toFixed(2));
