/**
 * YAML run configs: read a file, follow `extends:` (a path relative to the file; objects merge key by key,
 * anything else is replaced), apply `--set key.path=value` overrides (values are YAML scalars or flow
 * collections; `a.b[0].c` paths), and validate against a zod schema. Every error names the file and the key
 * path, before any work starts. Refused as bad input: a missing, empty or unreadable file, a folder, YAML
 * that does not parse (or expands aliases without bound), the keys `__proto__`, `constructor` and
 * `prototype` anywhere, and `--set` paths with empty keys or an index that would leave a gap in a list.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, parseDocument, stringify as stringifyYaml, YAMLError } from 'yaml';
import type { z } from 'zod';
import { TopoprobeError, describeSystemError } from './errors.js';
import { readText } from './fs.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Keys that would reach an object's prototype when assigned: refused in files, `--set` and merges. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The most alias expansions (`*name`) one YAML document may make, counting nested ones, as in the yaml
 * package's own default. A "billion laughs" document (aliases of aliases) goes far beyond it.
 */
export const MAX_ALIAS_COUNT = 100;

/** `a.b[0].c` from ['a', 'b', 0, 'c']. */
function formatKeyPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

/** Throws naming `source` and the key path when a forbidden key appears anywhere in `value`. */
function refuseForbiddenKeys(value: unknown, source: string, path: Array<string | number> = []): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => refuseForbiddenKeys(v, source, [...path, i]));
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (FORBIDDEN_KEYS.has(k)) throw new TopoprobeError(`${source}: ${formatKeyPath([...path, k])}: the key "${k}" is not allowed`);
      refuseForbiddenKeys(v, source, [...path, k]);
    }
  }
}

/** Whether YAML text holds nothing but blank lines, comments and document markers. */
function isBlankYaml(text: string): boolean {
  return text.split(/\r?\n/).every((line) => {
    const t = line.replace(/^\uFEFF/, '').trim();
    return t === '' || t.startsWith('#') || /^(---|\.\.\.)(\s+#.*)?$/.test(t);
  });
}

/**
 * Reads one YAML file into a plain object, with parse errors naming file, line and column. `via` is the
 * config whose `extends:` named this one, added to every message.
 */
export function readYaml(path: string, via?: string): Record<string, unknown> {
  const from = via !== undefined ? ` (named by extends: in ${via})` : '';
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT' || (err as { code?: unknown }).code === 'ENOTDIR') throw new TopoprobeError(`${path}: config file not found${from}`);
    throw new TopoprobeError(`${path}: ${describeSystemError(err) ?? (err as Error).message}${from}`, { cause: err });
  }
  if (isDir) throw new TopoprobeError(`${path}: is a folder, not a config file${from}`);
  const text = readText(path, 'config file');
  const invalid = (message: string, pos?: { line: number; col: number }, cause?: unknown) =>
    new TopoprobeError(`${path}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${message.split('\n')[0]}${from}`, { cause });
  let value: unknown;
  try {
    const doc = parseDocument(text);
    const first = doc.errors[0];
    if (first) throw invalid(first.message, first.linePos?.[0], first);
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof TopoprobeError) throw err;
    const message = (err as Error).message ?? String(err);
    if (/alias count/i.test(message)) {
      throw invalid(`its aliases expand too far (more than ${MAX_ALIAS_COUNT} expansions; a "billion laughs" document?)`, undefined, err);
    }
    // Anything else the parser throws (an unresolved alias, a document too deeply nested, ...).
    if (err instanceof YAMLError || err instanceof Error) throw invalid(message, err instanceof YAMLError ? err.linePos?.[0] : undefined, err);
    throw err;
  }
  if ((value === null || value === undefined) && isBlankYaml(text)) {
    throw new TopoprobeError(`${path}: is empty (a config is a YAML mapping of settings, e.g. \`epochs: 3\`)${from}`);
  }
  if (!isObject(value)) throw new TopoprobeError(`${path}: a config must be a mapping of keys to values${from}`);
  refuseForbiddenKeys(value, path);
  return value;
}

/** Deep merge: objects key by key, everything else (arrays included) replaced by `over`. */
export function mergeConfig(base: unknown, over: unknown): unknown {
  if (isObject(base) && isObject(over)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(base)) {
      if (FORBIDDEN_KEYS.has(k)) throw new TopoprobeError(`config: the key "${k}" is not allowed`);
      out[k] = v;
    }
    for (const [k, v] of Object.entries(over)) {
      if (FORBIDDEN_KEYS.has(k)) throw new TopoprobeError(`config: the key "${k}" is not allowed`);
      out[k] = Object.hasOwn(base, k) ? mergeConfig(base[k], v) : v;
    }
    return out;
  }
  return over;
}

