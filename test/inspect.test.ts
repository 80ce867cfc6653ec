import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, haveData } from './helpers.js';
import { treeLabels } from '../src/probe/labels.js';

interface InspectJson {
  sentence: { words: string[]; pieces: string[]; pieceWord: number[]; punct: boolean[]; gold?: { depths: number[]; edges: Array<[number, number]> } };
  submodules: Array<{
    submodule: number;
    ssp?: { pred: number[]; labels: number[] };
    sp?: { pred: number[] };
    distance?: { pred: number[][]; edges: Array<[number, number]> };
    scores: Record<string, number | null>;
  }>;
}

// "The dog barked at the cats ." : barked is the root; The -> dog -> barked; at -> cats -> barked; the -> cats; . -> barked
const CONLLU = [
  '# sent_id = s1',
  '1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_',
  '2\tdog\tdog\tNOUN\tNN\t_\t3\tnsubj\t_\t_',
  '3\tbarked\tbark\tVERB\tVBD\t_\t0\troot\t_\t_',
  '4\tat\tat\tADP\tIN\t_\t6\tcase\t_\t_',
  '5\tthe\tthe\tDET\tDT\t_\t6\tdet\t_\t_',
  '6\tcats\tcat\tNOUN\tNNS\t_\t3\tobl\t_\t_',
  '7\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_',
  '',
].join('\n');

/** Connected and acyclic over exactly `nodes`: a spanning tree (union-find, independent of the code under test). */
function isSpanningTree(edges: ReadonlyArray<[number, number]>, nodes: readonly number[]): boolean {
  const parent = new Map(nodes.map((v) => [v, v]));
  const find = (v: number): number => (parent.get(v) === v ? v : find(parent.get(v)!));
  for (const [a, b] of edges) {
    if (!parent.has(a) || !parent.has(b)) return false;
    const [ra, rb] = [find(a), find(b)];
    if (ra === rb) return false;
    parent.set(ra, rb);
  }
  return edges.length === nodes.length - 1;
}

