import assert from 'node:assert/strict';
import fc from 'fast-check';
import { labelKeyError, labelValueError } from '../../src/api/label-syntax';
import {
  equalityTerms,
  formatLabelSelector,
  LabelSelector,
  labelSelectorFromK8s,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  Requirement,
  SelectorError,
  SUPPORTED_FIELDS,
} from '../../src/api/selectors';
import { ApiObject } from '../../src/api/types';

/** Asserts that `fn` throws a SelectorError with exactly `message`. */
function throwsSelectorError(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SelectorError, `expected a SelectorError, got ${String(err)}`);
    assert.equal(err.message, message);
    return true;
  });
}

const exists = (key: string): Requirement => ({ key, op: 'Exists' });
const absent = (key: string): Requirement => ({ key, op: 'DoesNotExist' });
const isIn = (key: string, ...values: string[]): Requirement => ({ key, op: 'In', values });
const notIn = (key: string, ...values: string[]): Requirement => ({ key, op: 'NotIn', values });

const LONG = 'x'.repeat(64);

describe('label syntax', () => {
  const keys: [string, string | undefined][] = [
    ['app', undefined],
    ['App_1.x-y', undefined],
    ['a', undefined],
    ['app.kubernetes.io/name', undefined],
    ['example.com/MyName', undefined],
    ['x'.repeat(63), undefined],
    [`${'a'.repeat(253)}/n`, undefined],
    ['', 'name part must be non-empty'],
    ['example.com/', 'name part must be non-empty'],
    ['/name', 'prefix part must be non-empty'],
    [LONG, 'name part must be no more than 63 characters'],
    [`${'a'.repeat(254)}/n`, 'prefix part must be no more than 253 characters'],
    [
      'Example.com/name',
      "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    ],
    [
      'a/b/c',
      "a qualified name must consist of an optional DNS subdomain prefix and '/' followed by a name",
    ],
    ...['-app', 'app-', '_app', 'app.', 'a b', 'a:b', 'é'].map((k): [string, string] => [
      k,
      "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ]),
  ];
  for (const [key, reason] of keys)
    it(`key ${JSON.stringify(key.length > 40 ? `${key.slice(0, 20)}…` : key)}: ${reason ?? 'valid'}`, () =>
      assert.equal(labelKeyError(key), reason));

  const values: [string, string | undefined][] = [
    ['', undefined],
    ['web', undefined],
    ['v1.2_3-rc', undefined],
    ['x'.repeat(63), undefined],
    [LONG, 'must be no more than 63 characters'],
    ...['-x', 'x-', '.x', 'a/b', 'a b', 'a=b'].map((v): [string, string] => [
      v,
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
    ]),
  ];
  for (const [value, reason] of values)
    it(`value ${JSON.stringify(value.length > 40 ? `${value.slice(0, 20)}…` : value)}: ${reason ?? 'valid'}`, () =>
      assert.equal(labelValueError(value), reason));
});

describe('parseLabelSelector', () => {
  const cases: [string, Requirement[]][] = [
    ['', []],
    ['   \t\n ', []],
    ['app=web', [isIn('app', 'web')]],
    ['app==web', [isIn('app', 'web')]],
    ['app!=web', [notIn('app', 'web')]],
    ['app=', [isIn('app', '')]],
    ['app!=,x', [notIn('app', ''), exists('x')]],
    ['env in (prod,staging)', [isIn('env', 'prod', 'staging')]],
    ['env in (staging,prod,prod)', [isIn('env', 'prod', 'staging')]],
    ['env in (prod)', [isIn('env', 'prod')]],
    ['release notin (canary)', [notIn('release', 'canary')]],
    ['env in (prod,)', [isIn('env', '', 'prod')]],
    ['env in (,)', [isIn('env', '')]],
    ['gpu', [exists('gpu')]],
    ['!legacy', [absent('legacy')]],
    ['app.kubernetes.io/name=web', [isIn('app.kubernetes.io/name', 'web')]],
    // Requirements are sorted by key; requirements on one key keep their order.
    [
      'app=web,tier!=db,env in (prod,staging),release notin (canary),gpu,!legacy',
      [
        isIn('app', 'web'),
        isIn('env', 'prod', 'staging'),
        exists('gpu'),
        absent('legacy'),
        notIn('release', 'canary'),
        notIn('tier', 'db'),
      ],
    ],
    ['b,a=2,a!=1', [isIn('a', '2'), notIn('a', '1'), exists('b')]],
    // Whitespace anywhere between tokens.
    [
      '  app = web ,tier!= db,\tenv in(prod , staging ) ,\n! legacy  ',
      [isIn('app', 'web'), isIn('env', 'prod', 'staging'), absent('legacy'), notIn('tier', 'db')],
    ],
    ['a notin(x)', [notIn('a', 'x')]],
    // `in` and `notin` are operators only after a key.
    ['in=notin', [isIn('in', 'notin')]],
    ['in in (in,notin)', [isIn('in', 'in', 'notin')]],
    ['notin,!in', [absent('in'), exists('notin')]],
  ];
  for (const [text, requirements] of cases)
    it(`${JSON.stringify(text)}`, () =>
      assert.deepEqual(parseLabelSelector(text), { requirements }));

  const errors: [string, string][] = [
    // Unbalanced or misplaced parentheses.
    ['a in (x', 'expected ")" after "x"'],
    ['a in (x,', 'expected ")" after ","'],
    ['a in (', 'expected ")" after "("'],
    ['a in x)', 'expected "(" after "in", found "x"'],
    ['a in (x))', 'expected "," or the end after ")", found ")"'],
    ['a in ((x))', 'expected a value, "," or ")" after "(", found "("'],
    ['a in (x y)', 'expected "," or ")" after "x", found "y"'],
    ['a=b)', 'expected "," or the end after "b", found ")"'],
    ['(a=b)', 'unexpected "(" at the start'],
    // Empty keys and requirements.
    ['=x', 'empty key before "="'],
    ['a=1, == 2', 'empty key before "=="'],
    ['!=x', 'empty key before "!="'],
    ['in (x)', 'empty key before "in"'],
    ['a,notin (x)', 'empty key before "notin"'],
    [',a', 'empty requirement at the start'],
    ['a,,b', 'empty requirement after ","'],
    ['a,', 'empty requirement after ","'],
    ['!', 'expected a key after "!"'],
    ['!(a)', 'expected a key after "!", found "("'],
    // Invalid keys and values.
    [
      'a/b/c=x',
      `invalid key "a/b/c": a qualified name must consist of an optional DNS subdomain prefix and '/' followed by a name`,
    ],
    [
      '-a',
      `invalid key "-a": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
    ],
    [`!${LONG}`, `invalid key "${LONG}": name part must be no more than 63 characters`],
    [
      'a=-x',
      `invalid value "-x" for key "a": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
    ],
    [`a in (x,${LONG})`, `invalid value "${LONG}" for key "a": must be no more than 63 characters`],
    // Set operators without values.
    ['a in ()', '"in" needs at least one value for key "a"'],
    ['a notin ( )', '"notin" needs at least one value for key "a"'],
    // Missing or unknown operators.
    ['a b', 'expected "=", "==", "!=", "in", "notin", "," or the end after "a", found "b"'],
    ['a ! = b', 'expected "=", "==", "!=", "in", "notin", "," or the end after "a", found "!"'],
    ['a=b c=d', 'expected "," or the end after "b", found "c"'],
    ['a=b=c', 'expected "," or the end after "b", found "="'],
    ['!a=b', 'expected "," or the end after "a", found "="'],
    ['a=(b)', 'expected a value after "=", found "("'],
    ['a>1', 'operator ">" is not supported; use =, ==, !=, in, notin, key or !key'],
  ];
  for (const [text, reason] of errors)
    it(`rejects ${JSON.stringify(text.length > 40 ? `${text.slice(0, 20)}…` : text)}: ${reason.slice(0, 60)}`, () =>
      throwsSelectorError(
        () => parseLabelSelector(text),
        `label selector ${JSON.stringify(text)}: ${reason}`,
      ));
});

describe('matchesLabels', () => {
  const labels = { app: 'web', tier: 'frontend', env: 'prod', empty: '' };
  const cases: [string, Record<string, string> | undefined, boolean][] = [
    ['', labels, true],
    ['', {}, true],
    ['', undefined, true],
    ['app=web', labels, true],
    ['app=db', labels, false],
    ['app!=db', labels, true],
    ['app!=web', labels, false],
    ['missing!=x', labels, true], // an absent label is "not x"
    ['missing=', labels, false], // but it is not ""
    ['empty=', labels, true],
    ['empty', labels, true],
    ['env in (prod,staging)', labels, true],
    ['env in (dev,staging)', labels, false],
    ['missing in (x)', labels, false],
    ['env notin (dev)', labels, true],
    ['env notin (prod,dev)', labels, false],
    ['missing notin (x)', labels, true],
    ['tier', labels, true],
    ['missing', labels, false],
    ['!missing', labels, true],
    ['!tier', labels, false],
    ['!tier', undefined, true],
    ['tier', undefined, false],
    ['app=web,tier=frontend,env in (prod),!legacy', labels, true],
    ['app=web,tier=backend', labels, false],
    ['app=web,app=db', labels, false],
    // Prototype properties are not labels.
    ['constructor', {}, false],
    ['!toString', {}, true],
    ['toString=x', {}, false],
  ];
  for (const [text, set, expected] of cases)
    it(`${JSON.stringify(text)} ${expected ? 'selects' : 'rejects'} ${JSON.stringify(set)}`, () =>
      assert.equal(matchesLabels(parseLabelSelector(text), set), expected));
});

describe('formatLabelSelector and equalityTerms', () => {
  const cases: [string, string, [string, string][]][] = [
    ['', '', []],
    [' app == web ', 'app=web', [['app', 'web']]],
    ['env in (prod)', 'env=prod', [['env', 'prod']]],
    ['tier != db', 'tier!=db', []],
    ['env in ( staging, prod )', 'env in (prod,staging)', []],
    ['r notin (b,a,b)', 'r notin (a,b)', []],
    ['e in (x,)', 'e in (,x)', []],
    ['e=', 'e=', [['e', '']]],
    ['gpu , ! legacy', 'gpu,!legacy', []],
    [
      'b=2,a=1,a!=3',
      'a=1,a!=3,b=2',
      [
        ['a', '1'],
        ['b', '2'],
      ],
    ],
  ];
  for (const [text, formatted, terms] of cases)
    it(`${JSON.stringify(text)} formats as ${JSON.stringify(formatted)}`, () => {
      const sel = parseLabelSelector(text);
      assert.equal(formatLabelSelector(sel), formatted);
      assert.deepEqual(parseLabelSelector(formatted), sel);
      assert.deepEqual(equalityTerms(sel), terms);
    });
});

describe('labelSelectorFromK8s', () => {
  it('treats an absent or empty selector as selecting everything', () => {
    for (const sel of [undefined, {}, { matchLabels: {}, matchExpressions: [] }]) {
      assert.deepEqual(labelSelectorFromK8s(sel), { requirements: [] });
      assert.equal(matchesLabels(labelSelectorFromK8s(sel), { any: 'thing' }), true);
    }
  });

  it('turns matchLabels and matchExpressions into sorted requirements', () => {
    const sel = labelSelectorFromK8s({
      matchLabels: { tier: 'web', app: 'shop' },
      matchExpressions: [
        { key: 'env', operator: 'In', values: ['staging', 'prod'] },
        { key: 'track', operator: 'NotIn', values: ['canary'] },
        { key: 'gpu', operator: 'Exists' },
        { key: 'legacy', operator: 'DoesNotExist', values: [] },
      ],
    });
    assert.deepEqual(sel.requirements, [
      isIn('app', 'shop'),
      isIn('env', 'prod', 'staging'),
      exists('gpu'),
      absent('legacy'),
      isIn('tier', 'web'),
      notIn('track', 'canary'),
    ]);
    assert.equal(
      formatLabelSelector(sel),
      'app=shop,env in (prod,staging),gpu,!legacy,tier=web,track!=canary',
    );
    assert.deepEqual(equalityTerms(sel), [
      ['app', 'shop'],
      ['tier', 'web'],
    ]);
    const pod = { app: 'shop', tier: 'web', env: 'prod', gpu: 'yes' };
    assert.equal(matchesLabels(sel, pod), true);
    assert.equal(matchesLabels(sel, { ...pod, track: 'canary' }), false);
    assert.equal(matchesLabels(sel, { ...pod, legacy: 'true' }), false);
  });

  type K8s = Parameters<typeof labelSelectorFromK8s>[0];
  const errors: [K8s, string][] = [
    [
      { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] },
      'label selector matchExpressions[0]: unknown operator "Gt" for key "a"; expected In, NotIn, Exists or DoesNotExist',
    ],
    [
      { matchExpressions: [{ key: 'a', operator: 'in', values: ['x'] }] },
      'label selector matchExpressions[0]: unknown operator "in" for key "a"; expected In, NotIn, Exists or DoesNotExist',
    ],
    [
      {
        matchExpressions: [
          { key: 'a', operator: 'Exists' },
          { key: 'b', operator: 'In' },
        ],
      },
      'label selector matchExpressions[1]: operator In needs at least one value for key "b"',
    ],
    [
      { matchExpressions: [{ key: 'b', operator: 'NotIn', values: [] }] },
      'label selector matchExpressions[0]: operator NotIn needs at least one value for key "b"',
    ],
    [
      { matchExpressions: [{ key: 'b', operator: 'Exists', values: ['x'] }] },
      'label selector matchExpressions[0]: operator Exists takes no values, got 1 for key "b"',
    ],
    [
      { matchExpressions: [{ key: 'a/b/c', operator: 'Exists' }] },
      `label selector matchExpressions[0]: invalid key "a/b/c": a qualified name must consist of an optional DNS subdomain prefix and '/' followed by a name`,
    ],
    [
      { matchExpressions: [{ key: 'a', operator: 'In', values: ['ok', LONG] }] },
      `label selector matchExpressions[0]: invalid value "${LONG}" for key "a": must be no more than 63 characters`,
    ],
    [
      { matchLabels: { app: 'web', '': 'x' } },
      'label selector matchLabels[""]: invalid key "": name part must be non-empty',
    ],
    [
      { matchLabels: { app: 'web/x' } },
      `label selector matchLabels["app"]: invalid value "web/x" for key "app": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`,
    ],
  ];
  for (const [sel, message] of errors)
    it(`rejects ${JSON.stringify(sel)}`, () =>
      throwsSelectorError(() => labelSelectorFromK8s(sel), message));
});

describe('label selector properties', () => {
  // Small pools so generated selectors and label maps often talk about the same labels.
  const key = fc.constantFrom(
    'app',
    'tier',
    'in',
    'notin',
    'app.kubernetes.io/name',
    'example.com/Tier_2',
    'constructor',
  );
  const value = fc.constantFrom('', 'web', 'db', 'in', 'notin', 'v1.2', 'A_b-c');
  const requirement: fc.Arbitrary<Requirement> = fc.oneof(
    fc.record({ key, op: fc.constantFrom('Exists' as const, 'DoesNotExist' as const) }),
    fc.record({
      key,
      op: fc.constantFrom('In' as const, 'NotIn' as const),
      values: fc.array(value, { minLength: 1, maxLength: 4 }),
    }),
  );
  const space = fc.constantFrom('', '', ' ', '  ', '\t', '\n');
  /** One requirement in one of the ways a person might write it. */
  const written = (r: Requirement): fc.Arbitrary<string> =>
    fc.tuple(space, space, space, space, fc.nat(2)).map(([s1, s2, s3, s4, form]) => {
      switch (r.op) {
        case 'Exists':
          return `${s1}${r.key}${s2}`;
        case 'DoesNotExist':
          return `${s1}!${s2}${r.key}${s3}`;
        case 'In':
        case 'NotIn': {
          // One value: `k=v`, `k==v` or `k in (v)`; `k in ()` would be no values at all.
          if (r.values.length === 1 && (form < 2 || r.values[0] === '')) {
            const op = r.op === 'NotIn' ? '!=' : form === 0 ? '=' : '==';
            return `${s1}${r.key}${s2}${op}${s3}${r.values[0]}${s4}`;
          }
          const setOp = r.op === 'In' ? 'in' : 'notin';
          return `${s1}${r.key} ${setOp}${s2}(${s3}${r.values.join(`${s4},${s3}`)}${s4})${s1}`;
        }
      }
    });
  const selectorText = fc
    .array(requirement, { maxLength: 6 })
    .chain((rs) =>
      fc.tuple(
        fc.constant(rs),
        rs.length === 0 ? fc.constant([] as string[]) : fc.tuple(...rs.map(written)),
      ),
    )
    .map(([rs, parts]) => ({ requirements: rs, text: parts.join(',') }));

  /** What parsing should make of generated requirements: values as sets, requirements by key. */
  function normalized(rs: Requirement[]): LabelSelector {
    // Spread: fast-check's records have no prototype, parsed requirements do.
    const requirements = rs.map((r) =>
      r.op === 'In' || r.op === 'NotIn'
        ? { ...r, values: [...new Set(r.values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)) }
        : { ...r },
    );
    requirements.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { requirements };
  }

  /** The definition of each operator, written out plainly. */
  function reference(rs: Requirement[], labels: Record<string, string>): boolean {
    for (const r of rs) {
      const has = Object.prototype.hasOwnProperty.call(labels, r.key);
      if (r.op === 'Exists' && !has) return false;
      if (r.op === 'DoesNotExist' && has) return false;
      if (r.op === 'In' && !(has && r.values.some((v) => v === labels[r.key]))) return false;
      if (r.op === 'NotIn' && has && r.values.some((v) => v === labels[r.key])) return false;
    }
    return true;
  }

  it('parses generated selector text to the requirements it was written from', () =>
    fc.assert(
      fc.property(selectorText, ({ requirements, text }) => {
        assert.deepEqual(parseLabelSelector(text), normalized(requirements));
      }),
      { numRuns: 500 },
    ));

  it('formatLabelSelector(parse(x)) parses back to the same selector and formats the same', () =>
    fc.assert(
      fc.property(selectorText, ({ text }) => {
        const sel = parseLabelSelector(text);
        const canonical = formatLabelSelector(sel);
        assert.deepEqual(parseLabelSelector(canonical), sel);
        assert.equal(formatLabelSelector(parseLabelSelector(canonical)), canonical);
      }),
      { numRuns: 500 },
    ));

  it('matchesLabels agrees with a reference implementation', () =>
    fc.assert(
      fc.property(
        selectorText,
        fc.dictionary(key, value, { maxKeys: 5 }),
        ({ requirements, text }, labels) => {
          const expected = reference(requirements, labels);
          assert.equal(matchesLabels(parseLabelSelector(text), labels), expected);
          assert.equal(matchesLabels({ requirements }, labels), expected);
        },
      ),
      { numRuns: 1000 },
    ));

  it('equalityTerms are implied by the selector: a match always has those labels', () =>
    fc.assert(
      fc.property(selectorText, fc.dictionary(key, value, { maxKeys: 5 }), ({ text }, labels) => {
        const sel = parseLabelSelector(text);
        if (matchesLabels(sel, labels))
          for (const [k, v] of equalityTerms(sel)) assert.equal(labels[k], v);
      }),
      { numRuns: 500 },
    ));
});

describe('parseFieldSelector', () => {
  const cases: [string, { path: string; op: '=' | '!='; value: string }[]][] = [
    ['', []],
    ['  ', []],
    ['metadata.name=web', [{ path: 'metadata.name', op: '=', value: 'web' }]],
    ['metadata.name==web', [{ path: 'metadata.name', op: '=', value: 'web' }]],
    [
      'metadata.name=web,spec.nodeName!=n1',
      [
        { path: 'metadata.name', op: '=', value: 'web' },
        { path: 'spec.nodeName', op: '!=', value: 'n1' },
      ],
    ],
    ['spec.nodeName=', [{ path: 'spec.nodeName', op: '=', value: '' }]],
    [' status.phase != Running , ', [{ path: 'status.phase', op: '!=', value: 'Running' }]],
    [
      'type=Warning,,involvedObject.kind=Pod',
      [
        { path: 'type', op: '=', value: 'Warning' },
        { path: 'involvedObject.kind', op: '=', value: 'Pod' },
      ],
    ],
    [
      'involvedObject.name=a\\,b\\=c\\\\d',
      [{ path: 'involvedObject.name', op: '=', value: 'a,b=c\\d' }],
    ],
  ];
  for (const [text, terms] of cases)
    it(`${JSON.stringify(text)}`, () => assert.deepEqual(parseFieldSelector(text), { terms }));

  const supported = SUPPORTED_FIELDS.join(', ');
  const errors: [string, string][] = [
    ['spec.replicas=1', `unsupported field "spec.replicas"; supported fields are ${supported}`],
    [
      'metadata.labels.app=web',
      `unsupported field "metadata.labels.app"; supported fields are ${supported}`,
    ],
    ['metadata.name', 'expected "=", "==" or "!=" in "metadata.name"'],
    ['metadata.name=a,status.phase', 'expected "=", "==" or "!=" in "status.phase"'],
    ['=web', 'empty field path before "="'],
    ['metadata.name=a=b', 'unescaped "=" in value "a=b"; write \\= for a literal "="'],
    ['metadata.name!==a', 'unescaped "=" in value "=a"; write \\= for a literal "="'],
    ['metadata.name=a\\b', 'invalid escape sequence in value "a\\\\b"; use \\\\, \\, or \\='],
  ];
  for (const [text, reason] of errors)
    it(`rejects ${JSON.stringify(text)}`, () =>
      throwsSelectorError(
        () => parseFieldSelector(text),
        `field selector ${JSON.stringify(text)}: ${reason}`,
      ));

  it('lists the supported fields', () =>
    assert.deepEqual(SUPPORTED_FIELDS, [
      'metadata.name',
      'metadata.namespace',
      'spec.nodeName',
      'status.phase',
      'involvedObject.name',
      'involvedObject.kind',
      'type',
      'spec.unschedulable',
    ]));
});

describe('matchesFields', () => {
  const pod = (name: string, nodeName?: string, phase?: string): ApiObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { containers: [], ...(nodeName === undefined ? {} : { nodeName }) },
    ...(phase === undefined ? {} : { status: { phase } }),
  });
  const node = (name: string, unschedulable?: boolean): ApiObject => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    spec: unschedulable === undefined ? {} : { unschedulable },
  });
  const event: ApiObject = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: 'web.1', namespace: 'default' },
    involvedObject: { kind: 'Pod', name: 'web' },
    type: 'Warning',
  };

  const cases: [string, ApiObject, boolean][] = [
    ['', pod('web'), true],
    ['metadata.name=web', pod('web'), true],
    ['metadata.name==web', pod('db'), false],
    ['metadata.name!=web', pod('db'), true],
    ['metadata.namespace=default', pod('web'), true],
    ['metadata.namespace=', node('n1'), true], // cluster-scoped: no namespace
    ['metadata.namespace!=default', node('n1'), true],
    ['spec.nodeName=n1', pod('web', 'n1'), true],
    ['spec.nodeName=n1', pod('web'), false],
    ['spec.nodeName=', pod('web'), true], // unscheduled
    ['spec.nodeName=', pod('web', 'n1'), false],
    ['spec.nodeName!=', pod('web', 'n1'), true],
    ['spec.nodeName!=n1', pod('web'), true],
    ['status.phase=Running', pod('web', 'n1', 'Running'), true],
    ['status.phase=Running', pod('web', 'n1'), false],
    ['status.phase!=Succeeded,status.phase!=Failed', pod('web', 'n1', 'Running'), true],
    ['status.phase!=Succeeded,status.phase!=Failed', pod('web', 'n1', 'Failed'), false],
    ['metadata.name=web,spec.nodeName=n1', pod('web', 'n2'), false],
    ['spec.unschedulable=true', node('n1', true), true],
    ['spec.unschedulable=true', node('n1', false), false],
    ['spec.unschedulable=false', node('n1', false), true],
    // A node that does not say is schedulable: Kubernetes reads the absent bool as false.
    ['spec.unschedulable=false', node('n1'), true],
    ['spec.unschedulable!=true', node('n1'), true],
    ['involvedObject.kind=Pod,involvedObject.name=web', event, true],
    ['involvedObject.name=db', event, false],
    ['type=Warning', event, true],
    ['type=Normal', event, false],
    ['involvedObject.name=', pod('web'), true],
  ];
  for (const [text, obj, expected] of cases)
    it(`${JSON.stringify(text)} ${expected ? 'selects' : 'rejects'} ${obj.kind} ${obj.metadata.name}`, () =>
      assert.equal(matchesFields(parseFieldSelector(text), obj), expected));
});
