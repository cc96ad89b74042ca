/**
 * Label selectors and field selectors, as `kubectl get -l … --field-selector …`
 * and the workload kinds' `spec.selector` express them, with Kubernetes'
 * semantics (apimachinery `labels.Parse`, `metav1.LabelSelectorAsSelector`,
 * `fields.ParseSelector`).
 */
import { labelKeyError, labelValueError } from './label-syntax';
import { ApiObject } from './types';

/** A selector that cannot be parsed; the message names the selector text and what is wrong. */
export class SelectorError extends Error {
  override name = 'SelectorError';
}

export type Requirement =
  | { key: string; op: 'Exists' | 'DoesNotExist' }
  | { key: string; op: 'In' | 'NotIn'; values: string[] };

/**
 * An AND of requirements; no requirements selects everything. Parsing sorts
 * the requirements by key (stably) and the values of each, without
 * duplicates, as Kubernetes does, so equivalent texts parse to equal selectors.
 */
export interface LabelSelector {
  requirements: Requirement[];
}

const quote = (s: string): string => JSON.stringify(s);

// ---------------------------------------------------------------------------
// Label selector text: `app=web,tier!=db,env in (prod,staging),release notin (canary),gpu,!legacy`

interface Token {
  /** A word is any run of characters that are neither whitespace nor one of `=!(),<>`. */
  kind: 'word' | 'op';
  text: string;
}

const OPERATOR_TOKENS = ['==', '!=', '=', '!', '(', ')', ',', '<', '>'];

function lex(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    if (/\s/.test(text[i])) {
      i++;
      continue;
    }
    const op = OPERATOR_TOKENS.find((o) => text.startsWith(o, i));
    if (op) {
      tokens.push({ kind: 'op', text: op });
      i += op.length;
      continue;
    }
    let j = i;
    while (j < text.length && !/\s/.test(text[j]) && !'=!(),<>'.includes(text[j])) j++;
    tokens.push({ kind: 'word', text: text.slice(i, j) });
    i = j;
  }
  return tokens;
}

/**
 * A recursive-descent parser over the tokens. `in` and `notin` are operators
 * only after a key, so labels named `in` or `notin` can still be selected
 * (Kubernetes' own lexer cannot).
 */
