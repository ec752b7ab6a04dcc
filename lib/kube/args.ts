// Flag parsing shared by the controller, the materializer and kflex: durations, `--name=value` or `--name value`,
// repeatable flags.

/** A command-line mistake; printed as one line with exit code 2, never as a stack trace. */
export class UsageError extends Error {}

/** Parses `--flag=value` / `--flag value` / `--bool`; `repeatable` flags collect into arrays. */
export function parseFlags(
  argv: string[],
  spec: { strings: string[]; booleans?: string[]; repeatable?: string[] },
): { flags: Record<string, string | boolean | string[]>; positional: string[] } {
  const flags: Record<string, string | boolean | string[]> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (spec.booleans?.includes(name)) {
      flags[name] = eq < 0 ? true : a.slice(eq + 1) !== 'false';
      continue;
    }
    if (!spec.strings.includes(name) && !spec.repeatable?.includes(name))
      throw new UsageError(`unknown flag --${name}`);
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i];
    else throw new UsageError(`flag --${name} needs a value`);
    if (spec.repeatable?.includes(name)) flags[name] = [...((flags[name] as string[]) ?? []), value];
    else flags[name] = value;
  }
  return { flags, positional };
}

/** Parses a duration such as `500ms`, `15s`, `5m`, `8760h`, `30d` into milliseconds. */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  if (!m) throw new UsageError(`--${flag}=${value} is not a duration (use e.g. 500ms, 15s, 5m, 8760h, 30d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms']!;
  return Number(m[1]) * unit;
}

/** Parses repeated `host:port=address:port` values. */
export function parseConnectTo(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const m = /^([^=]+:\d+)=([^=]+:\d+)$/.exec(v);
    if (!m) throw new UsageError(`--connect-to=${v} must look like host:port=address:port`);
    out[m[1]] = m[2];
  }
  return out;
}
