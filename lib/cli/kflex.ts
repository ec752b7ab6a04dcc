#!/usr/bin/env node
// kflex: KubeFlex's command line on our constructs. Objects are synthesized in memory with the same constructs a
// platform team uses and server-side applied with one field manager; the runtime controller does the rest.
import { KubeflexConfigError } from '../errors';
import { ClusterScopedError, NamespaceTakenError } from '../kube/apply';
import { UsageError } from '../kube/args';
import { ApiError } from '../kube/client';
import { adoptCommand } from './commands/adopt';
import { configCommand } from './commands/config';
import { createCommand } from './commands/create';
import { ctxCommand } from './commands/ctx';
import { deleteCommand } from './commands/delete';
import { initCommand } from './commands/init';
import { listCommand } from './commands/list';
import { sleepCommand } from './commands/sleep';
import { versionCommand } from './commands/version';
import { wakeCommand } from './commands/wake';
import { BUILD_DATE, CliError, Command, helpText, Io, KFLEX_VERSION, parseArgs, usage } from './context';
import { kubeconfigPath } from './kubeconfig-file';

export { CliError, Io, KFLEX_VERSION } from './context';
export { checkUrlOverride } from './hosting-access';

const COMMANDS: Record<string, Command> = {
  init: initCommand,
  create: createCommand,
  delete: deleteCommand,
  list: listCommand,
  sleep: sleepCommand,
  wake: wakeCommand,
  ctx: ctxCommand,
  adopt: adoptCommand,
  config: configCommand,
  version: versionCommand,
};

const TOP_HELP = `kflex: KubeFlex control planes on cdk8s-kubeflex constructs

Usage: kflex <command> [flags]

Commands:
${Object.entries(COMMANDS)
  .map(([n, c]) => `  ${n.padEnd(9)} ${c.description.split('\n')[0].split('. ')[0].replace(/\.$/, '')}`)
  .join('\n')}

Run kflex <command> --help for a command's flags.
`;

/** Runs kflex; returns the exit code (0 ok, 1 failure, 2 usage). */
export async function kflex(argv: string[], io: Io): Promise<number> {
  try {
    const [name, ...rest] = argv;
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      io.out(TOP_HELP);
      return name ? 0 : 2;
    }
    if (name === '--version') {
      io.out(`Kubeflex version: ${KFLEX_VERSION} ${BUILD_DATE}\n`);
      return 0;
    }
    const cmd = COMMANDS[name];
    if (!cmd) throw usage(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    const { flags, args } = parseArgs(rest, cmd.flags);
    if (flags.verbosity !== undefined && !/^\d+$/.test(flags.verbosity))
      throw usage(`--verbosity ${flags.verbosity} is not a non-negative integer`);
    if (flags.help) {
      io.out(helpText(name, cmd.synopsis, cmd.description, cmd.flags));
      return 0;
    }
    await cmd.run({ io, file: kubeconfigPath(flags.kubeconfig) }, flags, args);
    return 0;
  } catch (e) {
    if (e instanceof CliError) {
      if (e.message) io.err(`Error: ${e.message}\n`);
      return e.code;
    }
    // A bad duration or other flag value from the parsers shared with the controller: a usage error.
    if (e instanceof UsageError) {
      io.err(`Error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof KubeflexConfigError) {
      io.err(`Error: ${e.message}\n`);
      return 1;
    }
    if (e instanceof NamespaceTakenError || e instanceof ClusterScopedError) {
      io.err(`Error: ${e.message}\n`);
      return 1;
    }
    if (e instanceof ApiError) {
      io.err(`Error: the API server refused a request: ${e.message}\n`);
      return 1;
    }
    if (e instanceof Error && /ECONNREFUSED|ETIMEDOUT|ENOTFOUND|timed out|EHOSTUNREACH|certificate/.test(e.message)) {
      io.err(`Error: cannot reach the cluster: ${e.message}\n`);
      return 1;
    }
    io.err(`Error: internal error (please report): ${e instanceof Error ? e.stack : String(e)}\n`);
    return 70;
  }
}

if (require.main === module) {
  const io: Io = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    ask: process.stdin.isTTY
      ? (q) =>
          new Promise((resolve) => {
            process.stderr.write(q);
            process.stdin.once('data', (d) => resolve(String(d)));
          })
      : undefined,
  };
  void kflex(process.argv.slice(2), io).then((code) => process.exit(code));
}
