import { expect } from 'chai';
import { maskSequence, continuationFlags, checkMaskingOptions, type MaskingOptions, type MaskedSequence } from '../src/train/masking.js';
import { Rng } from '../src/util/random.js';
import { expectError } from './helpers.js';

// A toy id space: 0 [PAD], 1 [UNK], 2 [CLS], 3 [SEP], 4 [MASK]; corpus pieces 10..59; random
// replacements drawn from 100..149 (disjoint from the corpus pieces, so a replacement is recognisable).
const PAD = 0;
const CLS = 2;
const SEP = 3;
const MASK = 4;
const SPECIALS = new Set([0, 1, 2, 3, 4]);
const RANDOM_IDS = Array.from({ length: 50 }, (_, i) => 100 + i);

const options = (over: Partial<MaskingOptions> = {}): MaskingOptions => ({
  probability: 0.15, maskRatio: 0.8, randomRatio: 0.1, wholeWord: false, maskId: MASK, specialIds: SPECIALS, randomIds: RANDOM_IDS, ...over,
});

/** A generator whose shuffle, uniform and int answers are scripted, for hand-worked examples. */
class ScriptedRng extends Rng {
  constructor(private readonly order: (n: number) => number[], private readonly uniforms: number[], private readonly ints: number[]) {
    super(0);
  }
  override shuffle<T>(xs: T[]): T[] {
    const copy = [...xs];
    this.order(xs.length).forEach((from, to) => (xs[to] = copy[from]!));
    return xs;
  }
  override uniform(): number {
    const u = this.uniforms.shift();
    if (u === undefined) throw new Error('script ran out of uniforms');
    return u;
  }
  override int(n: number): number {
    const i = this.ints.shift();
    if (i === undefined || i >= n) throw new Error('script ran out of ints');
    return i;
  }
}

/** 4-sigma binomial bounds on a fraction of n draws with probability p. */
function expectFraction(count: number, n: number, p: number, what: string): void {
  const sigma = Math.sqrt((p * (1 - p)) / n);
  expect(Math.abs(count / n - p), `${what}: ${count}/${n} vs ${p}`).to.be.below(4 * sigma);
}

