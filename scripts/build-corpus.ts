/**
 * Builds the plain-text pretraining corpus for a small masked-LM BERT from text already on this machine (no
 * network):
 *
 *     npm run corpus -- [--data-dir D] [--wordnet-dir W] [--out runs/corpus/mini]
 *     npx tsx scripts/build-corpus.ts [same flags]
 *
 * Sources, one output file each, in this order (which is also the order duplicates are resolved in):
 *   cola.txt     CoLA train sentences, acceptable or not (cola/in_domain_train.tsv)
 *   mrpc.txt     MRPC train, each pair's first sentence then its second (mrpc/msr_paraphrase_train.tsv)
 *   rte.txt      RTE train, the same (rte/train.tsv)
 *   stsb.txt     STS-B train, the same (stsb/sts-train.tsv)
 *   ewt.txt      UD EWT train sentences: `# text =`, else the word forms joined by spaces (ud-ewt/en_ewt-ud-train.conllu)
 *   wordnet.txt  WordNet 3.0 definitions and usage examples (see src/data/wordnet.ts), pieces of 2 words or
 *                more: a single word ("petrels", "1861-1865", "five-toed") is a fragment, not text worth masking
 *
 * Only training splits are read as sources. Every sentence of every dev and test split in the data directory
 * (CoLA in_domain_dev and out_of_domain_dev, MRPC test, RTE dev and test, STS-B dev and test, EWT dev and test,
 * for EWT both the `# text` and the joined word forms) is held out: a source line equal to one after
 * normalisation (lowercase, whitespace collapsed, trimmed) is dropped, and counted. Lines are then de-duplicated
 * across the whole corpus on the same normalisation, keeping the first occurrence (see src/data/corpus-build.ts).
 *
 * Output, in --out (default runs/corpus/mini): the six files, one line each (whitespace runs, tabs included,
 * become one space; LF line ends), and manifest.json with each file's lines, words, bytes, sha256, what was
 * dropped and why, and its source paths. Files are written atomically; the same inputs give the same bytes.
 * A summary table goes to stdout. Exit status 2 with a message for a missing or malformed input.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildCorpus, corpusFileText, countWords, type CorpusSourceInput, type HeldOutInput } from '../src/data/corpus-build.js';
import { readConllu, type ConlluSentence } from '../src/data/conllu.js';
import { gluePath, parseGlue, readGlue, type GlueExample } from '../src/data/glue.js';
import { dataDir as resolveDataDir } from '../src/data/paths.js';
import { DEFAULT_WORDNET_DIR, readWordnetGlosses } from '../src/data/wordnet.js';
import { TopoprobeError } from '../src/util/errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../src/util/fs.js';

/** WordNet pieces shorter than this many words are dropped (see the header). */
const WORDNET_MIN_WORDS = 2;

const USAGE = 'usage: tsx scripts/build-corpus.ts [--data-dir D] [--wordnet-dir W] [--out runs/corpus/mini]';

interface Source extends CorpusSourceInput {
  /** The files it was read from. */
  paths: string[];
}

interface HeldOut extends HeldOutInput {
  path: string;
}

/** A UD sentence's text: its `# text =` comment, else its (syntactic) word forms joined by spaces. */
function conlluText(s: ConlluSentence): string {
  return s.text ?? joinedForms(s);
}

function joinedForms(s: ConlluSentence): string {
  return s.words.map((w) => w.form).join(' ');
}

function pairSentences(examples: readonly GlueExample[]): string[] {
  return examples.flatMap((e) => (e.sentence2 === undefined ? [e.sentence1] : [e.sentence1, e.sentence2]));
}

function ewtPath(dataDir: string, split: 'train' | 'dev' | 'test'): string {
  const path = join(dataDir, 'ud-ewt', `en_ewt-ud-${split}.conllu`);
  if (!existsSync(path)) {
    throw new TopoprobeError(
      `UD EWT ${split} file not found: ${path}. \`topoprobe data download ud-ewt\` fetches it; ` +
        'or point --data-dir or TOPOPROBE_DATA_DIR at a data directory that has it',
    );
  }
  return path;
}

/** The six sources, in corpus order. */
function readSources(dataDir: string, wordnetDir: string): Source[] {
  const glue = (name: 'cola' | 'mrpc' | 'rte' | 'stsb'): Source => ({
    name,
    lines: pairSentences(readGlue(name, 'train', dataDir)),
    paths: [gluePath(name, 'train', dataDir)],
  });
  const ewt = (): Source => {
    const path = ewtPath(dataDir, 'train');
    return { name: 'ewt', lines: readConllu(path).map(conlluText), paths: [path] };
  };
  const wordnet = (): Source => {
    const { texts, files } = readWordnetGlosses(wordnetDir);
    return { name: 'wordnet', lines: texts.map((t) => t.text), minWords: WORDNET_MIN_WORDS, paths: files };
  };
  return [glue('cola'), glue('mrpc'), glue('rte'), glue('stsb'), ewt(), wordnet()];
}

