import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hiddenStatesCommand } from '../src/cli/hidden-states.js';
import { COMMAND_NAMES } from '../src/cli/main.js';
import { bertUncasedVocabPath } from '../src/data/paths.js';
import { FakeHub } from './fake-hub.js';
import { FIXTURES, referenceOutputs, maxAbsDiff, cli } from './helpers.js';

const ref = referenceOutputs();

interface HiddenStatesFile {
  inputs: Array<{ ids: number[]; text?: string; hidden_states: number[][][]; pooled: number[] }>;
}

describe('topoprobe hidden-states', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-cli-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it('writes real-token hidden states of a padded batch that match the torch reference', async () => {
    const out = join(scratch, 'h.json');
    const lengths = ref.attention_mask.map((m) => m.reduce((a, b) => a + b, 0));
    // Only single-segment inputs: --ids carries no token types.
    const rows = [0, 1];
    const idArgs = rows.flatMap((r) => ['--ids', ref.input_ids[r]!.slice(0, lengths[r]).join(',')]);
    const { code, stderr } = await cli(['hidden-states', '--model', join(FIXTURES, 'tiny-bert-hub'), ...idArgs, '--out', out]);
    expect(code, stderr).to.equal(0);
    const file = JSON.parse(readFileSync(out, 'utf8')) as HiddenStatesFile;
    expect(file.inputs).to.have.length(2);
    rows.forEach((r, i) => {
      const got = file.inputs[i]!;
      expect(got.ids).to.deep.equal(ref.input_ids[r]!.slice(0, lengths[r]));
      expect(got.hidden_states).to.have.length(ref.hidden_states.length);
      const expected = ref.hidden_states.map((layer) => layer[r]!.slice(0, lengths[r]));
      expect(maxAbsDiff(got.hidden_states, expected)).to.be.below(1e-4);
      expect(maxAbsDiff(got.pooled, ref.pooled_output[r])).to.be.below(1e-4);
    });
  });

  it('tokenizes --text with the folder\'s vocab.txt exactly as the reference tokenizer does', async () => {
    const out = join(scratch, 'h.json');
    const texts = ref.texts.map((t) => t.text);
    const { code, stderr } = await cli(['hidden-states', '--model', join(FIXTURES, 'tiny-bert-hub'), ...texts.flatMap((t) => ['--text', t]), '--out', out]);
    expect(code, stderr).to.equal(0);
    const file = JSON.parse(readFileSync(out, 'utf8')) as HiddenStatesFile;
    expect(file.inputs.map((x) => x.ids)).to.deep.equal(ref.texts.map((t) => t.input_ids));
    expect(file.inputs.map((x) => x.text)).to.deep.equal(texts);
  });

  it('runs the built-in model with the bert-uncased vocabulary', async function () {
    if (!existsSync(bertUncasedVocabPath())) this.skip();
    const out = join(scratch, 'h.json');
    const { code, stderr } = await cli(['hidden-states', '--model', 'builtin:tiny', '--text', 'Hello, world!', '--out', out]);
    expect(code, stderr).to.equal(0);
    const file = JSON.parse(readFileSync(out, 'utf8')) as HiddenStatesFile;
    expect(file.inputs[0]!.ids).to.deep.equal([101, 7592, 1010, 2088, 999, 102]);
    expect(file.inputs[0]!.hidden_states).to.have.length(3);
    expect(file.inputs[0]!.hidden_states[2]).to.have.length(6);
    expect(file.inputs[0]!.hidden_states[2]![0]).to.have.length(64);
  });

  it('downloads a hub id through HF_ENDPOINT into the Hugging Face cache, then works offline from it', async () => {
    const hub = new FakeHub();
    const repo = new Map<string, Buffer>();
    for (const f of readdirSync(join(FIXTURES, 'tiny-bert-hub'))) repo.set(f, readFileSync(join(FIXTURES, 'tiny-bert-hub', f)));
    hub.repos.set('testorg/tiny-bert', repo);
    await hub.start();
    try {
      const cache = join(scratch, 'hf-cache');
      const out = join(scratch, 'h.json');
      const args = ['hidden-states', '--model', 'testorg/tiny-bert', '--ids', '2,15,19,3', '--out', out];
      const first = await cli(args, { HF_ENDPOINT: hub.hubUrl, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: undefined, TRANSFORMERS_OFFLINE: undefined });
      expect(first.code, first.stderr).to.equal(0);
      expect(existsSync(join(cache, 'models--testorg--tiny-bert', 'refs', 'main'))).to.equal(true);
      const online = JSON.parse(readFileSync(out, 'utf8')) as HiddenStatesFile;
      const requests = hub.requests.length;
      expect(requests).to.be.above(0);
      rmSync(out);
      const second = await cli(args, { HF_ENDPOINT: hub.hubUrl, HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' });
      expect(second.code, second.stderr).to.equal(0);
      expect(hub.requests.length).to.equal(requests);
      expect(JSON.parse(readFileSync(out, 'utf8'))).to.deep.equal(online);
    } finally {
      await hub.stop();
    }
  });

  for (const [what, args, message] of [
    ['a malformed --ids', ['--ids', '101,x,102'], /--ids #1 "101,x,102": expected comma-separated non-negative integers/],
    ['an id outside the vocabulary', ['--ids', '2,999,3'], /input 1: id 999 is outside the vocabulary \[0, 80\)/],
    ['no input at all', [], /give at least one input with --text or --ids/],
  ] as const) {
    it(`rejects ${what} with a message naming it, and writes nothing`, async () => {
      const out = join(scratch, 'h.json');
      const { code, stderr } = await cli(['hidden-states', '--model', join(FIXTURES, 'tiny-bert-hub'), ...args, '--out', out]);
      expect(code).to.equal(2);
      expect(stderr).to.match(message);
      expect(existsSync(out)).to.equal(false);
    });
  }

  it('names a model folder that does not exist', async () => {
    const missing = join(scratch, 'no-such-model');
    const { code, stderr } = await cli(['hidden-states', '--model', missing, '--ids', '2,3', '--out', join(scratch, 'h.json')], { HF_HUB_OFFLINE: '1' });
    expect(code).to.equal(2);
    expect(stderr).to.include('no-such-model');
  });

  it('rejects an unknown flag or backend', async () => {
    const a = await cli(['hidden-states', '--model', 'x', '--ids', '1', '--out', 'x.json', '--bogus']);
    expect(a.code).to.equal(2);
    expect(a.stderr).to.match(/bogus/);
    const b = await cli(['bench'], {}, 'tpu');
    expect(b.code).to.equal(2);
    expect(b.stderr).to.match(/backend.*"tpu"/s);
  });
});

describe('topoprobe bench', () => {
  it('times training steps of a tiny BERT and prints ms_per_step and tokens_per_s as JSON', async () => {
    const { code, stdout, stderr } = await cli(['bench', '--layers', '1', '--hidden', '16', '--heads', '2', '--inter', '32', '--batch', '2', '--seq', '8', '--vocab', '50', '--warmup', '1', '--steps', '3']);
    expect(code, stderr).to.equal(0);
    const result = JSON.parse(stdout) as { ms_per_step: number; tokens_per_s: number; step_ms: number[]; backend: string; config: Record<string, number> };
    expect(result.backend).to.equal('cpu');
    expect(result.step_ms).to.have.length(3);
    const sorted = [...result.step_ms].sort((a, b) => a - b);
    expect(result.ms_per_step).to.equal(sorted[1]);
    expect(result.tokens_per_s).to.be.closeTo((2 * 8 * 1000) / result.ms_per_step, 1e-6);
    expect(result.config).to.include({ layers: 1, hidden: 16, batch: 2, seq: 8 });
  });

  it('rejects a hidden size that the heads do not divide', async () => {
    const { code, stderr } = await cli(['bench', '--hidden', '10', '--heads', '3']);
    expect(code).to.equal(2);
    expect(stderr).to.match(/--hidden 10 must be a multiple of --heads 3/);
  });
});

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Small enough that a bench which should have been refused still ends quickly. */
const TINY_BENCH = ['bench', '--layers', '1', '--hidden', '16', '--heads', '2', '--inter', '32', '--batch', '2', '--seq', '8', '--vocab', '50', '--warmup', '0', '--steps', '1'];

describe('topoprobe: bad input is refused in one line, exit status 2', () => {
  let scratch: string;
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'topoprobe-cli-input-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it('suggests the nearest command for a misspelt one (a real process: stderr and exit status)', () => {
    const res = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'src', 'cli', 'entry.ts'), 'trian', '--config', 'x.yaml'], { cwd: REPO, encoding: 'utf8', timeout: 60000 });
    expect(res.status, res.stderr).to.equal(2);
    expect(res.stderr).to.equal('topoprobe: unknown command "trian": did you mean train? (see --help)\n');
    expect(res.stdout).to.equal('');
  });

  for (const [args, line] of [
    [['mesure'], 'unknown command "mesure": did you mean measure? (see --help)'],
    [['trian', '--bogus'], 'unknown command "trian": did you mean train? (see --help)'],
    [['data', 'donwload', 'cola'], 'unknown command "donwload": did you mean download? (see --help)'],
    [['zzzzzz'], `unknown command "zzzzzz" (the commands are ${COMMAND_NAMES.join(', ')}; see --help)`],
  ] as const) {
    it(`refuses \`topoprobe ${args.join(' ')}\` with: ${line}`, async () => {
      const { code, stdout, stderr } = await cli([...args]);
      expect(code).to.equal(2);
      expect(stderr).to.equal(`topoprobe: ${line}\n`);
      expect(stdout).to.equal('');
    });
  }

  for (const value of ['abc', '0', '-2', '1.5', '4x', '']) {
    it(`refuses --threads "${value}", naming the flag and the value`, async () => {
      const { code, stdout, stderr } = await cli(['--threads', value, ...TINY_BENCH]);
      expect(code).to.equal(2);
      expect(stderr).to.equal(`topoprobe: --threads: expected a whole number of threads from 1 to 1024 (got "${value}")\n`);
      expect(stdout).to.equal('');
    });
  }

  for (const value of ['abc', '0', '-2', '1.5', '2000']) {
    it(`refuses TOPOPROBE_THREADS="${value}", naming the variable and the value`, async () => {
      const { code, stdout, stderr } = await cli(TINY_BENCH, { TOPOPROBE_THREADS: value });
      expect(code).to.equal(2);
      expect(stderr).to.equal(`topoprobe: TOPOPROBE_THREADS: expected a whole number of threads from 1 to 1024 (got "${value}")\n`);
      expect(stdout).to.equal('');
    });
  }

  it('refuses an empty config file and a folder given as --config, naming them', async () => {
    const empty = join(scratch, 'empty.yaml');
    writeFileSync(empty, '# nothing yet\n');
    const a = await cli(['measure', '--config', empty]);
    expect(a.code).to.equal(2);
    expect(a.stderr).to.equal(`topoprobe: ${empty}: is empty (a config is a YAML mapping of settings, e.g. \`epochs: 3\`)\n`);
    const b = await cli(['train', '--config', scratch]);
    expect(b.code).to.equal(2);
    expect(b.stderr).to.equal(`topoprobe: ${scratch}: is a folder, not a config file\n`);
  });

  it('refuses --set __proto__ without polluting Object.prototype', async () => {
    const config = join(scratch, 'm.yaml');
    writeFileSync(config, 'epochs: 1\n');
    const before = Object.getOwnPropertyNames(Object.prototype);
    const { code, stderr } = await cli(['measure', '--config', config, '--set', '__proto__.polluted=1']);
    expect(code).to.equal(2);
    expect(stderr).to.equal('topoprobe: --set __proto__.polluted=1: the key "__proto__" is not allowed (expected e.g. optimizer.lr or guidance[0].layer)\n');
    expect(Object.getOwnPropertyNames(Object.prototype)).to.deep.equal(before);
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  describe('a file-system error that reaches the top', () => {
    const original = hiddenStatesCommand.handler;
    afterEach(() => {
      hiddenStatesCommand.handler = original;
    });
    const args = ['hidden-states', '--model', 'm', '--ids', '1', '--out', 'h.json'];

    it('prints one line naming the path and the cause (a real ENOTDIR), without a stack', async () => {
      const file = join(scratch, 'plain');
      writeFileSync(file, 'x');
      hiddenStatesCommand.handler = () => writeFileSync(join(file, 'out.json'), '{}');
      const { code, stderr } = await cli(args);
      expect(code).to.equal(2);
      expect(stderr).to.equal(`topoprobe: cannot open ${join(file, 'out.json')}: a part of the path is not a folder (ENOTDIR)\n`);
    });

    it('names a full disk (ENOSPC), also when wrapped in another error', async () => {
      const disk = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: 'ENOSPC', errno: -28, syscall: 'write', path: '/data/runs/a/metrics.jsonl' });
      hiddenStatesCommand.handler = async () => {
        throw new Error('appending metrics failed', { cause: disk });
      };
      const { code, stderr } = await cli(args);
      expect(code).to.equal(2);
      expect(stderr).to.equal('topoprobe: cannot write /data/runs/a/metrics.jsonl: no space left on device (ENOSPC)\n');
    });

    it('names the real cause of mkdir\'s ENOENT under a file', async () => {
      const file = join(scratch, 'plain');
      writeFileSync(file, 'x');
      const target = join(file, 'a', 'b');
      hiddenStatesCommand.handler = () => {
        throw Object.assign(new Error(`ENOENT: no such file or directory, mkdir '${target}'`), { code: 'ENOENT', syscall: 'mkdir', path: target });
      };
      const { code, stderr } = await cli(args);
      expect(code).to.equal(2);
      expect(stderr).to.equal(`topoprobe: cannot create folder ${target}: ${file} is a file, not a folder (ENOTDIR)\n`);
    });

    it('still lets a bug through with its stack', async () => {
      hiddenStatesCommand.handler = () => {
        throw new TypeError('a bug');
      };
      const err = await cli(args).then(() => null, (e: unknown) => e);
      expect(err).to.be.instanceOf(TypeError);
    });
  });
});

