/** Parsers for commander options, shared by every command so a port or a percent is read one way. */
import { InvalidArgumentError } from 'commander';

/** A whole number from min to max (no sign, no fraction, no exponent). */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    }
    return n;
  };
}

/** A TCP port to listen on or connect to. */
export const port = integer(1, 65535);

/** A whole percent from min to 100. */
export const percent = (min: number) => integer(min, 100);

export function nonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a non-negative number');
  return n;
}
