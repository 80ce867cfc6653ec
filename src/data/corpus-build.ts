/**
 * The text filtering behind the masked-LM pretraining corpus (scripts/build-corpus.ts): given each source's
 * lines, in order, and the held-out sentences (every dev and test split), it cleans the lines, drops those
 * that match a held-out sentence, drops the too-short ones, and removes duplicates across the whole corpus,
 * keeping each line's first occurrence. It is pure (no files): the same input gives the same output.
 *
 * Matching, for both the held-out check and de-duplication, is on `normalizeForMatch`: lowercased,
 * whitespace runs collapsed to one space, trimmed. A line is kept as cleaned (`cleanLine`: whitespace runs,
 * tabs and newlines included, become one space; trimmed), not lowercased.
 *
 * Per line, in this order: empty after cleaning -> `empty`; a held-out sentence -> `droppedOverlap`
 * (counted every time, whether or not it occurred before); fewer than the source's `minWords`
 * whitespace-separated words -> `tooShort`; the same as a line kept earlier, in this source or an earlier
 * one -> `duplicates`; otherwise kept.
 */

/** How a line is compared with the held-out sentences and with other lines: lowercased, whitespace collapsed, trimmed. */
export function normalizeForMatch(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** A line as the corpus holds it: one line, no tabs (whitespace runs become one space), trimmed. */
export function cleanLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Whitespace-separated words. */
export function countWords(text: string): number {
  const t = text.trim();
  return t === '' ? 0 : t.split(/\s+/).length;
}

export interface CorpusSourceInput {
  /** The source's name (`cola`, `wordnet`, ...): the output file is `<name>.txt`. */
  name: string;
  /** Its lines, in order. */
  lines: readonly string[];
  /** Lines with fewer words than this are dropped (default 1: only empty lines). */
  minWords?: number;
}

export interface HeldOutInput {
  /** Which split it is (`cola/in_domain_dev.tsv`, ...), for the per-split overlap counts. */
  name: string;
  sentences: readonly string[];
}

export interface CorpusSourceResult {
  name: string;
  /** The lines kept, cleaned, in input order. */
  lines: string[];
  /** Lines given. */
  input: number;
  /** Lines empty after cleaning. */
  empty: number;
  /** Lines matching a held-out sentence. */
  droppedOverlap: number;
  /** The same, by held-out split (the first split, in the order given, holding the sentence), in that order; only splits with a match. */
  droppedOverlapBy: Record<string, number>;
  /** Lines with fewer than `minWords` words. */
  tooShort: number;
  /** Lines matching a line kept earlier (this source or an earlier one). */
  duplicates: number;
  /** Of those, the ones whose first occurrence is in an earlier source. */
  duplicatesOfEarlierSources: number;
}

/**
 * Filters the sources in the order given (see the module comment). Held-out splits are matched in the order
 * given too: a sentence in several splits is attributed to the first.
 */
export function buildCorpus(sources: readonly CorpusSourceInput[], heldOut: readonly HeldOutInput[]): CorpusSourceResult[] {
  const heldOutSplit = new Map<string, string>();
  for (const split of heldOut) {
    for (const sentence of split.sentences) {
      const key = normalizeForMatch(sentence);
      if (key !== '' && !heldOutSplit.has(key)) heldOutSplit.set(key, split.name);
    }
  }
  // Every kept line's key, and the source it was kept in.
  const keptIn = new Map<string, string>();
  const seenNames = new Set<string>();
  return sources.map((source) => {
    if (seenNames.has(source.name)) throw new Error(`buildCorpus: source ${JSON.stringify(source.name)} given twice`);
    seenNames.add(source.name);
    const minWords = source.minWords ?? 1;
    const result: CorpusSourceResult = {
      name: source.name,
      lines: [],
      input: source.lines.length,
      empty: 0,
      droppedOverlap: 0,
      droppedOverlapBy: {},
      tooShort: 0,
      duplicates: 0,
      duplicatesOfEarlierSources: 0,
    };
    for (const raw of source.lines) {
      const line = cleanLine(raw);
      if (line === '') {
        result.empty++;
        continue;
      }
      const key = normalizeForMatch(line);
      const split = heldOutSplit.get(key);
      if (split !== undefined) {
        result.droppedOverlap++;
        result.droppedOverlapBy[split] = (result.droppedOverlapBy[split] ?? 0) + 1;
        continue;
      }
      if (countWords(line) < minWords) {
        result.tooShort++;
        continue;
      }
      const first = keptIn.get(key);
      if (first !== undefined) {
        result.duplicates++;
        if (first !== source.name) result.duplicatesOfEarlierSources++;
        continue;
      }
      keptIn.set(key, source.name);
      result.lines.push(line);
    }
    // The per-split counts in the held-out order, not the order the matches came in.
    const by = result.droppedOverlapBy;
    result.droppedOverlapBy = Object.fromEntries(heldOut.flatMap((h) => (by[h.name] === undefined ? [] : [[h.name, by[h.name]!]])));
    return result;
  });
}

/** A source's file content: its lines, each ending in `\n` (empty for no lines). */
export function corpusFileText(lines: readonly string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
