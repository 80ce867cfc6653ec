import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_WORDNET_DIR, WORDNET_DATA_FILES, parseWordnetDataLine, readWordnetGlosses } from '../src/data/wordnet.js';
import { expectError } from './helpers.js';

// Synset lines as WordNet 3.0 has them (pointer lists shortened where long), each ending in two spaces.
const DOG =
  '02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 003 @ 02083346 n 0000 @ 01317541 n 0000 %p 02158846 n 0000 | ' +
  'a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times; ' +
  'occurs in many breeds; "the dog barked all night"  ';
const BREATHE =
  '00001740 29 v 04 breathe 0 take_a_breath 0 respire 0 suspire 3 002 * 00005041 v 0000 ^ 00004227 v 0103 02 + 02 00 + 08 00 | ' +
  'draw air into, and expel out of, the lungs; "I can breathe better when the air is clean"; "The patient is respiring"  ';
const EMERGENT_SATELLITE =
  '00003553 00 s 02 emergent 0 emerging 0 003 & 00003356 a 0000 + 02625016 v 0102 + 00050693 n 0101 | coming into existence; "an emergent republic"  ';
const LICENSE = '  1 This software and database is being provided to you, the LICENSEE, by  ';

describe('wordnet: parseWordnetDataLine', () => {
  it('splits a noun gloss into its definitions and its example, quotes stripped', () => {
    expect(parseWordnetDataLine(DOG)).to.deep.equal({
      definitions: [
        'a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times',
        'occurs in many breeds',
      ],
      examples: ['the dog barked all night'],
    });
  });

  it('reads past a verb line\'s frames to its gloss, with several examples', () => {
    expect(parseWordnetDataLine(BREATHE)).to.deep.equal({
      definitions: ['draw air into, and expel out of, the lungs'],
      examples: ['I can breathe better when the air is clean', 'The patient is respiring'],
    });
  });

  it('reads adjective satellite (s) lines like any other', () => {
    expect(parseWordnetDataLine(EMERGENT_SATELLITE)).to.deep.equal({ definitions: ['coming into existence'], examples: ['an emergent republic'] });
  });

  it('returns null for license header lines and blank lines', () => {
    expect(parseWordnetDataLine(LICENSE)).to.equal(null);
    expect(parseWordnetDataLine('  5   ')).to.equal(null);
    expect(parseWordnetDataLine('')).to.equal(null);
    expect(parseWordnetDataLine('\r')).to.equal(null);
  });

  it('keeps a ; inside an example, and drops an attribution after it', () => {
    const line =
      '01129920 04 n 03 duty 0 responsibility 0 obligation 0 001 @ 01123598 n 0000 | the social force that binds you to the courses of action ' +
      'demanded by that force; "we must instill a sense of duty in our children"; "every right implies a responsibility; every opportunity, ' +
      'an obligation; every possession, a duty"- John D.Rockefeller Jr  ';
    expect(parseWordnetDataLine(line)).to.deep.equal({
      definitions: ['the social force that binds you to the courses of action demanded by that force'],
      examples: [
        'we must instill a sense of duty in our children',
        'every right implies a responsibility; every opportunity, an obligation; every possession, a duty',
      ],
    });
  });

  it('gives two examples for two quotes in one piece, and splits off a `definition: "example"`', () => {
    const head = '03501288 06 n 01 head 0 000 | a projection out from one end; "the head of the nail", "a pinhead is the head of a pin"  ';
    expect(parseWordnetDataLine(head)).to.deep.equal({
      definitions: ['a projection out from one end'],
      examples: ['the head of the nail', 'a pinhead is the head of a pin'],
    });
    const gamut = '05128096 07 n 01 gamut 0 001 @ 05125377 n 0000 | a complete extent or range: "a face that expressed a gamut of emotions"  ';
    expect(parseWordnetDataLine(gamut)).to.deep.equal({
      definitions: ['a complete extent or range'],
      examples: ['a face that expressed a gamut of emotions'],
    });
  });

  it('keeps quotes inside a definition, and drops empty pieces (a trailing ;)', () => {
    const stride = '00249987 04 n 01 stride 1 001 @ 00249501 n 0000 | significant progress (especially in the phrase "make strides"); "they made big strides in productivity"  ';
    expect(parseWordnetDataLine(stride)).to.deep.equal({
      definitions: ['significant progress (especially in the phrase "make strides")'],
      examples: ['they made big strides in productivity'],
    });
    const perversion = '00854717 04 n 02 perversion 1 sexual_perversion 0 001 @ 00844254 n 0000 | an aberrant sexual practice;  ';
    expect(parseWordnetDataLine(perversion)).to.deep.equal({ definitions: ['an aberrant sexual practice'], examples: [] });
  });

  it('splits on every ; when the quotes do not pair up, and reads `text"` after the first piece as an example', () => {
    const drop = '00941464 32 v 01 drop 0 001 @ 00940402 v 0000 01 + 08 00 | utter with seeming casualness; "drop a hint"; drop names"  ';
    expect(parseWordnetDataLine(drop)).to.deep.equal({ definitions: ['utter with seeming casualness'], examples: ['drop a hint', 'drop names'] });
    // An unclosed quote runs to the end of its piece, and does not swallow the pieces after it.
    const notice = '06665847 10 n 01 notice 0 000 | an announcement; "an obituary notice"; "a notice of sale; a posting  ';
    expect(parseWordnetDataLine(notice)).to.deep.equal({
      definitions: ['an announcement', 'a posting'],
      examples: ['an obituary notice', 'a notice of sale'],
    });
  });

  it('accepts CRLF, gives empty lists for a synset without a gloss, and rejects other lines naming the source', () => {
    expect(parseWordnetDataLine(`${EMERGENT_SATELLITE}\r`)).to.deep.equal({ definitions: ['coming into existence'], examples: ['an emergent republic'] });
    expect(parseWordnetDataLine('00000001 03 n 01 thing 0 000')).to.deep.equal({ definitions: [], examples: [] });
    expectError(() => parseWordnetDataLine('dog 0 n | a dog', 'data.noun:31'), 'data.noun:31', 'not a WordNet data line', '"dog 0 n | a dog"');
  });
});

