// Free of cdk8s: the controller loads this file (test/controller-core.test.ts checks it loads no cdk8s at all).
import { DNS1123_LABEL, isDnsSubdomain } from './api-validation';

/**
 * Error thrown for bad construct input. The message always names the construct, the prop and the bad value,
 * so a platform team can fix its code without reading ours.
 */
export class KubeflexConfigError extends Error {
  public constructor(
    public readonly construct: string,
    public readonly prop: string,
    public readonly value: unknown,
    public readonly reason: string,
  ) {
    super(`${construct}: invalid ${prop} ${formatValue(value)}: ${reason}`);
    this.name = 'KubeflexConfigError';
  }
}

function formatValue(value: unknown): string {
  if (value === undefined) return '(not set)';
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Throws unless `value` is an integer within [min, max]. */
export function checkInteger(construct: string, prop: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new KubeflexConfigError(construct, prop, value, `must be an integer from ${min} to ${max}`);
  }
}

/** Throws unless `value` is a storage size such as "1Gi": a positive whole number of Mi, Gi or Ti. */
export function checkStorageSize(construct: string, prop: string, value: string): void {
  if (!/^([1-9][0-9]*)(Mi|Gi|Ti)$/.test(value)) {
    throw new KubeflexConfigError(
      construct,
      prop,
      value,
      'must be a positive whole number of Mi, Gi or Ti, such as "1Gi"',
    );
  }
}

/** Throws unless `value` is a DNS-1123 label of at most `max` characters. */
export function checkDnsLabel(construct: string, prop: string, value: string, max = 63): void {
  if (typeof value !== 'string' || !DNS1123_LABEL.test(value)) {
    throw new KubeflexConfigError(
      construct,
      prop,
      value,
      "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit",
    );
  }
  if (value.length > max) {
    throw new KubeflexConfigError(construct, prop, value, `must be at most ${max} characters (is ${value.length})`);
  }
}

/** Throws unless `value` is a DNS-1123 subdomain (e.g. a domain name) of at most 253 characters. */
export function checkDnsSubdomain(construct: string, prop: string, value: string): void {
  if (typeof value !== 'string' || !isDnsSubdomain(value)) {
    throw new KubeflexConfigError(
      construct,
      prop,
      value,
      'must be a lowercase DNS-1123 subdomain of at most 253 characters',
    );
  }
}
