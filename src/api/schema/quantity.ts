/**
 * Kubernetes resource quantities ("100m", "128Mi", "1e3", 2) as plain
 * numbers: CPU in cores, memory and storage in bytes, counts as counts.
 * Baton compares and sums quantities but never prints them back, so a float
 * is precise enough (Kubernetes' exact decimal arithmetic is not needed).
 */

export class QuantityError extends Error {
  override name = 'QuantityError';
}

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

// <sign><digits>[.<digits>]<suffix>, where the suffix is binary, decimal or
// an exponent. "1E" is exa; "1E3" is an exponent, as in Kubernetes.
const QUANTITY =
  /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([eE][+-]?[0-9]+)|(n|u|m|k|M|G|T|P|E))?$/;

const HINT =
  'expected a number with an optional suffix (n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei) or exponent (1e3)';

/** Parses a quantity; throws QuantityError naming the bad input otherwise. */
export function parseQuantity(s: string | number): number {
  if (typeof s === 'number') {
    if (!Number.isFinite(s))
      throw new QuantityError(`invalid quantity ${String(s)}: not a finite number`);
    return s;
  }
  if (typeof s !== 'string')
    throw new QuantityError(`invalid quantity: expected string or number, got ${typeof s}`);
  const m = QUANTITY.exec(s);
  if (!m) throw new QuantityError(`invalid quantity "${s}": ${HINT}`);
  const [, num, binary, exponent, decimal] = m;
  const base = Number(num);
  if (binary !== undefined) return base * BINARY[binary];
  if (exponent !== undefined) return base * 10 ** Number(exponent.slice(1));
  const v = base * DECIMAL[decimal ?? ''];
  if (!Number.isFinite(v)) throw new QuantityError(`invalid quantity "${s}": out of range`);
  return v;
}
