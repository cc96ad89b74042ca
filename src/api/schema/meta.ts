/**
 * `metadata`, the part every object shares. Kubernetes clients send back
 * what they read, so read-only and server-side fields are accepted here;
 * `managedFields` and `selfLink` (in every `kubectl get -o yaml`) are
 * accepted and dropped, since Baton has neither server-side apply nor links.
 */
import { z } from 'zod';
import { annotationMap, labelMap, nonNegInt, timestamp } from './fields';
import { dns1123Label, dns1123Subdomain, qualifiedName } from './names';

export type NameRule = 'subdomain' | 'label';

export function checkName(rule: NameRule, name: string): string | undefined {
  const bad = rule === 'label' ? dns1123Label(name) : dns1123Subdomain(name);
  return bad && `invalid name "${name}": ${bad}`;
}

const ownerReference = () =>
  z.strictObject({
    apiVersion: z.string().min(1),
    kind: z.string().min(1),
    name: z.string().min(1),
    uid: z.string().min(1),
    controller: z.boolean().optional(),
    blockOwnerDeletion: z.boolean().optional(),
  });

const metaFields = () => ({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: nonNegInt().optional(),
  creationTimestamp: timestamp().optional(),
  deletionTimestamp: timestamp().optional(),
  deletionGracePeriodSeconds: nonNegInt().optional(),
  labels: labelMap().optional(),
  annotations: annotationMap().optional(),
  ownerReferences: z.array(ownerReference()).optional(),
  finalizers: z.array(z.string()).optional(),
  managedFields: z.array(z.unknown()).optional(),
  selfLink: z.string().optional(),
});

type MetaOut = z.output<z.ZodObject<ReturnType<typeof metaFields>>>;
type Meta = Omit<MetaOut, 'managedFields' | 'selfLink'>;

function withoutServerSideFields(m: MetaOut): Meta {
  const { managedFields: _managedFields, selfLink: _selfLink, ...rest } = m;
  return rest;
}

function checkCommon(m: MetaOut, ctx: z.RefinementCtx<MetaOut>): void {
  if (m.namespace !== undefined) {
    const bad = dns1123Label(m.namespace);
    if (bad)
      ctx.addIssue({
        code: 'custom',
        path: ['namespace'],
        message: `invalid namespace "${m.namespace}": ${bad}`,
      });
  }
  (m.finalizers ?? []).forEach((f, i) => {
    const bad = qualifiedName(f);
    if (bad)
      ctx.addIssue({
        code: 'custom',
        path: ['finalizers', i],
        message: `invalid finalizer "${f}": ${bad}`,
      });
  });
  const controllers = (m.ownerReferences ?? []).filter((o) => o.controller === true);
  if (controllers.length > 1)
    ctx.addIssue({
      code: 'custom',
      path: ['ownerReferences'],
      message: `only one reference can have controller set to true, found ${controllers.length}`,
    });
}

/**
 * The metadata of a top-level object of `kind`. The output claims `name`
 * is a string: it is absent only when `generateName` is set, and admission
 * assigns it before the object is stored or seen by anyone else.
 */
export function objectMeta(kind: string, rule: NameRule, namespaced: boolean) {
  return z
    .strictObject(metaFields())
    .superRefine((m, ctx) => {
      if (m.name === undefined && m.generateName === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['name'],
          message: 'required (or set metadata.generateName)',
        });
      if (m.name !== undefined) {
        const bad = checkName(rule, m.name);
        if (bad) ctx.addIssue({ code: 'custom', path: ['name'], message: bad });
      }
      if (m.generateName !== undefined && m.name === undefined) {
        // Admission appends five characters, so the prefix must leave room for them.
        const bad = checkName(rule, `${m.generateName}abcde`);
        if (bad)
          ctx.addIssue({
            code: 'custom',
            path: ['generateName'],
            message: `invalid prefix "${m.generateName}": ${bad.replace(/^invalid name "[^"]*": /, '')}`,
          });
      }
      if (!namespaced && m.namespace !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['namespace'],
          message: `not allowed: ${kind} is cluster-scoped`,
        });
      checkCommon(m, ctx);
    })
    .transform((m) => withoutServerSideFields(m) as Meta & { name: string });
}

/** A pod template's metadata: only labels and annotations matter; no name rules. */
export function templateMeta() {
  return z
    .strictObject(metaFields())
    .superRefine((m, ctx) => checkCommon(m, ctx))
    .transform(withoutServerSideFields);
}