class LabelParser {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
  ) {}

  parse(): LabelSelector {
    const requirements: Requirement[] = [];
    if (this.tokens.length === 0) return { requirements };
    for (;;) {
      requirements.push(this.requirement());
      const t = this.peek();
      if (t === undefined) break;
      if (t.text !== ',')
        this.fail(`expected "," or the end ${this.after()}, found ${quote(t.text)}`);
      this.pos++;
    }
    return { requirements: sortByKey(requirements) };
  }

  private requirement(): Requirement {
    const t = this.peek();
    if (t === undefined || t.text === ',') this.fail(`empty requirement ${this.after()}`);
    if (t.text === '!') {
      this.pos++;
      const k = this.peek();
      if (k?.kind !== 'word') this.fail(`expected a key after "!"${found(k)}`);
      this.pos++;
      return { key: this.key(k.text), op: 'DoesNotExist' };
    }
    if (t.text === '=' || t.text === '==' || t.text === '!=')
      this.fail(`empty key before ${quote(t.text)}`);
    if (t.kind === 'word' && isSetOperator(t.text) && this.peek(1)?.text === '(')
      this.fail(`empty key before ${quote(t.text)}`);
    if (t.kind !== 'word') this.fail(`unexpected ${quote(t.text)} ${this.after()}`);
    this.pos++;
    const key = this.key(t.text);

    const op = this.peek();
    if (op === undefined || op.text === ',') return { key, op: 'Exists' };
    this.pos++;
    if (op.text === '=' || op.text === '==')
      return { key, op: 'In', values: [this.exactValue(key)] };
    if (op.text === '!=') return { key, op: 'NotIn', values: [this.exactValue(key)] };
    if (op.kind === 'word' && isSetOperator(op.text)) {
      const values = this.valueList(key, op.text);
      return { key, op: op.text === 'in' ? 'In' : 'NotIn', values };
    }
    if (op.text === '<' || op.text === '>')
      this.fail(
        `operator ${quote(op.text)} is not supported; use =, ==, !=, in, notin, key or !key`,
      );
    this.pos--;
    this.fail(
      `expected "=", "==", "!=", "in", "notin", "," or the end ${this.after()}${found(op)}`,
    );
  }

  /** The value after `=`, `==` or `!=`; nothing before a comma or the end means "". */
  private exactValue(key: string): string {
    const t = this.peek();
    if (t === undefined || t.text === ',') return '';
    if (t.kind !== 'word') this.fail(`expected a value ${this.after()}, found ${quote(t.text)}`);
    this.pos++;
    return this.value(key, t.text);
  }

  /** `(a,b,…)`. An empty item is the empty value, as in Kubernetes: `(a,)` is {"", "a"}. */
  private valueList(key: string, op: string): string[] {
    const open = this.peek();
    if (open?.text !== '(') this.fail(`expected "(" ${this.after()}${found(open)}`);
    this.pos++;
    const values: string[] = [];
    if (this.peek()?.text === ')') {
      this.pos++;
      this.fail(`${quote(op)} needs at least one value for key ${quote(key)}`);
    }
    for (;;) {
      const t = this.peek();
      if (t === undefined) this.fail(`expected ")" ${this.after()}`);
      if (t.kind === 'word') {
        this.pos++;
        values.push(this.value(key, t.text));
      } else if (t.text === ',' || t.text === ')') {
        values.push('');
      } else {
        this.fail(`expected a value, "," or ")" ${this.after()}, found ${quote(t.text)}`);
      }
      const sep = this.peek();
      if (sep === undefined) this.fail(`expected ")" ${this.after()}`);
      this.pos++;
      if (sep.text === ')') return normalizeValues(values);
      if (sep.text !== ',') {
        this.pos--;
        this.fail(`expected "," or ")" ${this.after()}, found ${quote(sep.text)}`);
      }
    }
  }

  private key(key: string): string {
    const bad = labelKeyError(key);
    if (bad) this.fail(`invalid key ${quote(key)}: ${bad}`);
    return key;
  }

  private value(key: string, value: string): string {
    const bad = labelValueError(value);
    if (bad) this.fail(`invalid value ${quote(value)} for key ${quote(key)}: ${bad}`);
    return value;
  }

  private peek(ahead = 0): Token | undefined {
    return this.tokens[this.pos + ahead];
  }

  /** Where the parser is, named by the token before it. */
  private after(): string {
    return this.pos === 0 ? 'at the start' : `after ${quote(this.tokens[this.pos - 1].text)}`;
  }

  private fail(reason: string): never {
    throw new SelectorError(`label selector ${quote(this.text)}: ${reason}`);
  }
}

const found = (t: Token | undefined): string => (t ? `, found ${quote(t.text)}` : '');
const isSetOperator = (word: string): boolean => word === 'in' || word === 'notin';

