/*
 * topoprobe's native kernels: a small Node-API addon over OpenBLAS.
 *
 * Every function works on float32 typed arrays that the JavaScript side (src/backend/blas.ts) owns and
 * has already validated: shapes, strides and offsets are computed there, and only plain loops and
 * cblas_sgemm run here. Row-major throughout. Functions:
 *
 *   gemm(transA, transB, M, N, K, a, offsetsA, b, offsetsB, out, accumulate)
 *                                                                    batched C_i (+)= op(A_i) op(B_i)
 *   binary(op, a, stridesA, b, stridesB, out, shape)                broadcasting elementwise a (op) b
 *   unary(op, x, out)                                                elementwise f(x)
 *   reduce(op, x, shape, reduced, out)                               sum/max/min over marked axes
 *   transpose(x, shape, perm, out)
 *   softmax(x, rows, cols, out)                                      along the last axis
 *   adamw(p, m, v, g, lr, beta1, beta2, eps, weightDecay, c1, c2, gradScale, pOut, mOut, vOut)
 *                                                                    (the outputs may be the inputs: in place)
 *   gelu(x, out), geluGrad(x, dy, dx)                               exact (erf) GELU and its derivative
 *   layerNorm(x, rows, cols, gamma, beta, eps, y, mean, rstd)        over the last axis
 *   layerNormGrad(dy, x, rows, cols, gamma, mean, rstd, dx, dgamma, dbeta)
 *   dropout(x, rate, seed, y, mask)                                  mask = kept ? 1/(1-rate) : 0
 *   sumSquares(x) -> number                                          in double precision
 *   gather(params, rows, cols, indices, out)                         out[i] = params[indices[i]]
 *   setThreads(n), getThreads(), config()
 *
 * Elementwise loops over large arrays are split across threads with OpenMP (when compiled with it);
 * matrix products use OpenBLAS's own threads.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include <node_api.h>

#define MAX_DIMS 8
/* Below this many elements a loop is not worth splitting across threads. */
#define PAR_MIN 32768
#ifdef _OPENMP
#include <omp.h>
#define PRAGMA(x) _Pragma(#x)
#define PARALLEL_FOR(n) PRAGMA(omp parallel for schedule(static) if ((n) > PAR_MIN))
#else
#define PARALLEL_FOR(n)
#endif

#define CHECK(call)                                                              \
  do {                                                                           \
    if ((call) != napi_ok) {                                                     \
      napi_throw_error(env, NULL, "topoprobe_native: N-API call failed: " #call); \
      return NULL;                                                               \
    }                                                                            \
  } while (0)

#define FAIL(msg)                                  \
  do {                                             \
    napi_throw_error(env, NULL, "topoprobe_native: " msg); \
    return NULL;                                   \
  } while (0)

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) return 0;
  return 1;
}

/* A typed array's data pointer and length (elements); type must match. */
static int get_array(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  napi_typedarray_type type;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, data, &buffer, &offset) != napi_ok) return 0;
  return type == want;
}

static int get_i64(napi_env env, napi_value v, int64_t *out) { return napi_get_value_int64(env, v, out) == napi_ok; }
static int get_f64(napi_env env, napi_value v, double *out) { return napi_get_value_double(env, v, out) == napi_ok; }
static int get_bool(napi_env env, napi_value v, bool *out) { return napi_get_value_bool(env, v, out) == napi_ok; }

/* ------------------------------------------------------------------------------------------------ */
/* gemm */

