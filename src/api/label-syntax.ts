/**
 * The syntax of label keys and values, as Kubernetes' apimachinery checks it
 * (`IsQualifiedName`, `IsValidLabelValue`). Each check returns the reason the
 * text is invalid, in Kubernetes' wording so its docs still apply, or
 * undefined when it is valid. The checks return the first problem only.
 */

/** Lengths are in UTF-16 units; anything that is not ASCII fails the patterns anyway. */
const MAX_PREFIX_LENGTH = 253;
const MAX_NAME_LENGTH = 63;
const MAX_VALUE_LENGTH = 63;

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A label key: `[prefix/]name`, the prefix a DNS-1123 subdomain, e.g. `app.kubernetes.io/name`. */
export function labelKeyError(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2)
    return "a qualified name must consist of an optional DNS subdomain prefix and '/' followed by a name";
  if (parts.length === 2) {
    const prefix = parts[0];
    if (prefix === '') return 'prefix part must be non-empty';
    if (prefix.length > MAX_PREFIX_LENGTH)
      return `prefix part must be no more than ${MAX_PREFIX_LENGTH} characters`;
    if (!DNS1123_SUBDOMAIN.test(prefix))
      return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  }
  const name = parts[parts.length - 1];
  if (name === '') return 'name part must be non-empty';
  if (name.length > MAX_NAME_LENGTH)
    return `name part must be no more than ${MAX_NAME_LENGTH} characters`;
  if (!NAME.test(name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

/** A label value: empty, or up to 63 of `[A-Za-z0-9-_.]` beginning and ending with an alphanumeric. */
export function labelValueError(value: string): string | undefined {
  if (value.length > MAX_VALUE_LENGTH) return `must be no more than ${MAX_VALUE_LENGTH} characters`;
  if (!VALUE.test(value))
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}