/** Kubernetes keeps values as a set and prints them sorted; so do we. */
function normalizeValues(values: string[]): string[] {
  return [...new Set(values)].sort(compare);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `Array.prototype.sort` is stable, so requirements on the same key keep their order. */
function sortByKey(requirements: Requirement[]): Requirement[] {
  return requirements.sort((a, b) => compare(a.key, b.key));
}

/** Parses `kubectl -l` syntax; the empty (or blank) text selects everything. */
export function parseLabelSelector(text: string): LabelSelector {
  return new LabelParser(text, lex(text)).parse();
}

type K8sLabelSelector = {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
};

/**
 * The selector of a Deployment, ReplicaSet, Job or Service (`matchLabels` and
 * `matchExpressions`). An absent selector is treated as empty and so selects
 * everything: unlike `metav1.LabelSelectorAsSelector(nil)`, which selects
 * nothing. Callers for which "no selector" means "select nothing" (a Service
 * without a selector) must check for absence themselves.
 */
export function labelSelectorFromK8s(sel: K8sLabelSelector | undefined): LabelSelector {
  const requirements: Requirement[] = [];
  const fail = (where: string, reason: string): never => {
    throw new SelectorError(`label selector ${where}: ${reason}`);
  };
  const checkKey = (where: string, key: string): void => {
    const bad = labelKeyError(key);
    if (bad) fail(where, `invalid key ${quote(key)}: ${bad}`);
  };
  const checkValue = (where: string, key: string, value: string): void => {
    const bad = labelValueError(value);
    if (bad) fail(where, `invalid value ${quote(value)} for key ${quote(key)}: ${bad}`);
  };

  for (const [key, value] of Object.entries(sel?.matchLabels ?? {})) {
    const where = `matchLabels[${quote(key)}]`;
    checkKey(where, key);
    checkValue(where, key, value);
    requirements.push({ key, op: 'In', values: [value] });
  }
  (sel?.matchExpressions ?? []).forEach((e, i) => {
    const where = `matchExpressions[${i}]`;
    checkKey(where, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0)
          fail(where, `operator ${e.operator} needs at least one value for key ${quote(e.key)}`);
        for (const v of values) checkValue(where, e.key, v);
        requirements.push({ key: e.key, op: e.operator, values: normalizeValues(values) });
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0)
          fail(
            where,
            `operator ${e.operator} takes no values, got ${values.length} for key ${quote(e.key)}`,
          );
        requirements.push({ key: e.key, op: e.operator });
        break;
      default:
        fail(
          where,
          `unknown operator ${quote(e.operator)} for key ${quote(e.key)}; expected In, NotIn, Exists or DoesNotExist`,
        );
    }
  });
  return { requirements: sortByKey(requirements) };
}

/** Whether `labels` satisfy every requirement; an absent label never equals a value. */
export function matchesLabels(
  sel: LabelSelector,
  labels: Record<string, string> | undefined,
): boolean {
  const set = labels ?? {};
  return sel.requirements.every((r) => {
    const has = Object.hasOwn(set, r.key);
    switch (r.op) {
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      case 'In':
        return has && r.values.includes(set[r.key]);
      case 'NotIn':
        return !has || !r.values.includes(set[r.key]);
    }
  });
}

/**
 * Canonical `kubectl -l` text: `k=v` and `k!=v` for one value, `k in (a,b)`
 * and `k notin (a,b)` otherwise, `k` and `!k`, joined by ",". It parses back
 * to an equal selector when the selector is valid (as parsing makes it).
 */
export function formatLabelSelector(sel: LabelSelector): string {
  return sel.requirements
    .map((r) => {
      switch (r.op) {
        case 'Exists':
          return r.key;
        case 'DoesNotExist':
          return `!${r.key}`;
        case 'In':
          return r.values.length === 1
            ? `${r.key}=${r.values[0]}`
            : `${r.key} in (${r.values.join(',')})`;
        case 'NotIn':
          return r.values.length === 1
            ? `${r.key}!=${r.values[0]}`
            : `${r.key} notin (${r.values.join(',')})`;
      }
    })
    .join(',');
}

/** The requirements that name a single value per key with '=' — a store can use them to pick a label index. */
export function equalityTerms(sel: LabelSelector): [string, string][] {
  const terms: [string, string][] = [];
  for (const r of sel.requirements)
    if (r.op === 'In' && r.values.length === 1) terms.push([r.key, r.values[0]]);
  return terms;
}

// ---------------------------------------------------------------------------
// Field selectors: `metadata.name=web,spec.nodeName!=n1`

export interface FieldTerm {
  path: string;
  op: '=' | '!=';
  value: string;
}