describe('masked-LM masking', () => {
  describe('single pieces (BERT statistics)', () => {
    const N = 2000;
    const LEN = 40;
    // [CLS] 20 pieces [SEP] 20 pieces [SEP]: 40 candidates, 3 specials (one of them mid-sequence).
    const sequences: number[][] = [];
    const gen = new Rng(1234);
    for (let s = 0; s < N; s++) {
      const body = Array.from({ length: LEN }, () => 10 + gen.int(50));
      sequences.push([CLS, ...body.slice(0, 20), SEP, ...body.slice(20), SEP]);
    }
    let results: MaskedSequence[];
    before(() => {
      const rng = new Rng(7);
      results = sequences.map((ids) => maskSequence(ids, ids.map(() => false), rng, options()));
    });
    const target = Math.max(1, Math.round(0.15 * LEN)); // 6

    it('selects exactly max(1, round(0.15 × candidates)) pieces per sequence, never a special, in ascending order', () => {
      for (const [s, r] of results.entries()) {
        const ids = sequences[s]!;
        expect(r.positions).to.have.length(target);
        for (let k = 1; k < r.positions.length; k++) expect(r.positions[k]!).to.be.above(r.positions[k - 1]!);
        for (const p of r.positions) expect(SPECIALS.has(ids[p]!), `position ${p} of sequence ${s}`).to.equal(false);
        expect(r.labels).to.deep.equal(r.positions.map((p) => ids[p]));
        // Unselected positions (specials included) are untouched.
        const chosen = new Set(r.positions);
        ids.forEach((id, i) => {
          if (!chosen.has(i)) expect(r.inputIds[i]).to.equal(id);
        });
        expect(r.inputIds).to.have.length(ids.length);
      }
      // The input array is not modified.
      expect(sequences[0]![0]).to.equal(CLS);
    });

    it('replaces 80% by [MASK], 10% by a random piece and keeps 10% (within 4 sigma)', () => {
      let mask = 0;
      let random = 0;
      let kept = 0;
      const drawn = new Map<number, number>();
      for (const r of results) {
        r.positions.forEach((p, k) => {
          const now = r.inputIds[p]!;
          if (now === MASK) mask += 1;
          else if (now === r.labels[k]) kept += 1;
          else {
            expect(RANDOM_IDS, `replacement ${now}`).to.include(now);
            drawn.set(now, (drawn.get(now) ?? 0) + 1);
            random += 1;
          }
        });
      }
      const n = N * target;
      expect(mask + random + kept).to.equal(n);
      expectFraction(mask, n, 0.8, '[MASK]');
      expectFraction(random, n, 0.1, 'random');
      expectFraction(kept, n, 0.1, 'kept');
      // The random pieces are spread over the whole list (about 24 draws each).
      expect(drawn.size).to.equal(RANDOM_IDS.length);
      for (const [id, c] of drawn) expect(c, `draws of ${id}`).to.be.within(3, 60);
    });

    it('selects every candidate position equally often', () => {
      const counts = new Map<number, number>();
      for (const r of results) for (const p of r.positions) counts.set(p, (counts.get(p) ?? 0) + 1);
      // Positions 0, 21 and 42 are specials.
      expect([...counts.keys()].sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 43 }, (_, i) => i).filter((i) => i !== 0 && i !== 21 && i !== 42));
      for (const [p, c] of counts) expectFraction(c, N, target / LEN, `position ${p}`);
    });

    it('is deterministic for a seed and differs for another', () => {
      const again = sequences.map((ids) => maskSequence(ids, ids.map(() => false), new Rng(99), options()));
      const same = sequences.map((ids) => maskSequence(ids, ids.map(() => false), new Rng(99), options()));
      const other = sequences.map((ids) => maskSequence(ids, ids.map(() => false), new Rng(100), options()));
      expect(same).to.deep.equal(again);
      const differing = other.filter((r, i) => JSON.stringify(r) !== JSON.stringify(again[i])).length;
      expect(differing).to.be.above(N * 0.9);
      // One generator run over the whole list reproduces too.
      const rerun = (() => {
        const g = new Rng(7);
        return sequences.map((ids) => maskSequence(ids, ids.map(() => false), g, options()));
      })();
      expect(rerun).to.deep.equal(results);
    });

    it('the count follows max(1, round(p × candidates)) for short and long sequences', () => {
      const g = new Rng(3);
      for (const [candidates, p, expected] of [[1, 0.15, 1], [3, 0.15, 1], [4, 0.15, 1], [10, 0.15, 2], [7, 0.5, 4], [13, 0.15, 2], [100, 0.15, 15], [9, 0.9, 8]] as const) {
        const ids = [CLS, ...Array.from({ length: candidates }, (_, i) => 10 + (i % 50)), SEP, PAD, PAD];
        const r = maskSequence(ids, ids.map(() => false), g, options({ probability: p }));
        expect(r.positions, `${candidates} candidates at ${p}`).to.have.length(expected);
        expect(r.positions.every((i) => i >= 1 && i <= candidates)).to.equal(true);
      }
      // Nothing but specials: nothing to select.
      expect(maskSequence([CLS, SEP, PAD], [false, false, false], g, options())).to.deep.equal({ inputIds: [CLS, SEP, PAD], positions: [], labels: [] });
    });

    it('mask 0 / random 0 keeps every piece; mask 1 masks every selected piece', () => {
      const ids = [CLS, ...Array.from({ length: 40 }, (_, i) => 10 + i), SEP];
      const flags = ids.map(() => false);
      const keep = maskSequence(ids, flags, new Rng(5), options({ maskRatio: 0, randomRatio: 0 }));
      expect(keep.inputIds).to.deep.equal(ids);
      expect(keep.positions).to.have.length(6);
      const all = maskSequence(ids, flags, new Rng(5), options({ maskRatio: 1, randomRatio: 0 }));
      expect(all.positions).to.deep.equal(keep.positions);
      for (const p of all.positions) expect(all.inputIds[p]).to.equal(MASK);
      expect(all.inputIds.filter((id) => id === MASK)).to.have.length(6);
    });
  });

  describe('whole words', () => {
    // Words of 1-3 pieces: a word's first piece is an id in 10..59, its continuations ids in 60..99.
    const N = 1500;
    const gen = new Rng(42);
    const cases = Array.from({ length: N }, () => {
      const ids = [CLS];
      const words: number[][] = [];
      const nWords = 8 + gen.int(20);
      for (let w = 0; w < nWords; w++) {
        const len = 1 + gen.int(3);
        const word: number[] = [];
        for (let k = 0; k < len; k++) {
          word.push(ids.length);
          ids.push(k === 0 ? 10 + gen.int(50) : 60 + gen.int(40));
        }
        words.push(word);
      }
      ids.push(SEP);
      return { ids, words, continues: ids.map((id) => id >= 60 && id < 100) };
    });

    it('selects a word entirely or not at all, never more than the target, exactly the target when single-piece words allow it', () => {
      const rng = new Rng(11);
      let fillable = 0;
      for (const c of cases) {
        const r = maskSequence(c.ids, c.continues, rng, options({ wholeWord: true }));
        const chosen = new Set(r.positions);
        for (const word of c.words) {
          const inWord = word.filter((p) => chosen.has(p)).length;
          expect(inWord === 0 || inWord === word.length, `word ${JSON.stringify(word)} partly selected in ${JSON.stringify(r.positions)}`).to.equal(true);
        }
        const candidates = c.ids.length - 2;
        const target = Math.max(1, Math.round(0.15 * candidates));
        expect(r.positions.length).to.be.at.least(1).and.at.most(target);
        expect(r.labels).to.deep.equal(r.positions.map((p) => c.ids[p]));
        for (let k = 1; k < r.positions.length; k++) expect(r.positions[k]!).to.be.above(r.positions[k - 1]!);
        // The greedy fill skips only words that would overshoot, so with at least `target` one-piece words it lands exactly.
        if (c.words.filter((w) => w.length === 1).length >= target) {
          fillable += 1;
          expect(r.positions.length).to.equal(target);
        }
      }
      expect(fillable).to.be.above(N / 2);
    });

    it('a multi-piece word can be chosen (words are not biased to one piece)', () => {
      const rng = new Rng(12);
      let multi = 0;
      let total = 0;
      for (const c of cases) {
        const r = maskSequence(c.ids, c.continues, rng, options({ wholeWord: true }));
        const chosen = new Set(r.positions);
        for (const w of c.words) {
          if (w.length > 1 && chosen.has(w[0]!)) multi += 1;
          if (chosen.has(w[0]!)) total += 1;
        }
      }
      expect(multi / total).to.be.above(0.2);
    });

    it('when every word is longer than the target, takes one whole word', () => {
      // 3 candidates at 0.15: target 1, the only word has 3 pieces.
      const ids = [CLS, 10, 60, 61, SEP];
      const r = maskSequence(ids, [false, false, true, true, false], new Rng(1), options({ wholeWord: true }));
      expect(r.positions).to.deep.equal([1, 2, 3]);
      expect(r.labels).to.deep.equal([10, 60, 61]);
    });

    it('a continuation flag right after a special, or with whole_word off, does not join pieces', () => {
      const ids = [CLS, 60, 61, SEP];
      const flags = [false, true, true, false];
      // At 0.5 the target is 1 of 2 candidates. Whole-word: [CLS] is not a word, so 60 starts a word and 61 joins it;
      // the word (2 pieces) overshoots, so the fallback takes it whole.
      const ww = maskSequence(ids, flags, new Rng(2), options({ probability: 0.5, wholeWord: true }));
      expect(ww.positions).to.deep.equal([1, 2]);
      // Without whole-word, the flags are ignored: exactly one piece.
      for (let seed = 0; seed < 20; seed++) {
        expect(maskSequence(ids, flags, new Rng(seed), options({ probability: 0.5 })).positions).to.have.length(1);
      }
      // Pieces separated by a special are separate words even if flagged.
      const split = [CLS, 10, SEP, 60, 61, SEP];
      const r = maskSequence(split, [false, false, false, true, true, false], new Rng(3), options({ probability: 0.34, wholeWord: true }));
      // 3 candidates at 0.34: target 1; words [1] and [3, 4]; only [1] fits.
      expect(r.positions).to.deep.equal([1]);
    });
  });

  it('a hand-worked example', () => {
    // [CLS] the dog play ##ing [SEP] with ids 2 10 11 12 60 3; probability 0.5 -> 4 candidates, target 2.
    const ids = [CLS, 10, 11, 12, 60, SEP];
    const flags = continuationFlags(['[CLS]', 'the', 'dog', 'play', '##ing', '[SEP]']);
    expect(flags).to.deep.equal([false, false, false, false, true, false]);
    // Single pieces; candidate order [1, 2, 3, 4] shuffled to [4, 2, 1, 3]: take 4 and 2, sorted [2, 4].
    // Uniforms: position 2 -> 0.85 (random: int 7 -> RANDOM_IDS[7] = 107), position 4 -> 0.5 (mask).
    const single = maskSequence(ids, flags, new ScriptedRng(() => [3, 1, 0, 2], [0.85, 0.5], [7]), options({ probability: 0.5 }));
    expect(single).to.deep.equal({ inputIds: [CLS, 10, 107, 12, MASK, SEP], positions: [2, 4], labels: [11, 60] });
    // Whole words: [1], [2], [3, 4]; order [2], [3, 4], [1]: [2] (1 of 2), [3, 4] overshoots, [1] fits -> [1, 2].
    // Uniforms 0.95 (kept), 0.1 (mask).
    const whole = maskSequence(ids, flags, new ScriptedRng(() => [1, 2, 0], [0.95, 0.1], []), options({ probability: 0.5, wholeWord: true }));
    expect(whole).to.deep.equal({ inputIds: [CLS, 10, MASK, 12, 60, SEP], positions: [1, 2], labels: [10, 11] });
    // Order [3, 4] first: it fills the target alone. Uniforms 0.8 (random: int 0 -> 100), 0.89 (random: int 49 -> 149).
    const word = maskSequence(ids, flags, new ScriptedRng(() => [2, 0, 1], [0.8, 0.89], [0, 49]), options({ probability: 0.5, wholeWord: true }));
    expect(word).to.deep.equal({ inputIds: [CLS, 10, 11, 100, 149, SEP], positions: [3, 4], labels: [12, 60] });
  });

  it('continuation flags need a non-empty piece after the prefix', () => {
    expect(continuationFlags(['##', '##a', 'a##', '#a', '##ing'])).to.deep.equal([false, true, false, false, true]);
    expect(continuationFlags(['@@x', '##x'], '@@')).to.deep.equal([true, false]);
  });

  it('rejects bad options with a clear error', () => {
    checkMaskingOptions(options());
    checkMaskingOptions(options({ maskRatio: 0.9, randomRatio: 0.1 }));
    checkMaskingOptions(options({ randomRatio: 0, randomIds: [] }));
    for (const p of [0, 1, -0.1, 1.5, NaN]) expectError(() => checkMaskingOptions(options({ probability: p })), 'masking: probability must be in (0, 1)', String(p));
    expectError(() => checkMaskingOptions(options({ maskRatio: 0.95, randomRatio: 0.1 })), 'mask (0.95) and random (0.1)', 'sum to at most 1');
    expectError(() => checkMaskingOptions(options({ maskRatio: -0.1 })), 'non-negative');
    expectError(() => checkMaskingOptions(options({ randomRatio: -0.1 })), 'non-negative');
    expectError(() => checkMaskingOptions(options({ randomIds: [] })), 'random replacement needs at least one id');
  });
});
