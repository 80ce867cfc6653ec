/**
 * Minimum spanning trees, for reading a tree off a distance probe's predicted distances (UUAS in
 * metrics.ts, the trees `inspect` draws).
 *
 * structural-probes (Hewitt & Manning 2019) does this in reporter.py's `prims_matrix_to_edges`, which
 * despite its name is Kruskal's algorithm: it sorts every ordered word pair (i, j) by `matrix[i][j]`
 * (Python's stable sort, so equal distances stay in row-major order) and keeps each pair that joins two
 * components of a union-find. Here it is Prim's algorithm on the dense matrix, O(n^2) rather than
 * O(n^2 log n). Both always give a tree of minimum total weight, and the same tree whenever the weights
 * between the kept words are distinct. With ties the tie-breaking below makes them agree too on
 * symmetric matrices: H&M's sort meets the unordered pair {a, b} (a < b) first as (a, b), so among
 * equal weights it takes pairs in lexicographic order of (smaller, larger) index, and Prim's algorithm
 * that always picks the smallest crossing edge under that same order (weight, then smaller index, then
 * larger) finds the one minimum spanning tree of that strict order, which is Kruskal's as well.
 */
import { check } from '../util/errors.js';

/** An undirected edge between two word indices, the smaller first. */
export type Edge = [number, number];

/**
 * The minimum spanning tree of the nodes `i` with `keep[i]` true (every node when `keep` is absent)
 * under the weights of the n x n matrix `dist`, by Prim's algorithm.
 *
 * - Symmetry: the weight of the edge {i, j} is min(dist[i][j], dist[j][i]). A predicted distance matrix
 *   is symmetric only up to float rounding, and the minimum is what H&M's code uses in effect (it sorts
 *   both ordered pairs and the first one seen joins the words). The diagonal is never read.
 * - Ties: the tree starts from the lowest kept index, and among crossing edges of equal weight the one
 *   whose (smaller index, larger index) is lexicographically smallest is taken.
 * - The result: the edges (each smaller index first) sorted lexicographically; [] for fewer than 2 kept
 *   nodes. Nodes that are not kept appear in no edge.
 *
 * Throws when `dist` is not square, when `keep` has the wrong length, or when a weight between two kept
 * nodes is NaN (no order would be meaningful). Infinite weights are allowed.
 */
export function minimumSpanningTree(dist: ReadonlyArray<ArrayLike<number>>, keep?: ArrayLike<boolean>): Edge[] {
  const n = dist.length;
  for (let i = 0; i < n; i++) {
    const row = dist[i];
    check(
      row !== undefined && row !== null && typeof row.length === 'number' && row.length === n,
      () => `minimumSpanningTree: dist must be square, but it has ${n} rows and row ${i} has ${row?.length ?? 'no'} entries`,
    );
  }
  check(
    keep === undefined || keep.length === n,
    () => `minimumSpanningTree: keep has ${keep!.length} entries but dist has ${n} rows`,
  );

  const nodes: number[] = [];
  for (let i = 0; i < n; i++) if (keep === undefined || keep[i]) nodes.push(i);
  const m = nodes.length;
  for (let a = 0; a < m; a++) {
    const i = nodes[a]!;
    for (let b = 0; b < m; b++) {
      const j = nodes[b]!;
      check(i === j || !Number.isNaN(dist[i]![j]), () => `minimumSpanningTree: dist[${i}][${j}] is NaN (between kept nodes ${i} and ${j})`);
    }
  }
  if (m < 2) return [];

  const weight = (i: number, j: number): number => Math.min(dist[i]![j]!, dist[j]![i]!);
  // Per node not yet in the tree (by position in `nodes`): its best edge to the tree under the strict
  // order (weight, smaller index, larger index), as the weight and the tree node at its other end.
  const inTree = new Uint8Array(m);
  const bestWeight = new Float64Array(m).fill(Infinity);
  const bestFrom = new Int32Array(m).fill(-1);
  const edges: Edge[] = [];

  let added = 0; // the position in `nodes` of the node last added; the tree starts at the lowest
  inTree[0] = 1;
  for (let step = 1; step < m; step++) {
    const t = nodes[added]!;
    // relax every outside node's best edge with its edge to the node just added
    for (let b = 0; b < m; b++) {
      if (inTree[b]) continue;
      const v = nodes[b]!;
      const w = weight(t, v);
      if (bestFrom[b] === -1 || precedes(w, t, v, bestWeight[b]!, bestFrom[b]!, v)) {
        bestWeight[b] = w;
        bestFrom[b] = t;
      }
    }
    // the smallest crossing edge under the same order
    let pick = -1;
    for (let b = 0; b < m; b++) {
      if (inTree[b]) continue;
      if (pick === -1 || precedes(bestWeight[b]!, bestFrom[b]!, nodes[b]!, bestWeight[pick]!, bestFrom[pick]!, nodes[pick]!)) pick = b;
    }
    const v = nodes[pick]!;
    const u = bestFrom[pick]!;
    edges.push(u < v ? [u, v] : [v, u]);
    inTree[pick] = 1;
    added = pick;
  }
  return edges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}

/**
 * Whether the edge {a1, b1} of weight w1 comes strictly before the edge {a2, b2} of weight w2: by
 * weight, then by the smaller index, then by the larger.
 */
function precedes(w1: number, a1: number, b1: number, w2: number, a2: number, b2: number): boolean {
  if (w1 !== w2) return w1 < w2;
  const lo1 = Math.min(a1, b1);
  const lo2 = Math.min(a2, b2);
  if (lo1 !== lo2) return lo1 < lo2;
  return Math.max(a1, b1) < Math.max(a2, b2);
}