/** An AND of terms; no terms selects everything. */
export interface FieldSelector {
  terms: FieldTerm[];
}

export const SUPPORTED_FIELDS: readonly string[] = [
  'metadata.name',
  'metadata.namespace',
  'spec.nodeName',
  'status.phase',
  'involvedObject.name',
  'involvedObject.kind',
  'type',
  'spec.unschedulable',
];

/**
 * What an absent field compares as, when not "". Kubernetes derives these
 * fields from Go structs, where an unset bool is false: `spec.unschedulable=false`
 * selects every node that has not been cordoned, whether or not it says so.
 */
const ABSENT_FIELD_VALUE: Readonly<Record<string, string>> = { 'spec.unschedulable': 'false' };

/**
 * Splits `text` at each unescaped occurrence of `sep`; a backslash escapes the
 * next character and is kept, to be removed by `unescapeFieldValue`.
 */
function splitUnescaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === sep) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Parses `--field-selector` syntax: terms `path=value`, `path==value` or `path!=value`, joined by ",". */
export function parseFieldSelector(text: string): FieldSelector {
  const fail = (reason: string): never => {
    throw new SelectorError(`field selector ${quote(text)}: ${reason}`);
  };
  const terms: FieldTerm[] = [];
  for (const term of splitUnescaped(text, ',')) {
    if (term.trim() === '') continue; // Kubernetes skips empty terms
    const at = operatorIndex(term);
    if (at === undefined) return fail(`expected "=", "==" or "!=" in ${quote(term.trim())}`);
    const opText = term.startsWith('!=', at) ? '!=' : term.startsWith('==', at) ? '==' : '=';
    const path = term.slice(0, at).trim();
    const raw = term.slice(at + opText.length).trim();
    if (path === '') fail(`empty field path before ${quote(opText)}`);
    if (!SUPPORTED_FIELDS.includes(path))
      fail(`unsupported field ${quote(path)}; supported fields are ${SUPPORTED_FIELDS.join(', ')}`);
    const value = unescapeFieldValue(raw, fail);
    terms.push({ path, op: opText === '!=' ? '!=' : '=', value });
  }
  return { terms };
}

/** Where the first unescaped `!=`, `==` or `=` of a term begins. */
function operatorIndex(term: string): number | undefined {
  for (let i = 0; i < term.length; i++) {
    if (term[i] === '\\') i++;
    else if (term[i] === '=' || term.startsWith('!=', i)) return i;
  }
  return undefined;
}

/** Kubernetes' escapes in field values: `\\`, `\,` and `\=`; an unescaped `=` is an error. */
function unescapeFieldValue(raw: string, fail: (reason: string) => never): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\\') {
      const next = raw[i + 1];
      if (next !== '\\' && next !== ',' && next !== '=')
        fail(`invalid escape sequence in value ${quote(raw)}; use \\\\, \\, or \\=`);
      out += next;
      i++;
    } else if (c === '=') {
      fail(`unescaped "=" in value ${quote(raw)}; write \\= for a literal "="`);
    } else {
      out += c;
    }
  }
  return out;
}

/** The field as a selector compares it: strings as they are, booleans and numbers as text. */
function fieldValue(obj: ApiObject, path: string): string {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, part)) {
      cur = undefined;
      break;
    }
    cur = (cur as Record<string, unknown>)[part];
  }
  if (typeof cur === 'string') return cur;
  if (typeof cur === 'boolean' || typeof cur === 'number') return String(cur);
  return ABSENT_FIELD_VALUE[path] ?? '';
}

/** Whether `obj` satisfies every term; an absent field compares as "" (so `spec.nodeName=` selects unscheduled pods). */
export function matchesFields(sel: FieldSelector, obj: ApiObject): boolean {
  return sel.terms.every((t) => (fieldValue(obj, t.path) === t.value) === (t.op === '='));
}
