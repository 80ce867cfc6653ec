/**
 * Learning-rate and probe-guidance-weight schedules, as pure functions of the step.
 *
 * Step convention (the one Hugging Face's schedulers have): `step` is the 0-based number of the
 * optimizer update, and a schedule's value at `step` is the learning rate that update number `step`
 * uses. torch's LambdaLR sets lr = peak · lambda(0) when it is built, the first `optimizer.step()`
 * uses that, then `scheduler.step()` moves to lambda(1) for the second update, and so on. So with
 * warm-up the very first update has lr 0, and update `totalSteps - 1` (the last one) has
 * peak / (totalSteps − warmupSteps). Steps at or past `totalSteps` are allowed and give 0 for the
 * decaying schedules (HF's max(0, ·)), so a stray extra update cannot produce a negative rate.
 *
 * Every argument is checked; a bad one throws a TopoprobeError that names it.
 */
import { check } from '../util/errors.js';

export interface LinearScheduleOptions {
  /** The learning rate at the end of warm-up. */
  peak: number;
  /** Updates spent ramping up from 0; an integer in 0..totalSteps. */
  warmupSteps: number;
  /** Updates in the whole run; the rate reaches 0 here. */
  totalSteps: number;
}

/**
 * Hugging Face's get_linear_schedule_with_warmup:
 *   lr(step) = peak · step / max(1, warmupSteps)                          for step < warmupSteps
 *   lr(step) = peak · max(0, (totalSteps − step) / max(1, totalSteps − warmupSteps))   otherwise.
 * E.g. 10 steps with 2 of warm-up: 0, p/2, p, 7p/8, 6p/8, …, p/8, then 0 at step 10.
 */
export function linearWarmupDecay(step: number, opts: LinearScheduleOptions): number {
  checkStep(step, 'linearWarmupDecay');
  checkPeak(opts.peak, 'linearWarmupDecay');
  checkTotal(opts.totalSteps, 'linearWarmupDecay');
  checkWarmup(opts.warmupSteps, opts.totalSteps, 'linearWarmupDecay');
  const { peak, warmupSteps: warmup, totalSteps: total } = opts;
  if (step < warmup) return (peak * step) / Math.max(1, warmup);
  return peak * Math.max(0, (total - step) / Math.max(1, total - warmup));
}

export interface ConstantScheduleOptions {
  /** The learning rate after warm-up. */
  peak: number;
  /** Updates spent ramping up from 0 (default 0: no warm-up). */
  warmupSteps?: number;
  /** Updates in the whole run; optional, and only used to check that warmupSteps fits in it. */
  totalSteps?: number;
}

/**
 * A constant rate, with an optional linear warm-up as in Hugging Face's
 * get_constant_schedule_with_warmup: peak · step / max(1, warmupSteps) for step < warmupSteps, then
 * peak (also past totalSteps). Without warm-up it is get_constant_schedule: peak at every step.
 */
export function constantSchedule(step: number, opts: ConstantScheduleOptions): number {
  checkStep(step, 'constantSchedule');
  checkPeak(opts.peak, 'constantSchedule');
  const warmup = opts.warmupSteps ?? 0;
  if (opts.totalSteps !== undefined) checkTotal(opts.totalSteps, 'constantSchedule');
  checkWarmup(warmup, opts.totalSteps, 'constantSchedule');
  if (step < warmup) return (opts.peak * step) / Math.max(1, warmup);
  return opts.peak;
}

/**
 * Warm-up steps for a warm-up ratio, as Hugging Face's TrainingArguments.get_warmupsteps computes
 * it: ceil(totalSteps · warmupRatio). The product is taken in floating point exactly as Python does,
 * so a ratio with no exact binary form can round up one more than the decimal arithmetic suggests
 * (warmupSteps(100, 0.07) is 8, since 100 · 0.07 = 7.000000000000001), the same as HF.
 */
export function warmupSteps(totalSteps: number, warmupRatio: number): number {
  check(
    Number.isInteger(totalSteps) && totalSteps >= 0,
    () => `warmupSteps: totalSteps must be a non-negative integer, got ${totalSteps}`,
  );
  check(
    Number.isFinite(warmupRatio) && warmupRatio >= 0 && warmupRatio <= 1,
    () => `warmupSteps: warmupRatio must be a number in [0, 1], got ${warmupRatio}`,
  );
  return Math.ceil(totalSteps * warmupRatio);
}

export type ScheduleKind = 'linear' | 'constant';

export interface ScheduleConfig {
  /** 'linear': linear warm-up then linear decay to 0 (linearWarmupDecay); 'constant': constantSchedule. */
  kind: ScheduleKind;
  peak: number;
  /** Warm-up as a fraction of totalSteps, rounded up (see warmupSteps). Give this or warmupSteps. */
  warmupRatio?: number;
  /** Warm-up as a number of updates. Give this or warmupRatio; neither means no warm-up. */
  warmupSteps?: number;
  totalSteps: number;
}