describe('wordnet: readWordnetGlosses', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'topoprobe-wordnet-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const writeAll = (byFile: Record<string, string[]>): void => {
    for (const f of WORDNET_DATA_FILES) writeFileSync(join(dir, f), `${(byFile[f] ?? [LICENSE]).join('\n')}\n`);
  };

  it('reads noun, verb, adj, adv in order, each synset\'s definitions before its examples', () => {
    writeAll({ 'data.noun': [LICENSE, DOG], 'data.verb': [LICENSE, '  2 more license  ', BREATHE], 'data.adj': [EMERGENT_SATELLITE], 'data.adv': [LICENSE] });
    // data.adv has no synset: an error (a data file with only its header is not WordNet).
    expectError(() => readWordnetGlosses(dir), join(dir, 'data.adv'), 'no synset lines');
    writeFileSync(join(dir, 'data.adv'), `${LICENSE}\n00001740 02 r 01 a_cappella 0 000 | without musical accompaniment; "they performed a cappella"  \n`);
    const r = readWordnetGlosses(dir);
    expect(r.files).to.deep.equal(WORDNET_DATA_FILES.map((f) => join(dir, f)));
    expect(r.synsets).to.deep.equal({ 'data.noun': 1, 'data.verb': 1, 'data.adj': 1, 'data.adv': 1 });
    expect(r.texts.map((t) => `${t.file}:${t.line} ${t.kind} ${t.text}`)).to.deep.equal([
      'data.noun:2 definition a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times',
      'data.noun:2 definition occurs in many breeds',
      'data.noun:2 example the dog barked all night',
      'data.verb:3 definition draw air into, and expel out of, the lungs',
      'data.verb:3 example I can breathe better when the air is clean',
      'data.verb:3 example The patient is respiring',
      'data.adj:1 definition coming into existence',
      'data.adj:1 example an emergent republic',
      'data.adv:2 definition without musical accompaniment',
      'data.adv:2 example they performed a cappella',
    ]);
  });

  it('names every missing data file and the apt-get command that installs them', () => {
    writeAll({});
    rmSync(join(dir, 'data.verb'));
    rmSync(join(dir, 'data.adv'));
    const message = expectError(() => readWordnetGlosses(dir), join(dir, 'data.verb'), join(dir, 'data.adv'), 'apt-get install -y wordnet-base', 'npm run corpus -- --wordnet-dir');
    expect(message).not.to.include(join(dir, 'data.noun'));
  });

  it("the installed data.noun has 'dog' with its definition and example (skipped without wordnet-base)", function () {
    const path = join(DEFAULT_WORDNET_DIR, 'data.noun');
    if (!existsSync(path)) this.skip();
    const line = readFileSync(path, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('02084071 '));
    expect(line, 'synset 02084071 (dog)').to.be.a('string');
    const gloss = parseWordnetDataLine(line!)!;
    expect(gloss.definitions[0]).to.match(/^a member of the genus Canis /);
    expect(gloss.examples).to.include('the dog barked all night');
  });
});
