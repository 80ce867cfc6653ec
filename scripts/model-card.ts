/**
 * Assembles a built-in model folder from a finished `topoprobe pretrain` run and two `topoprobe measure`
 * runs of it (the trained weights, and the same architecture reinitialised: the random-encoder control):
 *
 *     npx tsx scripts/model-card.ts --pretrain runs/mini --measure runs/mini-measure \
 *         --control runs/mini-measure-reinit --out models/mini
 *
 * It copies the run's `model/` folder (config.json, model.safetensors, vocab.txt, tokenizer.json,
 * tokenizer_config.json, vocab_map.json), the provenance (the resolved pretrain config, results.json, the
 * training metrics, both measure.json files, the corpus manifest), the measured X_ssp probes (probes/, so
 * that the folder also serves as a `select.from` measure run), draws measure.svg/png (both runs'
 * curves) and writes README.md, the model card, with every number read from those files.
 *
 * `--pretrain` may also be a model folder this script wrote (it holds the run's provenance files), to
 * rewrite the card after measuring again: `--pretrain models/mini --out models/mini`.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { plotMeasure } from '../src/probe/plot.js';
import { measurePlotOptions } from '../src/probe/measure.js';
import type { PretrainResult } from '../src/train/pretrain.js';
import { writeFileAtomic } from '../src/util/fs.js';
import { CONFIG_FILE, MEASURE_FILE, METRICS_FILE, RESULTS_FILE, measuredProbePath, readMeasureJson } from '../src/util/run-folder.js';

const args = yargs(hideBin(process.argv))
  .option('pretrain', { type: 'string', demandOption: true, describe: 'The finished pretrain run folder' })
  .option('measure', { type: 'string', demandOption: true, describe: 'A measure run of the pretrained model' })
  .option('control', { type: 'string', demandOption: true, describe: 'A measure run of the same model with reinitialize: true' })
  .option('corpus', { type: 'string', describe: 'The corpus manifest (default: manifest.json beside the first corpus file)' })
  .option('name', { type: 'string', default: 'builtin:mini' })
  .option('command', { type: 'string', default: 'npm run corpus && topoprobe pretrain --config configs/pretrain/mini.yaml' })
  .option('measure-command', {
    type: 'string',
    default: 'topoprobe measure --config configs/measure/mini.yaml --set model=runs/mini/model\ntopoprobe measure --config configs/measure/mini.yaml --set model=runs/mini/model --set reinitialize=true --name mini-measure-reinit',
  })
  .option('note', { type: 'string', default: '', describe: 'A sentence added to the training procedure (e.g. about the machine)' })
  .option('out', { type: 'string', demandOption: true })
  .strict()
  .parseSync();

const readJson = <T>(path: string): T => {
  if (!existsSync(path)) throw new Error(`${path}: not found`);
  return JSON.parse(readFileSync(path, 'utf8')) as T;
};

const runDir = resolve(args.pretrain);
// A pretrain run folder, or a model folder written by this script (its provenance files renamed).
const fromCard = existsSync(join(runDir, 'pretrain_results.json'));
const runFile = (name: string, cardName: string) => join(runDir, fromCard ? cardName : name);
const results = readJson<PretrainResult>(runFile(RESULTS_FILE, 'pretrain_results.json'));
if (results.status !== 'completed' || !results.modelDir) throw new Error(`${runDir}: the run did not complete`);
const modelDir = fromCard ? runDir : results.modelDir;
const measured = readMeasureJson(args.measure, '--measure');
const control = readMeasureJson(args.control, '--control');
const manifestPath = resolve(args.corpus ?? (fromCard ? join(runDir, 'corpus_manifest.json') : join(dirname(results.corpus.files[0]!.path), 'manifest.json')));
const manifest = readJson<{ files: Record<string, { lines: number; words: number; sources: string[]; dropped_overlap: number; duplicates_removed: number }>; total: { lines: number; words: number } }>(manifestPath);

// 1. The model folder and the provenance files.
const out = resolve(args.out);
mkdirSync(out, { recursive: true });
const copy = (from: string, to: string) => {
  if (resolve(from) !== resolve(to)) copyFileSync(from, to);
};
if (!fromCard) for (const f of readdirSync(modelDir)) if (statSync(join(modelDir, f)).isFile()) copy(join(modelDir, f), join(out, f));
const provenance: Array<[string, string]> = [
  [runFile(CONFIG_FILE, 'pretrain_config.yaml'), 'pretrain_config.yaml'],
  [runFile(RESULTS_FILE, 'pretrain_results.json'), 'pretrain_results.json'],
  [runFile(METRICS_FILE, 'pretrain_metrics.jsonl'), 'pretrain_metrics.jsonl'],
  [join(resolve(args.measure), MEASURE_FILE), MEASURE_FILE],
  [join(resolve(args.control), MEASURE_FILE), 'measure_reinitialized.json'],
  [manifestPath, 'corpus_manifest.json'],
];
for (const [from, to] of provenance) copy(from, join(out, to));
// The X_ssp probes, so that `select: {from: models/mini, by: x_ssp}` (and guidance from a trained probe) works.
mkdirSync(dirname(measuredProbePath(out, 0, 'x_ssp')), { recursive: true });
for (const r of measured.rows) {
  for (const metric of ['x_ssp', 'distance']) {
    const from = measuredProbePath(resolve(args.measure), r.submodule, metric);
    if (existsSync(from)) copy(from, measuredProbePath(out, r.submodule, metric));
  }
}

// 2. The measure curves of both runs in one chart (the measure plot with the control beside it).
await plotMeasure(measured.rows, join(out, 'measure'), { ...measurePlotOptions(measured, control), title: `${args.name}: structural probes per submodule (${measured.mode} mode), trained vs reinitialised weights` });

// 3. The model card.
const f4 = (x: number | null | undefined) => (x === null || x === undefined ? '-' : x.toFixed(4));
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const config = readFileSync(runFile(CONFIG_FILE, 'pretrain_config.yaml'), 'utf8');
const bytes = statSync(join(out, 'model.safetensors')).size;
const corpusRows = Object.entries(manifest.files).map(([file, m]) => `| ${file} | ${m.sources.map((s) => s.split('/').slice(-2).join('/')).join(', ')} | ${m.lines.toLocaleString('en')} | ${m.words.toLocaleString('en')} | ${m.dropped_overlap.toLocaleString('en')} | ${m.duplicates_removed.toLocaleString('en')} |`);
const probeRows = measured.rows.map((r) => {
  const c = control.rows.find((x) => x.submodule === r.submodule);
  return `| ${r.submodule} | ${f4(r.x_sp)} | ${f4(c?.x_sp)} | ${f4(r.spearman)} | ${f4(c?.spearman)} | ${f4(r.x_ssp)} | ${f4(c?.x_ssp)} | ${f4(r.x_essp)} | ${f4(c?.x_essp)} |`;
});
const distanceRows = measured.rows.map((r) => {
  const c = control.rows.find((x) => x.submodule === r.submodule);
  return `| ${r.submodule} | ${f4(r.uuas)} | ${f4(c?.uuas)} | ${f4(r.distance_spearman)} | ${f4(c?.distance_spearman)} |`;
});
const bestSp = measured.rows.filter((r) => r.x_sp !== null).sort((a, b) => a.x_sp! - b.x_sp!)[0]!;
const controlBestSp = control.rows.filter((r) => r.x_sp !== null).sort((a, b) => a.x_sp! - b.x_sp!)[0]!;
const bestUuas = measured.rows.filter((r) => r.uuas !== null).sort((a, b) => b.uuas! - a.uuas!)[0];
const controlBestUuas = control.rows.filter((r) => r.uuas !== null).sort((a, b) => b.uuas! - a.uuas!)[0];
const hours = results.wall_time_s / 3600;

const card = `---
language: en
library_name: topoprobe
tags: [bert, masked-lm, structural-probe, tiny]
---
# ${args.name}: a small BERT pretrained with topoprobe

A ${readJson<{ num_hidden_layers: number }>(join(out, 'config.json')).num_hidden_layers}-layer BERT (hidden ${readJson<{ hidden_size: number }>(join(out, 'config.json')).hidden_size}) pretrained from scratch with the masked-language-model objective by \`topoprobe pretrain\`, on about ${(manifest.total.words / 1e6).toFixed(1)} million words of English available offline. It exists so that \`topoprobe measure\`, \`train\` and \`sweep\` have a model with learned structure to work on where no pretrained BERT can be downloaded, and for fast ablations. It is far weaker than bert-base or bert-large: read its numbers as those of a small model trained for ${hours < 1 ? `${Math.round(results.wall_time_s / 60)} minutes` : `${hours.toFixed(1)} hours`} on a 2-core CPU.

- Architecture: Hugging Face \`BertForMaskedLM\` (the encoder's tensors under \`bert.\`, the MLM head under \`cls.predictions.\`, its decoder tied to the word embeddings). ${results.parameters.toLocaleString('en')} parameters, stored in fp16 (\`model.safetensors\`, ${(bytes / 1e6).toFixed(1)} MB). The pooler is part of the checkpoint but was not trained (masked-LM pretraining does not use it).
- Vocabulary: ${results.vocab_size.toLocaleString('en')} word pieces, bert-uncased's restricted to the pieces the training lines use at least ${/min_count: (\d+)/.exec(config)?.[1] ?? '?'} times, plus single characters and the special tokens (src/tokenize/restrict.ts). \`vocab_map.json\` gives each piece's bert-uncased id. Text is lowercased and accent-stripped as in bert-uncased.
- Use: \`--model ${args.name}\` (or this folder's path) wherever topoprobe takes a model. The folder has the layout and tensor names that transformers' \`save_pretrained\` writes for \`BertForMaskedLM\` (not loaded in Python here: transformers is not installed on the machine that made it).

## Training data
\`npm run corpus\` (scripts/build-corpus.ts) builds the corpus from the **training splits** of the data directory and the glosses and usage examples of WordNet 3.0 (Debian's \`wordnet-base\`). Every sentence of every dev and test split in the data directory (CoLA in-domain and out-of-domain dev, MRPC test, RTE dev and test, STS-B dev and test, UD EWT dev and test) was removed from the sources, after lowercasing and whitespace normalisation, and lines were de-duplicated across the corpus.

| file | source | lines | words | dev/test sentences removed | duplicates removed |
|---|---|---:|---:|---:|---:|
${corpusRows.join('\n')}
| total | | ${manifest.total.lines.toLocaleString('en')} | ${manifest.total.words.toLocaleString('en')} | | |

${results.corpus.held_out_lines.toLocaleString('en')} lines, drawn with the run's seed, were held out for the MLM scores below; the model trained on the other ${results.corpus.train_lines.toLocaleString('en')} (${results.corpus.train_sequences.toLocaleString('en')} sequences of at most ${/max_length: (\d+)/.exec(config)?.[1] ?? '?'} pieces; ${results.corpus.cut_lines} longer lines were cut into chunks). Licences: WordNet 3.0 (Princeton's WordNet licence), UD English EWT (CC BY-SA 4.0), and the GLUE tasks' own terms. Note that GLUE's MRPC dev set is drawn from MRPC's training file, so do not score MRPC on GLUE's dev split with this model.

## Training procedure
\`\`\`
${args.command}
\`\`\`
${results.steps.toLocaleString('en')} updates (${results.epochs_completed === 0 ? 'part of one epoch' : `${results.epochs_completed} full epoch${results.epochs_completed === 1 ? '' : 's'} and part of the next`}; ${results.pieces_seen.toLocaleString('en')} word pieces seen), ${Math.round(results.wall_time_s / 60)} minutes of wall time on the \`${results.backend}\` backend (2 CPU cores).${args.note ? ` ${args.note}` : ''} Masking: 15% of the word pieces of each sequence, 80% [MASK], 10% a random piece, 10% kept. The resolved config (\`pretrain_config.yaml\`):

\`\`\`yaml
${config.trim()}
\`\`\`

The training curve is in \`pretrain_metrics.jsonl\`; the run's results in \`pretrain_results.json\`.

## Evaluation: masked-LM on the held-out lines
The same masks for every row (${results.held_out.predictions.toLocaleString('en')} masked pieces):

| | MLM loss (nats) | masked-piece accuracy |
|---|---:|---:|
| this model | ${f4(results.held_out.loss)} | ${pct(results.held_out.accuracy)} |
| unigram baseline (training frequencies; always the most frequent piece) | ${f4(results.unigram.loss)} | ${pct(results.unigram.accuracy)} |
| before training (step 0) | ${f4(results.initial?.loss)} | ${pct(results.initial?.accuracy ?? 0)} |

## Evaluation: structural probes (\`topoprobe measure\`)
X_sp is the held-out MSE of a depth probe trained against gold dependency depths (UD EWT, scored on EWT test); X_ssp and X_essp are the tree topological probes' held-out MSEs (Li, Yin & Lin 2023). Lower is more tree-like. "reinit." is the same architecture and tokenizer with freshly initialised weights (\`reinitialize: true\`), the random-encoder control. Both runs use \`configs/measure/mini.yaml\` (${measured.mode} mode; ${measured.rows[0]?.sp_test_sentences ?? '?'} EWT test sentences for X_sp, ${measured.rows[0]?.ssp_test_sentences ?? '?'} held-out pool sentences for X_ssp).

\`\`\`
${args['measure-command']}
\`\`\`

| submodule | X_sp | X_sp reinit. | Spearman | Spearman reinit. | X_ssp | X_ssp reinit. | X_essp | X_essp reinit. |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${probeRows.join('\n')}

The best X_sp is ${f4(bestSp.x_sp)} at submodule ${bestSp.submodule}; the reinitialised control's best is ${f4(controlBestSp.x_sp)} (submodule ${controlBestSp.submodule}).
${measured.rows.some((r) => r.uuas !== null) ? `
The distance probe (Hewitt & Manning 2019), trained on the same EWT splits: UUAS is the share of gold dependency edges that the minimum spanning tree of its predicted word distances recovers (punctuation left out), distance Spearman the per-word correlation of predicted and gold tree distances averaged per sentence length (5-50), both on EWT test.

| submodule | UUAS | UUAS reinit. | distance Spearman | distance Spearman reinit. |
|---:|---:|---:|---:|---:|
${distanceRows.join('\n')}
${bestUuas ? `
The best UUAS is ${f4(bestUuas.uuas)} at submodule ${bestUuas.submodule}; the reinitialised control's best is ${f4(controlBestUuas?.uuas)}${controlBestUuas ? ` (submodule ${controlBestUuas.submodule})` : ''}.
` : ''}` : ''}
![measure curves](measure.png)

## Limitations
- Small model, small corpus, short training: use it to exercise and compare methods, not as a stand-in for the numbers of bert-base or bert-large.
- WordNet glosses make up most of the corpus, so its text is definitional and its sentences short.
- No next-sentence prediction; the pooler is untrained.
`;
writeFileAtomic(join(out, 'README.md'), card);
process.stdout.write(`wrote ${out} (model.safetensors ${(bytes / 1e6).toFixed(1)} MB)\n`);