/**
 * A schedule `(step) => lr` built from a config, with every argument checked once up front.
 * Giving both warmupSteps and warmupRatio is an error: HF silently lets a positive warmupsteps win,
 * but in our configs two warm-up settings are more likely a mistake than a deliberate override.
 */
export function makeSchedule(config: ScheduleConfig): (step: number) => number {
  const kinds: readonly ScheduleKind[] = ['linear', 'constant'];
  check(
    kinds.includes(config.kind),
    () => `makeSchedule: kind must be one of ${kinds.join(', ')}, got ${JSON.stringify(config.kind)}`,
  );
  check(
    config.warmupSteps === undefined || config.warmupRatio === undefined,
    'makeSchedule: give warmupSteps or warmupRatio, not both',
  );
  checkPeak(config.peak, 'makeSchedule');
  checkTotal(config.totalSteps, 'makeSchedule');
  const warmup =
    config.warmupSteps ?? (config.warmupRatio === undefined ? 0 : warmupSteps(config.totalSteps, config.warmupRatio));
  checkWarmup(warmup, config.totalSteps, 'makeSchedule');
  const opts = { peak: config.peak, warmupSteps: warmup, totalSteps: config.totalSteps };
  return config.kind === 'linear'
    ? (step: number) => linearWarmupDecay(step, opts)
    : (step: number) => constantSchedule(step, opts);
}

export type GuidanceKind = 'constant' | 'linear-decay' | 'warmup' | 'halving';

/** The 'halving' schedule's cut-off: once 2^-(epoch - 1) falls below it, the weight is 0. */
export const HALVING_CUTOFF = 0.1;

/**
 * The weight of the probe-guidance loss term at `step` (0-based, as above):
 * - 'constant': weight.
 * - 'linear-decay': weight · max(0, 1 − step / totalSteps): full weight at step 0, 0 at totalSteps
 *   and after.
 * - 'warmup': weight · min(1, step / warmupSteps): 0 at step 0, full weight from warmupSteps on.
 *   warmupSteps defaults to 10% of totalSteps rounded up, warmupSteps(totalSteps, 0.1), the same
 *   rounding as the learning-rate warm-up; an explicit 0 means full weight from step 0.
 * - 'halving': weight · 2^-(epoch − 1) in epoch `epoch` (1-based), and 0 once that factor is under
 *   HALVING_CUTOFF (from epoch 5 on): the decay the paper's authors left commented out in their code.
 * weight must be finite and non-negative. The other kinds ignore warmupSteps and epoch, so a caller can
 * pass one config's values whatever the kind.
 */
export function guidanceWeight(
  kind: GuidanceKind,
  step: number,
  totalSteps: number,
  weight: number,
  /** The 'warmup' kind's warm-up length in steps (see above). */
  warmup?: number,
  /** The 1-based epoch the step belongs to (needed by 'halving'). */
  epoch?: number,
): number {
  const kinds: readonly GuidanceKind[] = ['constant', 'linear-decay', 'warmup', 'halving'];
  check(kinds.includes(kind), () => `guidanceWeight: kind must be one of ${kinds.join(', ')}, got ${JSON.stringify(kind)}`);
  checkStep(step, 'guidanceWeight');
  checkTotal(totalSteps, 'guidanceWeight');
  check(
    Number.isFinite(weight) && weight >= 0,
    () => `guidanceWeight: weight must be a finite non-negative number, got ${weight}`,
  );
  switch (kind) {
    case 'constant':
      return weight;
    case 'linear-decay':
      return weight * Math.max(0, 1 - step / totalSteps);
    case 'warmup': {
      const w = warmup ?? warmupSteps(totalSteps, 0.1);
      checkWarmup(w, totalSteps, 'guidanceWeight');
      return w === 0 ? weight : weight * Math.min(1, step / w);
    }
    case 'halving': {
      check(epoch !== undefined && Number.isInteger(epoch) && epoch >= 1, () => `guidanceWeight: 'halving' needs the epoch, a positive integer, got ${epoch}`);
      const factor = 2 ** -(epoch - 1);
      return factor < HALVING_CUTOFF ? 0 : weight * factor;
    }
  }
}

function checkStep(step: number, fn: string): void {
  check(Number.isInteger(step) && step >= 0, () => `${fn}: step must be a non-negative integer, got ${step}`);
}

function checkPeak(peak: number, fn: string): void {
  check(Number.isFinite(peak) && peak >= 0, () => `${fn}: peak must be a finite non-negative number, got ${peak}`);
}

function checkTotal(total: number, fn: string): void {
  check(Number.isInteger(total) && total >= 1, () => `${fn}: totalSteps must be a positive integer, got ${total}`);
}

/** warmupSteps must be an integer in 0..total; with no total, any non-negative integer. */
function checkWarmup(warmup: number, total: number | undefined, fn: string): void {
  check(
    Number.isInteger(warmup) && warmup >= 0 && (total === undefined || warmup <= total),
    () =>
      total === undefined
        ? `${fn}: warmupSteps must be a non-negative integer, got ${warmup}`
        : `${fn}: warmupSteps must be an integer in 0..totalSteps (${total}), got ${warmup}`,
  );
}
