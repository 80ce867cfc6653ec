/**
 * Collapse monitors: pure functions that tell, at an evaluation, whether guided fine-tuning has found the
 * probe loss's trivial minimum instead of tree structure.
 *
 * When the tree labels come from the probe's own predictions (the paper's X_ssp target), the loss has a
 * minimum that needs no structure at all: the "star" tree, one token at depth 1 and every other at 2.
 * An encoder pushed hard towards it makes the token states of a sentence nearly one vector, the [CLS]
 * state stops varying, and the classifier predicts one class. Three figures see this happen:
 *
 * - `constant_predictor`: every evaluation prediction is the same class (MCC 0; see isCollapsed).
 * - `max_label`: the mean over sentences of the largest tree label the guide's probe gives the sentence.
 *   A star tree's is exactly 2 (1 for a one-piece sentence); a pretrained encoder's is far higher
 *   (builtin:mini's layer 4: about 5.4 on CoLA dev).
 * - `sameness`: the mean over sentences of |mean of the states| / mean of |state| over the sentence's
 *   scored positions. It is 1 exactly when all the states point the same way (one vector, or positive
 *   multiples of it) and falls towards 0 as they spread in opposing directions; builtin:mini's layer 4
 *   is about 0.5 pretrained and 0.96-0.998 once collapsed.
 *
 * `collapseVerdict` combines them: a run is collapsed when it predicts one class, or when any guided
 * submodule's labels are at or under STAR_TREE_MAX_LABEL (within one level of the star tree's 2).
 */
import { check } from '../util/errors.js';
import { treeLabels } from '../probe/labels.js';

/**
 * At or under this mean largest label a guide's labels count as (nearly) the star tree: within one level of
 * its 2. (The paper's recipe on builtin:mini ends at 2.0-2.6; the pretrained encoder starts at 5.4.)
 */
export const STAR_TREE_MAX_LABEL = 3;

/** The largest greedy tree label of one sentence's predicted norms (0 for an empty sentence). */
export function maxTreeLabel(norms: ArrayLike<number>): number {
  if (norms.length === 0) return 0;
  return Math.max(...treeLabels(norms, 'ssp'));
}

/**
 * |mean_t h_t| / mean_t |h_t| for one sentence's states (`n` rows of `hidden` values, row-major). Null for
 * no rows or all-zero states (the ratio is 0/0).
 */
export function sameness(states: ArrayLike<number>, n: number, hidden: number): number | null {
  check(Number.isInteger(n) && n >= 0 && Number.isInteger(hidden) && hidden > 0, () => `sameness: bad shape ${n} x ${hidden}`);
  check(states.length === n * hidden, () => `sameness: ${states.length} values for ${n} x ${hidden}`);
  if (n === 0) return null;
  const sum = new Float64Array(hidden);
  let normSum = 0;
  for (let t = 0; t < n; t++) {
    let sq = 0;
    for (let k = 0; k < hidden; k++) {
      const x = states[t * hidden + k]!;
      sum[k]! += x;
      sq += x * x;
    }
    normSum += Math.sqrt(sq);
  }
  if (normSum === 0) return null;
  let meanSq = 0;
  for (let k = 0; k < hidden; k++) meanSq += (sum[k]! / n) ** 2;
  return Math.sqrt(meanSq) / (normSum / n);
}

/** Per-guide figures of one evaluation. */
export interface GuideMonitor {
  max_label: number | null;
  sameness: number | null;
}

export interface CollapseVerdict {
  collapsed: boolean;
  constant_predictor: boolean;
  /** The guided submodules (`layer_<i>`) whose mean largest label is at or under STAR_TREE_MAX_LABEL. */
  star_tree: string[];
}

/** Whether an evaluation shows collapse: one predicted class, or star-tree labels at some guided submodule. */
export function collapseVerdict(constantPredictor: boolean, guides: Readonly<Record<string, GuideMonitor>>): CollapseVerdict {
  const star = Object.entries(guides)
    .filter(([, m]) => m.max_label !== null && m.max_label <= STAR_TREE_MAX_LABEL)
    .map(([k]) => k);
  return { collapsed: constantPredictor || star.length > 0, constant_predictor: constantPredictor, star_tree: star };
}
