// kflex's shell: errors, flag parsing, help text, the command shape and shared flags, output. The hosting cluster and
// kubeconfig helpers are in hosting-access.ts, one plane's steps in planes.ts.
import * as fs from 'fs';
import * as path from 'path';
import { parseArgv, FlagSpec as KubeFlagSpec } from '../kube/args';
import { KUBEFLEX_COMPATIBLE_VERSION } from '../versions';

/** Our package.json, read at run time: the nearest one above this file (build/lib/cli or lib/cli under ts-node). */
function ownPackage(): { version: string; releaseDate?: string } {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (pkg.name === 'cdk8s-kubeflex') return pkg;
    }
    if (path.dirname(dir) === dir) return { version: '0.0.0' };
  }
}
export const PACKAGE = ownPackage();
export const VERSION = PACKAGE.version;
/**
 * What `kflex version` reports: the KubeFlex release whose wire contract and CLI this kflex implements, with our own
 * version as semver build metadata (scripts such as KubeStellar's check a minimum KubeFlex version).
 */
export const KFLEX_VERSION = `${KUBEFLEX_COMPATIBLE_VERSION}+cdk8s-kubeflex.${VERSION}`;
/** KubeFlex prints its build date; ours is the package's release, fixed so output is reproducible. */
export const BUILD_DATE = PACKAGE.releaseDate ?? 'unknown';

/** A user-facing failure: printed as one line, never with a stack trace. */
export class CliError extends Error {
  public constructor(
    message: string,
    public readonly code = 1,
  ) {
    super(message);
  }
}
export const usage = (msg: string) => new CliError(msg, 2);

/** The full path of an executable on PATH, or undefined. */
export function onPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const f = `${dir}/${bin}`;
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Where kflex writes; tests pass their own. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
  /** Answers a y/N question; undefined when there is no terminal to ask on. */
  ask?(question: string): Promise<string>;
}

// ---- Flags ---------------------------------------------------------------------------------------------------------

export type FlagSpec = KubeFlagSpec & { readonly help: string };

export const GLOBAL: FlagSpec[] = [
  {
    long: 'kubeconfig',
    short: 'k',
    kind: 'string',
    help: 'kubeconfig file (default: first $KUBECONFIG entry, then ~/.kube/config)',
  },
  { long: 'help', short: 'h', kind: 'bool', help: 'help for this command' },
  // KubeFlex's global flags, accepted so its scripts run unchanged (this kflex prints no spinner either way).
  { long: 'chatty-status', short: 's', kind: 'bool', help: 'KubeFlex compatibility: spinner output (default true)' },
  { long: 'verbosity', short: 'v', kind: 'string', help: 'log verbosity, an integer (default 0)' },
];

/** A command's flags plus the global ones, through the one argv parser (lib/kube/args.ts). */
export function parseArgs(argv: string[], specs: FlagSpec[]): { flags: Record<string, any>; args: string[] } {
  return parseArgv(argv, [...specs, ...GLOBAL]);
}

export function helpText(cmd: string, synopsis: string, description: string, specs: FlagSpec[]): string {
  const lines = [...specs, ...GLOBAL].map(
    (s) => `  ${s.short ? `-${s.short}, ` : '    '}--${s.long.padEnd(22)} ${s.help}`,
  );
  return `Usage: kflex ${cmd} ${synopsis}\n\n${description}\n\nFlags:\n${lines.join('\n')}\n`;
}

// ---- Shared steps ----------------------------------------------------------------------------------------------------

export interface Ctx {
  io: Io;
  file: string;
}

export function parseSets(values: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw usage(`--set ${v}: expected name=value`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

export function age(ts: string | undefined): string {
  if (!ts) return '<unknown>';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] + 3)))
          .join('')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

// ---- Commands --------------------------------------------------------------------------------------------------------

export type Command = {
  synopsis: string;
  description: string;
  flags: FlagSpec[];
  run: (ctx: Ctx, flags: Record<string, any>, args: string[]) => Promise<void>;
};

export const DELETE_TIMEOUT = '5m';
export const TIMEOUT: FlagSpec = {
  long: 'timeout',
  kind: 'string',
  help: 'how long to wait (e.g. 90s, 10m; default 10m)',
};
export const HOOK: FlagSpec = {
  long: 'postcreate-hook',
  short: 'p',
  kind: 'list',
  help: 'PostCreateHook to run (repeatable; must exist)',
};
export const SET: FlagSpec = { long: 'set', short: 'e', kind: 'list', help: 'hook variable name=value (repeatable)' };
export const ALLOW_CLUSTER_SCOPED: FlagSpec = {
  long: 'allow-cluster-scoped',
  kind: 'bool',
  help: 'apply cluster-scoped objects of the hooks (ClusterRoleBinding, CRDs...) to the hosting cluster',
};
