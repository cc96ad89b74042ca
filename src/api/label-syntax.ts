/**
 * The syntax of label keys and values, as Kubernetes' apimachinery checks it
 * (`IsQualifiedName`, `IsValidLabelValue`). Each check returns the reason the
 * text is invalid, in Kubernetes' wording, or undefined when it is valid.
 * The rules themselves live with the other name rules in `schema/names.ts`.
 */
import { labelValue, qualifiedName } from './schema/names';

/** A label key: `[prefix/]name`, the prefix a DNS-1123 subdomain, e.g. `app.kubernetes.io/name`. */
export function labelKeyError(key: string): string | undefined {
  return qualifiedName(key);
}

/** A label value: empty, or up to 63 of `[A-Za-z0-9-_.]` beginning and ending with an alphanumeric. */
export function labelValueError(value: string): string | undefined {
  return labelValue(value);
}
