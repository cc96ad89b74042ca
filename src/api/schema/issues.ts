/**
 * Turns zod's issues into Baton's: `path: reason`, the path written as
 * kubectl writes it (`spec.containers[0].image`), the reason in words a
 * person can act on (`required`, `unknown field`, `expected integer, got
 * string`).
 */
import { z } from 'zod';
import { jsonType } from './fields';

export interface ValidationIssue {
  path: string;
  message: string;
}

/** `spec.containers[0].name`; the empty path (the object itself) is `(root)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

const isIntSchema = (inst: unknown): boolean =>
  (inst as { _zod?: { def?: { format?: string } } } | undefined)?._zod?.def?.format === 'safeint';

const quote = (v: unknown) => JSON.stringify(v);

function items(n: number | bigint, origin: string): string {
  if (origin === 'string') return `${n} character${n === 1 ? '' : 's'}`;
  if (origin === 'array' || origin === 'set') return `${n} item${n === 1 ? '' : 's'}`;
  return String(n);
}

/** The per-parse error map: every message zod would write, in Baton's words. */
export const errorMap: z.core.$ZodErrorMap = (iss) => {
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.input === undefined) return 'required';
      const expected =
        iss.expected === 'number' && isIntSchema(iss.inst)
          ? 'integer'
          : iss.expected === 'int'
            ? 'integer'
            : iss.expected === 'record'
              ? 'object'
              : iss.expected;
      return `expected ${expected}, got ${jsonType(iss.input)}`;
    }
    case 'invalid_value':
      return `unsupported value ${quote(iss.input)}: supported values: ${iss.values.map(quote).join(', ')}`;
    case 'too_small': {
      if (iss.origin === 'string' && Number(iss.minimum) === 1) return 'must be non-empty';
      if (iss.origin === 'array' || iss.origin === 'string')
        return `must have at least ${items(iss.minimum, iss.origin)}`;
      return `must be greater than ${iss.inclusive ? 'or equal to ' : ''}${iss.minimum}`;
    }
    case 'too_big': {
      if (iss.origin === 'array' || iss.origin === 'string')
        return `must have at most ${items(iss.maximum, iss.origin)}`;
      return `must be less than ${iss.inclusive ? 'or equal to ' : ''}${iss.maximum}`;
    }
    case 'unrecognized_keys':
      return 'unknown field';
    default:
      return undefined;
  }
};

/** One issue per problem; an unknown-keys issue becomes one per key, each at its own path. */
export function toValidationIssues(issues: readonly z.core.$ZodIssue[]): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const iss of issues) {
    if (iss.code === 'unrecognized_keys') {
      for (const k of iss.keys)
        out.push({ path: formatPath([...iss.path, k]), message: 'unknown field' });
    } else {
      out.push({ path: formatPath(iss.path), message: iss.message });
    }
  }
  return out;
}

export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('\n');
}
