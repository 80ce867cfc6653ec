import { expect } from 'chai';
import { type ConlluSentence, goldDepths, goldDistances } from '../src/data/conllu.js';
import { type Edge, minimumSpanningTree } from '../src/probe/tree.js';
import { Rng } from '../src/util/random.js';
import { expectError } from './helpers.js';

/** A sentence whose word i + 1 has HEAD heads[i] (1-based, 0 for the root). */
function sentenceFromHeads(heads: readonly number[]): ConlluSentence {
  return {
    words: heads.map((head, i) => ({ index: i + 1, form: `w${i + 1}`, upos: 'X', xpos: 'X', head, deprel: 'dep' })),
    line: 1,
  };
}

/**
 * The HEADs of a random tree of n words: the words in a random order, the first the root and each later
 * one attached to a random word earlier in that order.
 */
function randomHeads(rng: Rng, n: number): number[] {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const heads = new Array<number>(n).fill(0);
  for (let k = 1; k < n; k++) heads[order[k]!] = order[rng.int(k)]! + 1;
  return heads;
}

/** The tree's edges (0-based, smaller first), sorted. */
function headEdges(heads: readonly number[]): Edge[] {
  return sortEdges(heads.flatMap((h, i): Edge[] => (h === 0 ? [] : [[Math.min(i, h - 1), Math.max(i, h - 1)]])));
}

function sortEdges(edges: Edge[]): Edge[] {
  return edges.map(([a, b]): Edge => (a < b ? [a, b] : [b, a])).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}

/** All-pairs shortest path lengths by Floyd-Warshall over an undirected unweighted graph. */
function floydWarshall(n: number, edges: readonly Edge[]): number[][] {
  const d = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 0 : Infinity)));
  for (const [a, b] of edges) d[a]![b] = d[b]![a] = 1;
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) if (d[i]![k]! + d[k]![j]! < d[i]![j]!) d[i]![j] = d[i]![k]! + d[k]![j]!;
    }
  }
  return d;
}

/** A random n x n matrix; symmetric unless asked otherwise; diagonal 0. */
function randomMatrix(rng: Rng, n: number, draw: () => number, symmetric = true): number[][] {
  const m = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      if (symmetric && j < i) m[i]![j] = m[j]![i]!;
      else m[i]![j] = draw();
    }
  }
  return m;
}

/** Every labelled tree on the given nodes, decoded from every Pruefer sequence (m^(m-2) of them). */
function allSpanningTrees(nodes: readonly number[]): Edge[][] {
  const m = nodes.length;
  if (m < 2) return [[]];
  const trees: Edge[][] = [];
  const seq = new Array<number>(m - 2).fill(0);
  for (;;) {
    const degree = new Array<number>(m).fill(1);
    for (const x of seq) degree[x]!++;
    const edges: Edge[] = [];
    for (const x of seq) {
      let leaf = 0;
      while (degree[leaf] !== 1) leaf++;
      edges.push([nodes[leaf]!, nodes[x]!]);
      degree[leaf]!--;
      degree[x]!--;
    }
    const last = degree.flatMap((d, i) => (d === 1 ? [i] : []));
    edges.push([nodes[last[0]!]!, nodes[last[1]!]!]);
    trees.push(sortEdges(edges));
    // the next sequence, counting in base m
    let k = 0;
    while (k < seq.length && seq[k] === m - 1) seq[k++] = 0;
    if (k === seq.length) break;
    seq[k]!++;
  }
  return trees;
}

const symWeight = (d: number[][], [a, b]: Edge): number => Math.min(d[a]![b]!, d[b]![a]!);
const treeWeight = (d: number[][], edges: readonly Edge[]): number => edges.reduce((s, e) => s + symWeight(d, e), 0);

/** Whether `edges` is a spanning tree of exactly `nodes`, each edge smaller index first, sorted. */
function expectSpanningTree(edges: readonly Edge[], nodes: readonly number[]): void {
  expect(edges.length).to.equal(Math.max(0, nodes.length - 1));
  expect(edges).to.deep.equal(sortEdges(edges.map((e) => [...e] as Edge)));
  const parent = new Map(nodes.map((v) => [v, v]));
  const find = (v: number): number => (parent.get(v) === v ? v : find(parent.get(v)!));
  for (const [a, b] of edges) {
    expect(a).to.be.lessThan(b);
    expect(parent.has(a) && parent.has(b), `edge ${a}-${b} leaves the kept nodes`).to.equal(true);
    expect(find(a), `edge ${a}-${b} closes a cycle`).to.not.equal(find(b));
    parent.set(find(a), find(b));
  }
}

