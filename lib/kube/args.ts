// Flag parsing shared by the controller, the materializer and kflex: durations, `--name=value` or `--name value`,
// repeatable flags.

/** A command-line mistake; printed as one line with exit code 2, never as a stack trace. */
export class UsageError extends Error {}

/** One flag of a command: `--long`, optionally `-s`; a string, a boolean, or a repeatable list. */
export interface FlagSpec {
  readonly long: string;
  readonly short?: string;
  readonly kind: 'string' | 'bool' | 'list';
  /** One line for --help. @default - none */
  readonly help?: string;
}

/**
 * The one argv parser of the controller, the materializer and kflex: `--flag=value`, `--flag value`, `-f value`,
 * `--bool` (or `--bool=false`), repeatable list flags, `--` ends the flags. An unknown flag or a missing value is a
 * UsageError.
 */
export function parseArgv(argv: string[], specs: FlagSpec[]): { flags: Record<string, any>; args: string[] } {
  const flags: Record<string, any> = {};
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      args.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = eq < 0 ? a : a.slice(0, eq);
    const spec = key.startsWith('--')
      ? specs.find((s) => s.long === key.slice(2))
      : specs.find((s) => s.short !== undefined && s.short === key.slice(1));
    if (!spec) throw new UsageError(`unknown flag ${key}`);
    if (spec.kind === 'bool') {
      flags[spec.long] = eq < 0 ? true : a.slice(eq + 1) !== 'false';
      continue;
    }
    let value: string;
    if (eq >= 0) value = a.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i];
    else throw new UsageError(`flag ${key} needs a value`);
    if (spec.kind === 'list') flags[spec.long] = [...(flags[spec.long] ?? []), value];
    else flags[spec.long] = value;
  }
  return { flags, args };
}

/** parseArgv for commands that name their flags by kind (the controller's and the materializer's). */
export function parseFlags(
  argv: string[],
  spec: { strings: string[]; booleans?: string[]; repeatable?: string[] },
): { flags: Record<string, string | boolean | string[]>; positional: string[] } {
  const specs: FlagSpec[] = [
    ...spec.strings.map((long) => ({ long, kind: 'string' as const })),
    ...(spec.booleans ?? []).map((long) => ({ long, kind: 'bool' as const })),
    ...(spec.repeatable ?? []).map((long) => ({ long, kind: 'list' as const })),
  ];
  const { flags, args } = parseArgv(argv, specs);
  return { flags, positional: args };
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
