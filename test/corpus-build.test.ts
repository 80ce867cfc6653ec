import { expect } from 'chai';
import { buildCorpus, cleanLine, corpusFileText, countWords, normalizeForMatch, type CorpusSourceInput, type HeldOutInput } from '../src/data/corpus-build.js';

describe('corpus-build', () => {
  it('normalises for matching (lowercase, whitespace collapsed, trimmed) and cleans lines without lowercasing', () => {
    expect(normalizeForMatch('  The  Cat\tSAT.\n')).to.equal('the cat sat.');
    expect(cleanLine('  The  Cat\tSAT.\r\n')).to.equal('The Cat SAT.');
    expect(countWords(' a  b\tc ')).to.equal(3);
    expect(countWords('   ')).to.equal(0);
  });

  it('drops a dev sentence that differs only in case and whitespace, counting it by split', () => {
    const heldOut: HeldOutInput[] = [
      { name: 'cola/in_domain_dev.tsv', sentences: ['The sailors rode the breeze clear of the rocks.'] },
      { name: 'rte/test.tsv', sentences: ['Dogs bark.', 'the sailors rode the breeze clear of the rocks.'] },
    ];
    const [cola] = buildCorpus(
      [{ name: 'cola', lines: ['the  sailors rode the BREEZE clear of the rocks. ', 'Kept sentence.', ' dogs\tbark. ', 'Dogs bark.'] }],
      heldOut,
    );
    expect(cola!.lines).to.deep.equal(['Kept sentence.']);
    expect(cola!.droppedOverlap).to.equal(3);
    // A sentence in two held-out splits counts for the first; the counts come in the held-out order.
    expect(cola!.droppedOverlapBy).to.deep.equal({ 'cola/in_domain_dev.tsv': 1, 'rte/test.tsv': 2 });
    expect(Object.keys(cola!.droppedOverlapBy)).to.deep.equal(['cola/in_domain_dev.tsv', 'rte/test.tsv']);
    expect(cola!.duplicates).to.equal(0);
  });

  it('de-duplicates across sources keeping the first occurrence (as first written), and counts what it removed', () => {
    const sources: CorpusSourceInput[] = [
      { name: 'a', lines: ['One two.', 'three  four', 'one TWO.', 'Five.'] },
      { name: 'b', lines: ['Three four', 'six seven', 'Five.', 'six   seven'] },
    ];
    const [a, b] = buildCorpus(sources, []);
    expect(a!.lines).to.deep.equal(['One two.', 'three four', 'Five.']);
    expect([a!.duplicates, a!.duplicatesOfEarlierSources]).to.deep.equal([1, 0]);
    expect(b!.lines).to.deep.equal(['six seven']);
    expect([b!.duplicates, b!.duplicatesOfEarlierSources]).to.deep.equal([3, 2]);
    expect([a!.input, b!.input]).to.deep.equal([4, 4]);
  });

  it('drops empty lines and, per source, lines under minWords (before de-duplication)', () => {
    const [s] = buildCorpus([{ name: 'wordnet', lines: ['', ' \t ', 'petrels', 'an action', 'Petrels', 'an  action'], minWords: 2 }], [
      { name: 'dev', sentences: ['petrels', ''] },
    ]);
    expect(s!.lines).to.deep.equal(['an action']);
    expect([s!.empty, s!.droppedOverlap, s!.tooShort, s!.duplicates]).to.deep.equal([2, 2, 0, 1]);
    const [t] = buildCorpus([{ name: 'wordnet', lines: ['petrels', 'an action'], minWords: 2 }], []);
    expect([t!.lines, t!.tooShort]).to.deep.equal([['an action'], 1]);
  });

  it('is deterministic: the same input gives the same lines and file bytes', () => {
    const sources: CorpusSourceInput[] = [
      { name: 'x', lines: Array.from({ length: 200 }, (_, i) => `Sentence ${i % 37}  number ${i % 11}.`) },
      { name: 'y', lines: Array.from({ length: 200 }, (_, i) => `sentence ${i % 23} NUMBER ${i % 7}.`) },
    ];
    const heldOut: HeldOutInput[] = [{ name: 'dev', sentences: ['Sentence 3 number 3.'] }];
    const first = buildCorpus(sources, heldOut);
    const second = buildCorpus(sources, heldOut);
    expect(second).to.deep.equal(first);
    expect(second.map((r) => corpusFileText(r.lines))).to.deep.equal(first.map((r) => corpusFileText(r.lines)));
    expect(corpusFileText(first[0]!.lines).endsWith('.\n')).to.equal(true);
    expect(corpusFileText([])).to.equal('');
    expect(() => buildCorpus([sources[0]!, sources[0]!], [])).to.throw('given twice');
  });
});