describe('topoprobe inspect', function () {
  let scratch: string;
  let measure: string;
  before(async function () {
    if (!haveData('ud-ewt/en_ewt-ud-train.conllu', 'bert-uncased/vocab.txt')) this.skip();
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-inspect-'));
    const config = join(scratch, 'measure.yaml');
    writeFileSync(config, `model: builtin:tiny\nout_dir: ${scratch}\ndata:\n  max_sentences: 12\nepochs: 2\nbatch_size: 4\nseed: 3\n`);
    const res = await cli(['measure', '--config', config, '--name', 'm']);
    expect(res.code, res.stderr).to.equal(0);
    measure = join(scratch, 'm');
    writeFileSync(join(scratch, 's.conllu'), CONLLU);
  });
  after(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('draws a CoNLL-U sentence per submodule: depths and their tree labels, the predicted and gold trees', async () => {
    const out = join(scratch, 'conllu');
    const res = await cli(['inspect', '--model', 'builtin:tiny', '--measure', measure, '--conllu', join(scratch, 's.conllu'), '--sentence', 's1', '--out', out]);
    expect(res.code, res.stderr).to.equal(0);
    for (const f of ['panel.svg', 'panel.png', 'sub-0.svg', 'sub-2.png', 'inspect.json']) expect(existsSync(join(out, f)), f).to.equal(true);
    const json = JSON.parse(readFileSync(join(out, 'inspect.json'), 'utf8')) as InspectJson;
    const { sentence } = json;
    expect(sentence.words).to.deep.equal(['The', 'dog', 'barked', 'at', 'the', 'cats', '.']);
    expect(sentence.punct).to.deep.equal([false, false, false, false, false, false, true]);
    // Gold edges by hand, punctuation left out; depths with the root at 1 (the measure run's root_depth).
    expect(sentence.gold!.edges).to.deep.equal([[0, 1], [1, 2], [2, 5], [3, 5], [4, 5]]);
    expect(sentence.gold!.depths).to.deep.equal([3, 2, 1, 3, 3, 2, 2]);
    expect(json.submodules.map((s) => s.submodule)).to.deep.equal([0, 1, 2]);
    for (const sub of json.submodules) {
      const n = sentence.pieces.length;
      expect(sub.ssp!.pred).to.have.length(n);
      // The labels are the paper's greedy tree labels of the predictions.
      expect(sub.ssp!.labels).to.deep.equal(Array.from(treeLabels(sub.ssp!.pred, 'ssp')));
      expect(sub.sp!.pred).to.have.length(n);
      expect(sub.distance!.pred).to.have.length(7);
      expect(isSpanningTree(sub.distance!.edges, [0, 1, 2, 3, 4, 5])).to.equal(true);
      const correct = sub.distance!.edges.filter(([a, b]) => sentence.gold!.edges.some(([c, d]) => a === c && b === d)).length;
      expect(sub.scores.uuas).to.be.closeTo(correct / 5, 1e-12);
    }
  });

  it('applies the saved probes to the model\'s own hidden states (checked against hidden-states and the probe file)', async () => {
    const out = join(scratch, 'text');
    const res = await cli(['inspect', '--model', 'builtin:tiny', '--measure', measure, '--text', 'Dogs bark, loudly!', '--submodules', '2', '--out', out]);
    expect(res.code, res.stderr).to.equal(0);
    const json = JSON.parse(readFileSync(join(out, 'inspect.json'), 'utf8')) as InspectJson;
    expect(json.sentence.gold).to.equal(undefined);
    expect(json.sentence.punct).to.deep.equal(json.sentence.words.map((w) => /^[,!]$/.test(w)));
    expect(json.submodules.map((s) => s.submodule)).to.deep.equal([2]);
    expect(existsSync(join(out, 'sub-0.svg'))).to.equal(false);
    // Independently: the hidden states from `topoprobe hidden-states`, times the saved B.
    const hs = join(scratch, 'h.json');
    const dump = await cli(['hidden-states', '--model', 'builtin:tiny', '--text', 'Dogs bark, loudly!', '--out', hs]);
    expect(dump.code, dump.stderr).to.equal(0);
    const states = (JSON.parse(readFileSync(hs, 'utf8')) as { inputs: Array<{ hidden_states: number[][][] }> }).inputs[0]!.hidden_states[2]!;
    const { initBackend } = await import('../src/backend/index.js');
    const { DepthProbe } = await import('../src/probe/probe.js');
    await initBackend('cpu');
    const { probe } = DepthProbe.load(join(measure, 'probes', 'sub-2-x_ssp.safetensors'));
    const B = (await probe.B.array()) as number[][];
    probe.dispose();
    const real = states.slice(1, -1);
    expect(real).to.have.length(json.sentence.pieces.length);
    real.forEach((h, k) => {
      const want = B.reduce((s, row) => s + row.reduce((d, b, i) => d + b * h[i]!, 0) ** 2, 0);
      expect(json.submodules[0]!.ssp!.pred[k]).to.be.closeTo(want, 1e-4 * Math.max(1, want));
    });
    expect(json.submodules[0]!.scores.uuas).to.equal(null);
  });

  it('names what is wrong: a sentence number out of range, an unmeasured submodule, not a measure run', async () => {
    const bad = [
      [['--conllu', join(scratch, 's.conllu'), '--sentence', '4'], /--sentence 4: .*s\.conllu has sentences 1\.\.1/],
      [['--text', 'Hi.', '--submodules', '7'], /--submodules\[0\]: 7 was not measured/],
      [['--text', 'Hi.', '--measure', scratch], /--measure: .*measure\.json not found/],
      [['--text', 'Hi.', '--conllu', join(scratch, 's.conllu')], /exactly one of --text and --conllu/],
    ] as Array<[string[], RegExp]>;
    for (const [args, message] of bad) {
      const withMeasure = args.includes('--measure') ? [] : ['--measure', measure];
      const res = await cli(['inspect', '--model', 'builtin:tiny', ...withMeasure, ...args, '--out', join(scratch, 'bad')]);
      expect(res.code, args.join(' ')).to.not.equal(0);
      expect(res.stderr, args.join(' ')).to.match(message);
    }
    expect(existsSync(join(scratch, 'bad'))).to.equal(false);
  });
});
