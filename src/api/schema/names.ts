/**
 * The name and key rules of Kubernetes (apimachinery's validation package).
 * Each check returns the reason a value is invalid, or undefined when it is
 * valid; the messages follow Kubernetes' wording so its docs still apply.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const IANA_SVC_NAME = /^[-a-z0-9]+$/;

export function dns1123Label(s: string): string | undefined {
  if (s.length > 63) return 'must be no more than 63 characters';
  if (!DNS1123_LABEL.test(s))
    return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
  return undefined;
}

export function dns1123Subdomain(s: string): string | undefined {
  if (s.length > 253) return 'must be no more than 253 characters';
  if (!DNS1123_SUBDOMAIN.test(s))
    return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

/** A label key, annotation key or resource name: `[prefix/]name`, prefix a DNS subdomain. */
export function qualifiedName(s: string): string | undefined {
  const parts = s.split('/');
  if (parts.length > 2)
    return "a qualified name must consist of an optional DNS subdomain prefix and '/' followed by a name";
  const name = parts[parts.length - 1];
  if (parts.length === 2) {
    if (parts[0] === '') return 'prefix part must be non-empty';
    const bad = dns1123Subdomain(parts[0]);
    if (bad) return `prefix part ${bad}`;
  }
  if (name === '') return 'name part must be non-empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  if (!QUALIFIED_NAME.test(name))
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

export function labelValue(s: string): string | undefined {
  if (s.length > 63) return 'must be no more than 63 characters';
  if (!LABEL_VALUE.test(s))
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
  return undefined;
}

/** A ConfigMap or Secret key (also a file name when mounted). */
export function configKey(s: string): string | undefined {
  if (s.length > 253) return 'must be no more than 253 characters';
  if (!CONFIG_KEY.test(s))
    return "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
  if (s === '.' || s === '..' || s.startsWith('..'))
    return "must not be '.' or '..' or start with '..'";
  return undefined;
}

/** A named port (container ports, targetPort by name): an IANA service name. */
export function ianaSvcName(s: string): string | undefined {
  if (s.length > 15) return 'must be no more than 15 characters';
  if (!IANA_SVC_NAME.test(s)) return "must contain only lower-case alphanumeric characters and '-'";
  if (s.includes('--')) return "must not contain consecutive hyphens ('--')";
  if (s.startsWith('-') || s.endsWith('-')) return "must not begin or end with a hyphen ('-')";
  if (!/[a-z]/.test(s)) return 'must contain at least one letter';
  return undefined;
}

/** An environment variable name: any printable ASCII except '=' (Kubernetes >= 1.30). */
export function envVarName(s: string): string | undefined {
  if (s === '') return 'must be non-empty';
  if (!/^[\x20-\x7e]+$/.test(s) || s.includes('='))
    return "must consist of printable ASCII characters except '='";
  return undefined;
}