/** Every dev and test split in the data directory, as held-out sentences. */
function readHeldOut(dataDir: string): HeldOut[] {
  const split = (path: string, sentences: string[]): HeldOut => ({ name: relative(dataDir, path), path, sentences });
  const glue = (task: 'cola' | 'mrpc' | 'rte' | 'stsb', which: 'dev' | 'test'): HeldOut =>
    split(gluePath(task, which, dataDir), pairSentences(readGlue(task, which, dataDir)));
  // CoLA's out-of-domain dev file has the in-domain layout but is not in the task registry.
  const colaOod = join(dirname(gluePath('cola', 'dev', dataDir)), 'out_of_domain_dev.tsv');
  if (!existsSync(colaOod)) {
    throw new TopoprobeError(`CoLA out-of-domain dev file not found: ${colaOod}. \`topoprobe data download cola\` fetches it`);
  }
  const ewt = (which: 'dev' | 'test'): HeldOut => {
    const path = ewtPath(dataDir, which);
    return split(path, readConllu(path).flatMap((s) => [conlluText(s), joinedForms(s)]));
  };
  return [
    glue('cola', 'dev'),
    split(colaOod, pairSentences(parseGlue('cola', 'dev', readFileSync(colaOod, 'utf8'), colaOod))),
    glue('mrpc', 'test'),
    glue('rte', 'dev'),
    glue('rte', 'test'),
    glue('stsb', 'dev'),
    glue('stsb', 'test'),
    ewt('dev'),
    ewt('test'),
  ];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n') + '\n';
}

function main(argv: string[]): number {
  const started = Date.now();
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' },
      'wordnet-dir': { type: 'string', default: DEFAULT_WORDNET_DIR },
      out: { type: 'string', default: 'runs/corpus/mini' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const dataDir = resolveDataDir(values['data-dir']);
  const wordnetDir = resolve(values['wordnet-dir']);
  const out = resolve(values.out);

  const sources = readSources(dataDir, wordnetDir);
  const heldOut = readHeldOut(dataDir);
  const results = buildCorpus(sources, heldOut);

  const files: Record<string, unknown> = {};
  const total = { lines: 0, words: 0, bytes: 0 };
  const rows = [['file', 'input', 'lines', 'words', 'overlap', 'short', 'dups', 'dups(earlier)']];
  results.forEach((r, i) => {
    const file = `${r.name}.txt`;
    const bytes = Buffer.from(corpusFileText(r.lines), 'utf8');
    writeFileAtomic(join(out, file), bytes);
    const words = r.lines.reduce((sum, line) => sum + countWords(line), 0);
    total.lines += r.lines.length;
    total.words += words;
    total.bytes += bytes.byteLength;
    files[file] = {
      sources: sources[i]!.paths,
      input_lines: r.input,
      lines: r.lines.length,
      words,
      bytes: bytes.byteLength,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      min_words: sources[i]!.minWords ?? 1,
      dropped_empty: r.empty,
      dropped_overlap: r.droppedOverlap,
      dropped_overlap_by_split: r.droppedOverlapBy,
      dropped_too_short: r.tooShort,
      duplicates_removed: r.duplicates,
      duplicates_of_earlier_files: r.duplicatesOfEarlierSources,
    };
    rows.push([file, r.input, r.lines.length, words, r.droppedOverlap, r.tooShort, r.duplicates, r.duplicatesOfEarlierSources].map(String));
  });
  rows.push(['total', String(results.reduce((s, r) => s + r.input, 0)), String(total.lines), String(total.words), '', '', '', '']);
  writeJsonAtomic(join(out, 'manifest.json'), {
    description: 'plain-text masked-LM pretraining corpus (scripts/build-corpus.ts): training splits and WordNet glosses, dev/test sentences held out',
    normalization: 'lowercase, whitespace runs collapsed to one space, trimmed (for the held-out match and de-duplication)',
    data_dir: dataDir,
    wordnet_dir: wordnetDir,
    held_out: heldOut.map((h) => ({ split: h.name, path: h.path, sentences: h.sentences.length })),
    files,
    total,
  });
  process.stdout.write(table(rows));
  process.stderr.write(`wrote ${results.length} files and manifest.json to ${out} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  const badFlag = err instanceof Error && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
  if (err instanceof TopoprobeError || badFlag) {
    process.stderr.write(`build-corpus: ${(err as Error).message}\n${badFlag ? `${USAGE}\n` : ''}`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
