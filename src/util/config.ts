/**
 * YAML run configs: read a file, follow `extends:` (a path relative to the file; objects merge key by key,
 * anything else is replaced), apply `--set key.path=value` overrides (values are YAML scalars or flow
 * collections; `a.b[0].c` paths), and validate against a zod schema. Every error names the file and the key
 * path, before any work starts.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { TopoprobeError } from './errors.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads one YAML file into a plain object, with parse errors naming file, line and column. */
export function readYaml(path: string): Record<string, unknown> {
  if (!existsSync(path)) throw new TopoprobeError(`${path}: config file not found`);
  let value: unknown;
  try {
    value = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      throw new TopoprobeError(`${path}${pos ? `:${pos.line}:${pos.col}` : ''}: invalid YAML: ${err.message.split('\n')[0]}`);
    }
    throw err;
  }
  if (value === null || value === undefined) return {};
  if (!isObject(value)) throw new TopoprobeError(`${path}: a config must be a mapping of keys to values`);
  return value;
}

/** Deep merge: objects key by key, everything else (arrays included) replaced by `over`. */
export function mergeConfig(base: unknown, over: unknown): unknown {
  if (isObject(base) && isObject(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeConfig(base[k], v) : v;
    return out;
  }
  return over;
}

/** Reads a config and everything it extends (cycles are an error). */
export function readConfigChain(path: string, seen: string[] = []): Record<string, unknown> {
  const abs = resolve(path);
  if (seen.includes(abs)) throw new TopoprobeError(`${abs}: extends itself (${[...seen, abs].join(' -> ')})`);
  const raw = readYaml(abs);
  const { extends: parent, ...rest } = raw;
  if (parent === undefined) return rest;
  if (typeof parent !== 'string') throw new TopoprobeError(`${abs}: extends: expected a path to another config file`);
  const base = readConfigChain(resolve(dirname(abs), parent), [...seen, abs]);
  return mergeConfig(base, rest) as Record<string, unknown>;
}

/** Splits `a.b[0].c` into ['a', 'b', 0, 'c']. */
export function parseKeyPath(path: string): Array<string | number> {
  const parts: Array<string | number> = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let consumed = '';
  for (const m of path.matchAll(re)) {
    parts.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
    consumed += m[0];
  }
  if (parts.length === 0 || consumed.length !== path.replace(/\./g, '').length) {
    throw new TopoprobeError(`--set ${path}: not a key path (expected e.g. optimizer.lr or guidance[0].layer)`);
  }
  return parts;
}

/** Applies one `key.path=value` override in place. */
export function applySet(config: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new TopoprobeError(`--set ${assignment}: expected key=value`);
  const keys = parseKeyPath(assignment.slice(0, eq).trim());
  let value: unknown;
  try {
    value = parseYaml(assignment.slice(eq + 1));
  } catch {
    throw new TopoprobeError(`--set ${assignment}: the value is not valid YAML`);
  }
  let node: unknown = config;
  keys.forEach((key, i) => {
    const last = i === keys.length - 1;
    const container = node as Record<string | number, unknown>;
    if (last) {
      container[key] = value;
      return;
    }
    if (container[key] === undefined || container[key] === null) container[key] = typeof keys[i + 1] === 'number' ? [] : {};
    node = container[key];
    if (typeof node !== 'object') throw new TopoprobeError(`--set ${assignment}: ${keys.slice(0, i + 1).join('.')} is not a mapping or list`);
  });
}

/** Formats zod issues as `file: key.path: message` lines. */
export function formatIssues(source: string, issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .map((issue) => {
      const path = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
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