/** Reads a config and everything it extends (cycles are an error). */
export function readConfigChain(path: string, seen: string[] = []): Record<string, unknown> {
  const abs = resolve(path);
  if (seen.includes(abs)) throw new TopoprobeError(`${abs}: extends itself (${[...seen, abs].join(' -> ')})`);
  const raw = readYaml(abs, seen.at(-1));
  const { extends: parent, ...rest } = raw;
  if (parent === undefined) return rest;
  if (typeof parent !== 'string' || parent.trim() === '') throw new TopoprobeError(`${abs}: extends: expected a path to another config file`);
  const base = readConfigChain(resolve(dirname(abs), parent), [...seen, abs]);
  return mergeConfig(base, rest) as Record<string, unknown>;
}

const KEY_PATH_HINT = 'expected e.g. optimizer.lr or guidance[0].layer';

/**
 * Splits `a.b[0].c` into ['a', 'b', 0, 'c']. Refused: an empty key (`a..b`, `.a`, `a.`), a segment that
 * is not `name` or `name[i]...`, and the keys `__proto__`, `constructor`, `prototype`. `shown` is what
 * messages quote after `--set` (the whole assignment, by default the path).
 */
export function parseKeyPath(path: string, shown: string = path): Array<string | number> {
  const bad = (why: string) => new TopoprobeError(`--set ${shown}: ${why} (${KEY_PATH_HINT})`);
  if (path.trim() === '') throw bad('no key path');
  const parts: Array<string | number> = [];
  for (const segment of path.split('.')) {
    if (segment.trim() === '') throw bad('an empty key in the path (two dots, or a dot at the start or end)');
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(segment);
    if (!m) throw bad(`"${segment}" is not a key or key[index]`);
    const name = m[1]!;
    if (FORBIDDEN_KEYS.has(name)) throw bad(`the key "${name}" is not allowed`);
    parts.push(name);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) {
      const n = Number(idx[1]);
      if (!Number.isSafeInteger(n)) throw bad(`index [${idx[1]}] is too large`);
      parts.push(n);
    }
  }
  return parts;
}

/**
 * Applies one `key.path=value` override in place. A list index may replace an element or append one
 * (index = length), never leave a gap; a key of a list or an index of a mapping is an error.
 */
export function applySet(config: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new TopoprobeError(`--set ${assignment}: expected key=value`);
  const keys = parseKeyPath(assignment.slice(0, eq).trim(), assignment);
  let value: unknown;
  try {
    value = parseYaml(assignment.slice(eq + 1), { maxAliasCount: MAX_ALIAS_COUNT });
  } catch {
    throw new TopoprobeError(`--set ${assignment}: the value is not valid YAML`);
  }
  refuseForbiddenKeys(value, `--set ${assignment}`);
  const fail = (why: string) => new TopoprobeError(`--set ${assignment}: ${why}`);
  let node: unknown = config;
  // The first mapping or list that the path creates is attached only once the whole path is checked, so a
  // refused assignment leaves the config as it was.
  let attach: (() => void) | undefined;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const here = i === 0 ? '(top level)' : formatKeyPath(keys.slice(0, i));
    let next: unknown;
    if (Array.isArray(node)) {
      if (typeof key !== 'number') throw fail(`${here} is a list; index it as ${here}[0]`);
      if (key > node.length) {
        const allowed = node.length === 0 ? '[0] appends the first element' : `[0] to [${node.length - 1}] replace an element, [${node.length}] appends one`;
        throw fail(`${here} has ${node.length} element${node.length === 1 ? '' : 's'}: index [${key}] would leave a gap (${allowed})`);
      }
      next = node[key];
    } else if (isObject(node)) {
      if (typeof key === 'number') throw fail(`${here} is a mapping, not a list; name a key, as in ${here}.name`);
      next = Object.hasOwn(node, key) ? node[key] : undefined;
    } else {
      throw fail(`${here} is not a mapping or list`);
    }
    const container = node as Record<string | number, unknown>;
    if (i === keys.length - 1) {
      container[key] = value;
      attach?.();
      return;
    }
    if (next === undefined || next === null) {
      const created: unknown = typeof keys[i + 1] === 'number' ? [] : {};
      if (attach === undefined) attach = () => void (container[key] = created);
      else container[key] = created;
      next = created;
    }
    node = next;
  }
}

/** Formats zod issues as `file: key.path: message` lines. */
export function formatIssues(source: string, issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const path = formatKeyPath(issue.path);
      return `${source}: ${path || '(top level)'}: ${issue.message}`;
    })
    .join('\n');
}

/** Reads, merges, overrides and validates a config; returns the validated value. */
export function loadConfig<S extends z.ZodType>(path: string, schema: S, sets: readonly string[] = []): z.infer<S> {
  const raw = readConfigChain(path);
  for (const s of sets) applySet(raw, s);
  const result = schema.safeParse(raw);
  if (!result.success) throw new TopoprobeError(`invalid config\n${formatIssues(path, result.error.issues)}`);
  return result.data;
}

/** YAML text of a resolved config, for the run folder. */
export function configToYaml(config: unknown): string {
  return stringifyYaml(JSON.parse(JSON.stringify(config)) as Json);
}