/**
 * structural-probes' `prims_matrix_to_edges` as described there: every ordered pair of kept words sorted
 * stably (row-major order among equal distances) by its entry, each joining two components kept.
 */
function referenceKruskal(d: number[][], keep?: readonly boolean[]): Edge[] {
  const n = d.length;
  const pairs: Array<[number, number, number]> = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) if (!keep || (keep[i] && keep[j])) pairs.push([i, j, d[i]![j]!]);
  }
  pairs.sort((x, y) => x[2] - y[2]);
  const parent = Array.from({ length: n }, (_, i) => i);
  const find = (v: number): number => (parent[v] === v ? v : find(parent[v]!));
  const edges: Edge[] = [];
  for (const [i, j] of pairs) {
    if (find(i) === find(j)) continue;
    parent[find(i)] = find(j);
    edges.push([i, j]);
  }
  return sortEdges(edges);
}

describe('goldDistances', () => {
  it('a hand-drawn tree of 6 words', () => {
    //        w2 (root)
    //       /   \
    //     w1     w3
    //             |
    //            w5
    //           /  \
    //         w4    w6
    const s = sentenceFromHeads([2, 0, 2, 5, 3, 5]);
    expect(goldDistances(s)).to.deep.equal([
      [0, 1, 2, 4, 3, 4],
      [1, 0, 1, 3, 2, 3],
      [2, 1, 0, 2, 1, 2],
      [4, 3, 2, 0, 1, 2],
      [3, 2, 1, 1, 0, 1],
      [4, 3, 2, 2, 1, 0],
    ]);
  });

  it('one word, and no words', () => {
    expect(goldDistances(sentenceFromHeads([0]))).to.deep.equal([[0]]);
    expect(goldDistances(sentenceFromHeads([]))).to.deep.equal([]);
  });

  it('matches Floyd-Warshall on random trees, is symmetric with a zero diagonal, and gives depths from the root', () => {
    const rng = new Rng(11);
    for (let t = 0; t < 150; t++) {
      const n = 1 + rng.int(20);
      const heads = randomHeads(rng, n);
      const s = sentenceFromHeads(heads);
      const d = goldDistances(s);
      expect(d).to.deep.equal(floydWarshall(n, headEdges(heads)));
      const root = heads.indexOf(0);
      const depths = goldDepths(s, 0);
      for (let i = 0; i < n; i++) {
        expect(d[i]![i]).to.equal(0);
        expect(d[i]![root]).to.equal(depths[i]);
        for (let j = 0; j < n; j++) expect(d[i]![j]).to.equal(d[j]![i]);
      }
    }
  });

  it('equals depth_i + depth_j - 2 depth(lca) with a naive lowest common ancestor', () => {
    const rng = new Rng(12);
    for (let t = 0; t < 100; t++) {
      const n = 2 + rng.int(15);
      const heads = randomHeads(rng, n);
      const s = sentenceFromHeads(heads);
      const depths = goldDepths(s, 0);
      const ancestors = (w: number): number[] => {
        const path = [w];
        while (heads[path[path.length - 1]!] !== 0) path.push(heads[path[path.length - 1]!]! - 1);
        return path;
      };
      const d = goldDistances(s);
      for (let i = 0; i < n; i++) {
        const ai = ancestors(i);
        for (let j = 0; j < n; j++) {
          const aj = new Set(ancestors(j));
          const lca = ai.find((v) => aj.has(v))!;
          expect(d[i]![j]).to.equal(depths[i]! + depths[j]! - 2 * depths[lca]!);
          if (lca === i || lca === j) expect(d[i]![j]).to.equal(Math.abs(depths[i]! - depths[j]!));
        }
      }
    }
  });

  it('rejects HEADs that are not a tree', () => {
    expectError(() => goldDistances(sentenceFromHeads([2, 1, 0])), 'not a tree', 'cycle');
    expectError(() => goldDistances(sentenceFromHeads([2, 3, 1])), 'not a tree', 'HEAD 0');
    expectError(() => goldDistances(sentenceFromHeads([0, 0])), 'not a tree', '2 words have HEAD 0');
    expectError(() => goldDistances(sentenceFromHeads([0, 4])), 'not a tree', 'word 2 has HEAD 4');
    expectError(() => goldDistances(sentenceFromHeads([0, 2])), 'not a tree', 'own head');
  });
});