static napi_value gemm(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  if (!get_args(env, info, 11, argv)) FAIL("gemm: expected 11 arguments");
  bool ta, tb, accumulate;
  int64_t M, N, K;
  float *a, *b, *out;
  int32_t *offA, *offB;
  size_t na, nb, nout, batchA, batchB;
  if (!get_bool(env, argv[0], &ta) || !get_bool(env, argv[1], &tb) || !get_i64(env, argv[2], &M) ||
      !get_i64(env, argv[3], &N) || !get_i64(env, argv[4], &K))
    FAIL("gemm: bad flags or sizes");
  if (!get_array(env, argv[5], napi_float32_array, (void **)&a, &na) ||
      !get_array(env, argv[6], napi_int32_array, (void **)&offA, &batchA) ||
      !get_array(env, argv[7], napi_float32_array, (void **)&b, &nb) ||
      !get_array(env, argv[8], napi_int32_array, (void **)&offB, &batchB) ||
      !get_array(env, argv[9], napi_float32_array, (void **)&out, &nout) || !get_bool(env, argv[10], &accumulate))
    FAIL("gemm: bad arrays");
  if (batchA != batchB || (size_t)(batchA * M * N) != nout) FAIL("gemm: output size does not match");
  for (size_t i = 0; i < batchA; i++) {
    if (offA[i] < 0 || (size_t)offA[i] + (size_t)(M * K) > na || offB[i] < 0 || (size_t)offB[i] + (size_t)(K * N) > nb)
      FAIL("gemm: operand offset out of range");
  }
  const int lda = ta ? (int)M : (int)K;
  const int ldb = tb ? (int)K : (int)N;
  for (size_t i = 0; i < batchA; i++) {
    if (K == 0) {
      if (!accumulate) memset(out + i * M * N, 0, sizeof(float) * M * N);
      continue;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                1.0f, a + offA[i], lda, b + offB[i], ldb, accumulate ? 1.0f : 0.0f, out + i * M * N, (int)N);
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* broadcasting binary ops */

enum { OP_ADD = 0, OP_SUB, OP_MUL, OP_DIV, OP_MAX, OP_MIN, OP_SQDIFF };

#define BINARY_LOOP(EXPR)                                                       \
  if (sa == 1 && sb == 1) {                                                     \
    PARALLEL_FOR(n)                                                             \
    for (int64_t i = 0; i < n; i++) { const float x = a[i], y = b[i]; o[i] = (EXPR); } \
  } else if (sa == 1 && sb == 0) {                                              \
    const float y = b[0];                                                       \
    PARALLEL_FOR(n)                                                             \
    for (int64_t i = 0; i < n; i++) { const float x = a[i]; o[i] = (EXPR); }    \
  } else if (sa == 0 && sb == 1) {                                              \
    const float x = a[0];                                                       \
    PARALLEL_FOR(n)                                                             \
    for (int64_t i = 0; i < n; i++) { const float y = b[i]; o[i] = (EXPR); }    \
  } else {                                                                      \
    for (int64_t i = 0; i < n; i++) { const float x = a[i * sa], y = b[i * sb]; o[i] = (EXPR); } \
  }

static void binary_row(int op, const float *a, int64_t sa, const float *b, int64_t sb, float *o, int64_t n) {
  switch (op) {
    case OP_ADD: BINARY_LOOP(x + y); break;
    case OP_SUB: BINARY_LOOP(x - y); break;
    case OP_MUL: BINARY_LOOP(x * y); break;
    case OP_DIV: BINARY_LOOP(x / y); break;
    case OP_MAX: BINARY_LOOP((x != x || y != y) ? NAN : (x > y ? x : y)); break;
    case OP_MIN: BINARY_LOOP((x != x || y != y) ? NAN : (x < y ? x : y)); break;
    case OP_SQDIFF: BINARY_LOOP((x - y) * (x - y)); break;
  }
}

static napi_value binary(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) FAIL("binary: expected 7 arguments");
  int64_t op;
  float *a, *b, *out;
  int32_t *stA, *stB, *shape;
  size_t na, nb, nout, rank, r1, r2;
  if (!get_i64(env, argv[0], &op) || op < OP_ADD || op > OP_SQDIFF) FAIL("binary: unknown op");
  if (!get_array(env, argv[1], napi_float32_array, (void **)&a, &na) ||
      !get_array(env, argv[2], napi_int32_array, (void **)&stA, &r1) ||
      !get_array(env, argv[3], napi_float32_array, (void **)&b, &nb) ||
      !get_array(env, argv[4], napi_int32_array, (void **)&stB, &r2) ||
      !get_array(env, argv[5], napi_float32_array, (void **)&out, &nout) ||
      !get_array(env, argv[6], napi_int32_array, (void **)&shape, &rank))
    FAIL("binary: bad arrays");
  if (rank == 0 || rank > MAX_DIMS || r1 != rank || r2 != rank) FAIL("binary: bad rank");
  size_t total = 1, lastA = 0, lastB = 0;
  for (size_t d = 0; d < rank; d++) {
    total *= (size_t)shape[d];
    if (shape[d] > 0) {
      lastA += (size_t)stA[d] * (size_t)(shape[d] - 1);
      lastB += (size_t)stB[d] * (size_t)(shape[d] - 1);
    }
  }
  if (total != nout) FAIL("binary: output size does not match shape");
  if (total == 0) return NULL;
  if (lastA >= na || lastB >= nb) FAIL("binary: strides reach past an operand");
  const int64_t inner = shape[rank - 1];
  const int64_t rows = (int64_t)(total / (size_t)inner);
  if (rows == 1) {
    binary_row((int)op, a, stA[rank - 1], b, stB[rank - 1], out, inner);
    return NULL;
  }
  /* Rows are independent: each finds its operands' offsets from its own index. */
  PARALLEL_FOR(total)
  for (int64_t r = 0; r < rows; r++) {
    int64_t rem = r, offA = 0, offB = 0;
    for (int d = (int)rank - 2; d >= 0; d--) {
      const int64_t i = rem % shape[d];
      rem /= shape[d];
      offA += i * stA[d];
      offB += i * stB[d];
    }
    binary_row((int)op, a + offA, stA[rank - 1], b + offB, stB[rank - 1], out + r * inner, inner);
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* unary ops */

enum { U_EXP = 0, U_LOG, U_SQRT, U_RSQRT, U_SQUARE, U_NEG, U_ERF, U_TANH, U_ABS, U_RECIPROCAL, U_FLOOR, U_SIGMOID, U_RELU };

static napi_value unary(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) FAIL("unary: expected 3 arguments");
  int64_t op;
  float *x, *o;
  size_t n, no;
  if (!get_i64(env, argv[0], &op)) FAIL("unary: bad op");
  if (!get_array(env, argv[1], napi_float32_array, (void **)&x, &n) ||
      !get_array(env, argv[2], napi_float32_array, (void **)&o, &no) || n != no)
    FAIL("unary: bad arrays");
  switch (op) {
    case U_EXP: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = expf(x[i]); break;
    case U_LOG: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = logf(x[i]); break;
    case U_SQRT: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = sqrtf(x[i]); break;
    case U_RSQRT: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = 1.0f / sqrtf(x[i]); break;
    case U_SQUARE: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = x[i] * x[i]; break;
    case U_NEG: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = -x[i]; break;
    case U_ERF: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = erff(x[i]); break;
    case U_TANH: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = tanhf(x[i]); break;
    case U_ABS: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = fabsf(x[i]); break;
    case U_RECIPROCAL: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = 1.0f / x[i]; break;
    case U_FLOOR: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = floorf(x[i]); break;
    case U_SIGMOID: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = 1.0f / (1.0f + expf(-x[i])); break;
    case U_RELU: PARALLEL_FOR(n) for (size_t i = 0; i < n; i++) o[i] = x[i] > 0 ? x[i] : (x[i] != x[i] ? x[i] : 0.0f); break;
    default: FAIL("unary: unknown op");
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* reductions over any set of axes */

enum { R_SUM = 0, R_MAX, R_MIN };

typedef struct {
  int rank;           /* after merging neighbouring axes of the same kind */
  int64_t size[MAX_DIMS];
  int reduced[MAX_DIMS];
  int64_t in_stride[MAX_DIMS];
  int64_t out_stride[MAX_DIMS]; /* 0 on reduced axes */
  int op;
} reduce_plan;

static void reduce_rec(const reduce_plan *p, int d, const float *x, double *acc) {
  const int64_t n = p->size[d];
  if (d == p->rank - 1) {
    if (p->reduced[d]) {
      double s = acc[0];
      if (p->op == R_SUM) {
        for (int64_t i = 0; i < n; i++) s += x[i];
      } else if (p->op == R_MAX) {
        for (int64_t i = 0; i < n; i++) s = (x[i] > s || x[i] != x[i]) ? x[i] : s;
      } else {
        for (int64_t i = 0; i < n; i++) s = (x[i] < s || x[i] != x[i]) ? x[i] : s;
      }
      acc[0] = s;
    } else {
      if (p->op == R_SUM) {
        for (int64_t i = 0; i < n; i++) acc[i] += x[i];
      } else if (p->op == R_MAX) {
        for (int64_t i = 0; i < n; i++) acc[i] = (x[i] > acc[i] || x[i] != x[i]) ? x[i] : acc[i];
      } else {
        for (int64_t i = 0; i < n; i++) acc[i] = (x[i] < acc[i] || x[i] != x[i]) ? x[i] : acc[i];
      }
    }
    return;
  }
  for (int64_t i = 0; i < n; i++) reduce_rec(p, d + 1, x + i * p->in_stride[d], acc + i * p->out_stride[d]);
}

static napi_value reduce(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) FAIL("reduce: expected 5 arguments");
  int64_t op;
  float *x, *out;
  int32_t *shape, *reduced;
  size_t n, rank, r2, nout;
  if (!get_i64(env, argv[0], &op) || op < R_SUM || op > R_MIN) FAIL("reduce: unknown op");
  if (!get_array(env, argv[1], napi_float32_array, (void **)&x, &n) ||
      !get_array(env, argv[2], napi_int32_array, (void **)&shape, &rank) ||
      !get_array(env, argv[3], napi_int32_array, (void **)&reduced, &r2) ||
      !get_array(env, argv[4], napi_float32_array, (void **)&out, &nout))
    FAIL("reduce: bad arrays");
  if (rank == 0 || rank > MAX_DIMS || r2 != rank) FAIL("reduce: bad rank");
  reduce_plan p;
  memset(&p, 0, sizeof p);
  p.op = (int)op;
  size_t total = 1, kept = 1;
  for (size_t d = 0; d < rank; d++) {
    total *= (size_t)shape[d];
    if (!reduced[d]) kept *= (size_t)shape[d];
    if (shape[d] == 1) continue; /* size-1 axes change nothing */
    if (p.rank > 0 && p.reduced[p.rank - 1] == (reduced[d] != 0)) {
      p.size[p.rank - 1] *= shape[d];
    } else {
      p.size[p.rank] = shape[d];
      p.reduced[p.rank] = reduced[d] != 0;
      p.rank++;
    }
  }
  if (total != n || kept != nout) FAIL("reduce: sizes do not match");
  double init = op == R_SUM ? 0.0 : (op == R_MAX ? -INFINITY : INFINITY);
  double *acc = (double *)malloc(sizeof(double) * (nout > 0 ? nout : 1));
  if (!acc) FAIL("reduce: out of memory");
  for (size_t i = 0; i < nout; i++) acc[i] = init;
  if (total > 0) {
    if (p.rank == 0) {
      p.rank = 1;
      p.size[0] = 1;
      p.reduced[0] = 1;
    }
    int64_t is = 1, os = 1;
    for (int d = p.rank - 1; d >= 0; d--) {
      p.in_stride[d] = is;
      is *= p.size[d];
      p.out_stride[d] = p.reduced[d] ? 0 : os;
      if (!p.reduced[d]) os *= p.size[d];
    }
    reduce_rec(&p, 0, x, acc);
  }
  for (size_t i = 0; i < nout; i++) out[i] = (float)acc[i];
  free(acc);
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* transpose */

static void transpose_rec(int d, int rank, const int64_t *size, const int64_t *src_stride, const float *x, float *o, int64_t *written) {
  const int64_t n = size[d];
  if (d == rank - 1) {
    const int64_t s = src_stride[d];
    float *dst = o + *written;
    if (s == 1) memcpy(dst, x, sizeof(float) * n);
    else for (int64_t i = 0; i < n; i++) dst[i] = x[i * s];
    *written += n;
    return;
  }
  for (int64_t i = 0; i < n; i++) transpose_rec(d + 1, rank, size, src_stride, x + i * src_stride[d], o, written);
}

static napi_value transpose(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) FAIL("transpose: expected 4 arguments");
  float *x, *out;
  int32_t *shape, *perm;
  size_t n, rank, r2, nout;
  if (!get_array(env, argv[0], napi_float32_array, (void **)&x, &n) ||
      !get_array(env, argv[1], napi_int32_array, (void **)&shape, &rank) ||
      !get_array(env, argv[2], napi_int32_array, (void **)&perm, &r2) ||
      !get_array(env, argv[3], napi_float32_array, (void **)&out, &nout))
    FAIL("transpose: bad arrays");
  if (rank == 0 || rank > MAX_DIMS || r2 != rank || n != nout) FAIL("transpose: bad shapes");
  int64_t in_stride[MAX_DIMS], size[MAX_DIMS], src_stride[MAX_DIMS];
  int64_t s = 1;
  for (int d = (int)rank - 1; d >= 0; d--) {
    in_stride[d] = s;
    s *= shape[d];
  }
  if ((size_t)s != n) FAIL("transpose: size does not match shape");
  if (n == 0) return NULL;
  for (size_t d = 0; d < rank; d++) {
    if (perm[d] < 0 || (size_t)perm[d] >= rank) FAIL("transpose: bad permutation");
    size[d] = shape[perm[d]];
    src_stride[d] = in_stride[perm[d]];
  }
  /* Each slice along the first output axis is independent: split them across threads. */
  const int64_t slice = (int64_t)n / size[0];
  PARALLEL_FOR(n)
  for (int64_t i = 0; i < size[0]; i++) {
    int64_t written = i * slice;
    if (rank == 1) out[i] = x[i * src_stride[0]];
    else transpose_rec(1, (int)rank, size, src_stride, x + i * src_stride[0], out, &written);
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* softmax along the last axis */

static napi_value softmax(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) FAIL("softmax: expected 4 arguments");
  float *x, *o;
  int64_t rows, cols;
  size_t n, no;
  if (!get_array(env, argv[0], napi_float32_array, (void **)&x, &n) || !get_i64(env, argv[1], &rows) ||
      !get_i64(env, argv[2], &cols) || !get_array(env, argv[3], napi_float32_array, (void **)&o, &no))
    FAIL("softmax: bad arguments");
  if ((size_t)(rows * cols) != n || n != no) FAIL("softmax: sizes do not match");
  PARALLEL_FOR(n)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *orow = o + r * cols;
    float m = -INFINITY;
    for (int64_t j = 0; j < cols; j++) m = xr[j] > m ? xr[j] : m;
    double sum = 0;
    for (int64_t j = 0; j < cols; j++) {
      orow[j] = expf(xr[j] - m);
      sum += orow[j];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < cols; j++) orow[j] *= inv;
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* AdamW, one fused pass (torch.optim.AdamW's arithmetic) */

static napi_value adamw(napi_env env, napi_callback_info info) {
  napi_value argv[15];
  if (!get_args(env, info, 15, argv)) FAIL("adamw: expected 15 arguments");
  float *p, *m, *v, *g, *po, *mo, *vo;
  size_t n, n2, n3, n4, n5, n6, n7;
  double lr, b1, b2, eps, wd, c1, c2, gscale;
  if (!get_array(env, argv[0], napi_float32_array, (void **)&p, &n) ||
      !get_array(env, argv[1], napi_float32_array, (void **)&m, &n2) ||
      !get_array(env, argv[2], napi_float32_array, (void **)&v, &n3) ||
      !get_array(env, argv[3], napi_float32_array, (void **)&g, &n4) || !get_f64(env, argv[4], &lr) ||
      !get_f64(env, argv[5], &b1) || !get_f64(env, argv[6], &b2) || !get_f64(env, argv[7], &eps) ||
      !get_f64(env, argv[8], &wd) || !get_f64(env, argv[9], &c1) || !get_f64(env, argv[10], &c2) ||
      !get_f64(env, argv[11], &gscale) ||
      !get_array(env, argv[12], napi_float32_array, (void **)&po, &n5) ||
      !get_array(env, argv[13], napi_float32_array, (void **)&mo, &n6) ||
      !get_array(env, argv[14], napi_float32_array, (void **)&vo, &n7))
    FAIL("adamw: bad arguments");
  if (n2 != n || n3 != n || n4 != n || n5 != n || n6 != n || n7 != n) FAIL("adamw: sizes differ");
  const float fb1 = (float)b1, fb2 = (float)b2, decay = (float)(1.0 - lr * wd);
  const float step = (float)(lr / c1), inv_c2 = (float)(1.0 / c2), feps = (float)eps, gs = (float)gscale;
  PARALLEL_FOR(n)
  for (size_t i = 0; i < n; i++) {
    const float gi = g[i] * gs;
    const float mi = fb1 * m[i] + (1.0f - fb1) * gi;
    const float vi = fb2 * v[i] + (1.0f - fb2) * gi * gi;
    mo[i] = mi;
    vo[i] = vi;
    po[i] = p[i] * decay - step * mi / (sqrtf(vi * inv_c2) + feps);
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------------------------------ */
/* exact GELU: y = x * Phi(x); dy/dx = Phi(x) + x * phi(x) */

static napi_value gelu(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  float *x, *o;
  size_t n, no;
  if (!get_args(env, info, 2, argv) || !get_array(env, argv[0], napi_float32_array, (void **)&x, &n) ||
      !get_array(env, argv[1], napi_float32_array, (void **)&o, &no) || n != no)
    FAIL("gelu: bad arguments");
  PARALLEL_FOR(n)
  for (size_t i = 0; i < n; i++) o[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
  return NULL;
}

static napi_value gelu_grad(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  float *x, *dy, *dx;
  size_t n, n2, n3;
  if (!get_args(env, info, 3, argv) || !get_array(env, argv[0], napi_float32_array, (void **)&x, &n) ||
      !get_array(env, argv[1], napi_float32_array, (void **)&dy, &n2) ||
      !get_array(env, argv[2], napi_float32_array, (void **)&dx, &n3) || n != n2 || n != n3)
    FAIL("geluGrad: bad arguments");
  const float inv_sqrt_2pi = 0.3989422804014327f;
  PARALLEL_FOR(n)
  for (size_t i = 0; i < n; i++) {
    const float v = x[i];
    const float cdf = 0.5f * (1.0f + erff(v * (float)M_SQRT1_2));
    const float pdf = inv_sqrt_2pi * expf(-0.5f * v * v);
    dx[i] = dy[i] * (cdf + v * pdf);
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* LayerNorm over the last axis (biased variance, as torch) and its gradient */

static napi_value layer_norm(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  float *x, *gamma, *beta, *y, *mean, *rstd;
  int64_t rows, cols;
  double eps;
  size_t n, ng, nb, ny, nm, nr;
  if (!get_args(env, info, 9, argv) || !get_array(env, argv[0], napi_float32_array, (void **)&x, &n) ||
      !get_i64(env, argv[1], &rows) || !get_i64(env, argv[2], &cols) ||
      !get_array(env, argv[3], napi_float32_array, (void **)&gamma, &ng) ||
      !get_array(env, argv[4], napi_float32_array, (void **)&beta, &nb) || !get_f64(env, argv[5], &eps) ||
      !get_array(env, argv[6], napi_float32_array, (void **)&y, &ny) ||
      !get_array(env, argv[7], napi_float32_array, (void **)&mean, &nm) ||
      !get_array(env, argv[8], napi_float32_array, (void **)&rstd, &nr))
    FAIL("layerNorm: bad arguments");
  if ((size_t)(rows * cols) != n || ny != n || ng != (size_t)cols || nb != (size_t)cols || nm != (size_t)rows || nr != (size_t)rows)
    FAIL("layerNorm: sizes do not match");
  PARALLEL_FOR(n)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    double s = 0;
    for (int64_t j = 0; j < cols; j++) s += xr[j];
    const float mu = (float)(s / cols);
    double v = 0;
    for (int64_t j = 0; j < cols; j++) {
      const float c = xr[j] - mu;
      v += (double)c * c;
    }
    const float rs = (float)(1.0 / sqrt(v / cols + eps));
    mean[r] = mu;
    rstd[r] = rs;
    for (int64_t j = 0; j < cols; j++) yr[j] = (xr[j] - mu) * rs * gamma[j] + beta[j];
  }
  return NULL;
}

static napi_value layer_norm_grad(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  float *dy, *x, *gamma, *mean, *rstd, *dx, *dgamma, *dbeta;
  int64_t rows, cols;
  size_t n, nx, ng, nm, nr, ndx, ndg, ndb;
  if (!get_args(env, info, 10, argv) || !get_array(env, argv[0], napi_float32_array, (void **)&dy, &n) ||
      !get_array(env, argv[1], napi_float32_array, (void **)&x, &nx) || !get_i64(env, argv[2], &rows) ||
      !get_i64(env, argv[3], &cols) || !get_array(env, argv[4], napi_float32_array, (void **)&gamma, &ng) ||
      !get_array(env, argv[5], napi_float32_array, (void **)&mean, &nm) ||
      !get_array(env, argv[6], napi_float32_array, (void **)&rstd, &nr) ||
      !get_array(env, argv[7], napi_float32_array, (void **)&dx, &ndx) ||
      !get_array(env, argv[8], napi_float32_array, (void **)&dgamma, &ndg) ||
      !get_array(env, argv[9], napi_float32_array, (void **)&dbeta, &ndb))
    FAIL("layerNormGrad: bad arguments");
  if ((size_t)(rows * cols) != n || nx != n || ndx != n || ng != (size_t)cols || ndg != (size_t)cols ||
      ndb != (size_t)cols || nm != (size_t)rows || nr != (size_t)rows)
    FAIL("layerNormGrad: sizes do not match");
  /* dx: per row */
  PARALLEL_FOR(n)
  for (int64_t r = 0; r < rows; r++) {
    const float *dyr = dy + r * cols, *xr = x + r * cols;
    float *dxr = dx + r * cols;
    const float mu = mean[r], rs = rstd[r];
    double sum_g = 0, sum_gx = 0;
    for (int64_t j = 0; j < cols; j++) {
      const float g = dyr[j] * gamma[j];
      const float xh = (xr[j] - mu) * rs;
      sum_g += g;
      sum_gx += (double)g * xh;
    }
    const float mg = (float)(sum_g / cols), mgx = (float)(sum_gx / cols);
    for (int64_t j = 0; j < cols; j++) {
      const float xh = (xr[j] - mu) * rs;
      dxr[j] = rs * (dyr[j] * gamma[j] - mg - xh * mgx);
    }
  }
  /* dgamma, dbeta: per column, summed over rows in double */
  double *acc = (double *)calloc((size_t)(2 * cols), sizeof(double));
  if (!acc) FAIL("layerNormGrad: out of memory");
  for (int64_t r = 0; r < rows; r++) {
    const float *dyr = dy + r * cols, *xr = x + r * cols;
    const float mu = mean[r], rs = rstd[r];
    for (int64_t j = 0; j < cols; j++) {
      acc[j] += (double)dyr[j] * ((xr[j] - mu) * rs);
      acc[cols + j] += dyr[j];
    }
  }
  for (int64_t j = 0; j < cols; j++) {
    dgamma[j] = (float)acc[j];
    dbeta[j] = (float)acc[cols + j];
  }
  free(acc);
  return NULL;
}

/* ------------------------------------------------------------------------------------------------ */
/* dropout with a counter-based generator: element i's draw depends only on (seed, i), so the result
 * does not depend on how the loop is split across threads. */

static inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static napi_value dropout(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  float *x, *y, *mask;
  double rate;
  int64_t seed;
  size_t n, ny, nm;
  if (!get_args(env, info, 5, argv) || !get_array(env, argv[0], napi_float32_array, (void **)&x, &n) ||
      !get_f64(env, argv[1], &rate) || !get_i64(env, argv[2], &seed) ||
      !get_array(env, argv[3], napi_float32_array, (void **)&y, &ny) ||
      !get_array(env, argv[4], napi_float32_array, (void **)&mask, &nm) || ny != n || nm != n)
    FAIL("dropout: bad arguments");
  if (!(rate >= 0 && rate < 1)) FAIL("dropout: rate must be in [0, 1)");
  const float keep = (float)(1.0 / (1.0 - rate));
  const uint64_t threshold = (uint64_t)(rate * 18446744073709551616.0); /* rate * 2^64 */
  const uint64_t key = mix64((uint64_t)seed);
  PARALLEL_FOR(n)
  for (size_t i = 0; i < n; i++) {
    const float m = mix64(key ^ (uint64_t)i) >= threshold ? keep : 0.0f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
  return NULL;
}

static napi_value sum_squares(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  float *x;
  size_t n;
  if (!get_args(env, info, 1, argv) || !get_array(env, argv[0], napi_float32_array, (void **)&x, &n)) FAIL("sumSquares: bad arguments");
  /* Fixed chunks summed in order: the result does not depend on the thread count or timing. */
  enum { CHUNKS = 64 };
  double part[CHUNKS] = {0};
  const size_t per = (n + CHUNKS - 1) / CHUNKS;
  PARALLEL_FOR(n)
  for (int c = 0; c < CHUNKS; c++) {
    const size_t lo = (size_t)c * per, hi = lo + per < n ? lo + per : n;
    double acc = 0;
    for (size_t i = lo; i < hi; i++) acc += (double)x[i] * x[i];
    part[c] = acc;
  }
  double s = 0;
  for (int c = 0; c < CHUNKS; c++) s += part[c];
  CHECK(napi_create_double(env, s, &result));
  return result;
}

/* Row gather (an embedding lookup): out[i, :] = params[indices[i], :]; indices already validated. */
static napi_value gather(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  float *params, *out;
  int32_t *indices;
  int64_t rows, cols;
  size_t np, ni, no;
  if (!get_args(env, info, 5, argv) || !get_array(env, argv[0], napi_float32_array, (void **)&params, &np) ||
      !get_i64(env, argv[1], &rows) || !get_i64(env, argv[2], &cols) ||
      !get_array(env, argv[3], napi_int32_array, (void **)&indices, &ni) ||
      !get_array(env, argv[4], napi_float32_array, (void **)&out, &no))
    FAIL("gather: bad arguments");
  if ((size_t)(rows * cols) != np || ni * (size_t)cols != no) FAIL("gather: sizes do not match");
  for (size_t i = 0; i < ni; i++) {
    if (indices[i] < 0 || indices[i] >= rows) FAIL("gather: index out of range");
  }
  PARALLEL_FOR(no)
  for (size_t i = 0; i < ni; i++) memcpy(out + i * cols, params + (int64_t)indices[i] * cols, sizeof(float) * cols);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t n;
  if (!get_args(env, info, 1, argv) || !get_i64(env, argv[0], &n) || n < 1) FAIL("setThreads: expected a positive integer");
  openblas_set_num_threads((int)n);
#ifdef _OPENMP
  omp_set_num_threads((int)n);
#endif
  return NULL;
}

static napi_value get_threads(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &out));
  return out;
}

static napi_value config(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  CHECK(napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &out));
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"gemm", NULL, gemm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"binary", NULL, binary, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unary", NULL, unary, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reduce", NULL, reduce, NULL, NULL, NULL, napi_enumerable, NULL},
      {"transpose", NULL, transpose, NULL, NULL, NULL, napi_enumerable, NULL},
      {"softmax", NULL, softmax, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adamw", NULL, adamw, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gelu", NULL, gelu, NULL, NULL, NULL, napi_enumerable, NULL},
      {"geluGrad", NULL, gelu_grad, NULL, NULL, NULL, napi_enumerable, NULL},
      {"layerNorm", NULL, layer_norm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"layerNormGrad", NULL, layer_norm_grad, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dropout", NULL, dropout, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sumSquares", NULL, sum_squares, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gather", NULL, gather, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setThreads", NULL, set_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getThreads", NULL, get_threads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"config", NULL, config, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