describe('minimumSpanningTree', () => {
  it('a hand-worked example of 5 nodes', () => {
    //      0    1    2    3    4
    const d = [
      [0, 4, 1, 7, 9],
      [4, 0, 2, 5, 8],
      [1, 2, 0, 6, 10],
      [7, 5, 6, 0, 3],
      [9, 8, 10, 3, 0],
    ];
    // Prim from 0: 0-2 (1); then 2-1 (2); then 1-3 (5, beating 2-3 at 6 and 1-4 at 8); then 3-4 (3).
    expect(minimumSpanningTree(d)).to.deep.equal([
      [0, 2],
      [1, 2],
      [1, 3],
      [3, 4],
    ]);
    // keeping 0, 1, 3, 4 only: 0-1 (4), 1-3 (5), 3-4 (3)
    expect(minimumSpanningTree(d, [true, true, false, true, true])).to.deep.equal([
      [0, 1],
      [1, 3],
      [3, 4],
    ]);
  });

  it('breaks ties by the lexicographically smallest (smaller, larger) index', () => {
    const ones = [
      [0, 1, 1, 1],
      [1, 0, 1, 1],
      [1, 1, 0, 1],
      [1, 1, 1, 0],
    ];
    expect(minimumSpanningTree(ones)).to.deep.equal([
      [0, 1],
      [0, 2],
      [0, 3],
    ]);
    // 0-1 first; then 0-2 and 1-2 tie at 2: 0-2 wins
    expect(minimumSpanningTree([[0, 1, 2], [1, 0, 2], [2, 2, 0]])).to.deep.equal([
      [0, 1],
      [0, 2],
    ]);
    // 1-2 first (1); then 0-1, 0-2 and 1-3 all 2: 0-1 is taken (joining 0), 0-2 is then a cycle, 1-3 joins 3
    const d = [
      [0, 2, 2, 9],
      [2, 0, 1, 2],
      [2, 1, 0, 9],
      [9, 2, 9, 0],
    ];
    expect(minimumSpanningTree(d)).to.deep.equal([
      [0, 1],
      [1, 2],
      [1, 3],
    ]);
    // over nodes 1..3 only: from 1, 1-2 (1) and then 1-3 (2, beating 2-3 at 9)
    expect(minimumSpanningTree(d, [false, true, true, true])).to.deep.equal([
      [1, 2],
      [1, 3],
    ]);
  });

  it('uses min(dist[i][j], dist[j][i]) for an asymmetric matrix and never reads the diagonal', () => {
    // 0-1 is 5 one way and 1 the other; 0-2 is 3 both ways; 1-2 is 2 one way and 9 the other
    const d = [
      [-100, 5, 3],
      [1, 50, 2],
      [3, 9, NaN],
    ];
    expect(minimumSpanningTree(d)).to.deep.equal([
      [0, 1],
      [1, 2],
    ]);
  });

  it('finds the unique minimum among all spanning trees for distinct weights (n = 2..7)', () => {
    const rng = new Rng(21);
    for (let n = 2; n <= 7; n++) {
      const nodes = Array.from({ length: n }, (_, i) => i);
      const trees = allSpanningTrees(nodes);
      expect(trees.length).to.equal(n ** (n - 2)); // Cayley's formula: the enumeration is complete
      for (let t = 0; t < (n < 7 ? 30 : 8); t++) {
        const d = randomMatrix(rng, n, () => rng.uniform());
        const weights = trees.map((tr) => treeWeight(d, tr));
        const best = Math.min(...weights);
        const minimal = trees.filter((_, k) => weights[k]! <= best + 1e-12);
        expect(minimal.length).to.equal(1);
        const mst = minimumSpanningTree(d);
        expect(mst).to.deep.equal(minimal[0]);
        expect(treeWeight(d, mst)).to.be.closeTo(best, 1e-12);
        expect(mst).to.deep.equal(referenceKruskal(d));
      }
    }
  });

  it('with ties (small integer weights): a minimum-weight spanning tree, the very tree of H&M\'s Kruskal', () => {
    const rng = new Rng(22);
    for (let n = 2; n <= 7; n++) {
      const trees = allSpanningTrees(Array.from({ length: n }, (_, i) => i));
      for (let t = 0; t < (n < 7 ? 30 : 8); t++) {
        const d = randomMatrix(rng, n, () => 1 + rng.int(3));
        const best = Math.min(...trees.map((tr) => treeWeight(d, tr)));
        const mst = minimumSpanningTree(d);
        expectSpanningTree(mst, Array.from({ length: n }, (_, i) => i));
        expect(treeWeight(d, mst)).to.equal(best);
        expect(mst).to.deep.equal(referenceKruskal(d));
      }
    }
    // larger matrices against the reference alone (too many trees to enumerate)
    for (let t = 0; t < 100; t++) {
      const n = 8 + rng.int(25);
      const d = randomMatrix(rng, n, () => rng.int(4));
      expect(minimumSpanningTree(d)).to.deep.equal(referenceKruskal(d));
    }
  });

  it('asymmetric random matrices: the tree of the elementwise minimum, and H&M\'s tree', () => {
    const rng = new Rng(23);
    for (let t = 0; t < 100; t++) {
      const n = 2 + rng.int(12);
      const d = randomMatrix(rng, n, () => rng.uniform(), false);
      const sym = d.map((row, i) => row.map((x, j) => Math.min(x, d[j]![i]!)));
      const mst = minimumSpanningTree(d);
      expect(mst).to.deep.equal(minimumSpanningTree(sym));
      expect(mst).to.deep.equal(referenceKruskal(d)); // weights distinct: the same tree
    }
  });

  it('with keep masks: spans exactly the kept nodes and matches brute force on the induced subgraph', () => {
    const rng = new Rng(24);
    for (let t = 0; t < 200; t++) {
      const n = 1 + rng.int(8);
      const keep = Array.from({ length: n }, () => rng.uniform() < 0.7);
      const nodes = keep.flatMap((k, i) => (k ? [i] : []));
      const ties = t % 2 === 1;
      const d = randomMatrix(rng, n, () => (ties ? rng.int(3) : rng.uniform()));
      // what is not kept cannot matter, NaN included
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) if (i !== j && (!keep[i] || !keep[j]) && rng.uniform() < 0.5) d[i]![j] = NaN;
      }
      const mst = minimumSpanningTree(d, keep);
      expectSpanningTree(mst, nodes);
      if (nodes.length < 2) {
        expect(mst).to.deep.equal([]);
        continue;
      }
      if (nodes.length > 7) continue;
      const trees = allSpanningTrees(nodes);
      const weights = trees.map((tr) => treeWeight(d, tr));
      const best = Math.min(...weights);
      expect(treeWeight(d, mst)).to.be.closeTo(best, 1e-12);
      if (!ties) expect(mst).to.deep.equal(trees[weights.indexOf(best)]);
      expect(mst).to.deep.equal(referenceKruskal(d, keep));
    }
  });

  it('recovers a dependency tree exactly from its gold distances', () => {
    const rng = new Rng(25);
    for (let t = 0; t < 100; t++) {
      const n = 1 + rng.int(25);
      const heads = randomHeads(rng, n);
      const d = goldDistances(sentenceFromHeads(heads));
      expect(minimumSpanningTree(d)).to.deep.equal(headEdges(heads));
      // leaving out leaves leaves the rest of the tree
      const isLeaf = Array.from({ length: n }, (_, i) => !heads.includes(i + 1));
      const keep = isLeaf.map((leaf) => !leaf || rng.uniform() < 0.5);
      const kept = headEdges(heads).filter(([a, b]) => keep[a] && keep[b]);
      expect(minimumSpanningTree(d, keep)).to.deep.equal(kept);
    }
  });

  it('accepts typed-array rows; fewer than two kept nodes give no edge', () => {
    const d = [Float32Array.from([0, 0.5, 0.25]), Float32Array.from([0.5, 0, 0.75]), Float32Array.from([0.25, 0.75, 0])];
    expect(minimumSpanningTree(d)).to.deep.equal([
      [0, 1],
      [0, 2],
    ]);
    expect(minimumSpanningTree([])).to.deep.equal([]);
    expect(minimumSpanningTree([[0]])).to.deep.equal([]);
    expect(minimumSpanningTree(d, [false, true, false])).to.deep.equal([]);
    expect(minimumSpanningTree(d, Uint8Array.from([0, 0, 0]) as unknown as ArrayLike<boolean>)).to.deep.equal([]);
  });

  it('rejects NaN between kept nodes, a matrix that is not square, and a keep of the wrong length', () => {
    expectError(() => minimumSpanningTree([[0, NaN], [1, 0]]), 'dist[0][1]', 'NaN');
    expectError(() => minimumSpanningTree([[0, 1, 2], [1, 0, 3], [2, NaN, 0]], [false, true, true]), 'dist[2][1]', 'NaN');
    expect(minimumSpanningTree([[0, 1, 2], [1, 0, 3], [2, NaN, 0]], [true, false, true])).to.deep.equal([[0, 2]]);
    expectError(() => minimumSpanningTree([[0, 1], [1]]), 'square', 'row 1 has 1 entries');
    expectError(() => minimumSpanningTree([[0, 1], [1, 0], [2, 2]]), 'square', '3 rows');
    expectError(() => minimumSpanningTree([[0, 1], [1, 0]], [true]), 'keep has 1 entries');
  });
});
