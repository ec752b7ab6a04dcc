// kflex config
import { CliError, Command, usage } from '../context';
import { loadKubeconfig } from '../hosting-access';
import { CP_NAME_KEY } from '../kubeconfig-file';

export const configCommand: Command = {
  synopsis: 'set-hosting CONTEXT | diagnose [-o json]',
  description:
    'Manages the kubeflex extension of the kubeconfig: set-hosting records CONTEXT as the hosting context; diagnose\nreports whether the stored hosting context is usable, as JSON {status: ok|warning|critical, message, data}.',
  flags: [{ long: 'output', short: 'o', kind: 'string', help: 'diagnose output format (only json)' }],
  run: async (ctx, flags, args) => {
    const kc = loadKubeconfig(ctx);
    const [sub, ...rest] = args;
    if (sub === 'set-hosting') {
      if (rest.length !== 1) throw usage('config set-hosting needs a context name');
      if (!kc.hasContext(rest[0])) throw new CliError(`context ${rest[0]} not found in ${ctx.file}`);
      kc.setHostingContext(rest[0]);
      kc.save();
      ctx.io.out(`hosting context is now ${rest[0]}\n`);
      return;
    }
    if (sub === 'diagnose') {
      if (rest.length) throw usage(`unexpected argument ${rest[0]}`);
      if ((flags.output ?? 'json') !== 'json') throw usage(`--output ${flags.output}: only json is supported`);
      const stored = kc.storedHostingContext;
      const usable = kc.hostingContext;
      const data = {
        file: ctx.file,
        storedHostingContext: stored ?? null,
        hostingContext: usable ?? null,
        controlPlaneContexts: kc.contexts.filter((c) => c.kubeflex[CP_NAME_KEY]).map((c) => c.name),
      };
      const [status, message] = !usable
        ? [
            'critical',
            stored ? `stored hosting context "${stored}" is missing or has no server` : 'no hosting context is stored',
          ]
        : usable !== stored
          ? [
              'warning',
              `the stored hosting context is ${stored ? `"${stored}", which is not usable` : 'missing'}; using "${usable}", marked as hosting`,
            ]
          : ['ok', `hosting context "${usable}" is usable`];
      ctx.io.out(JSON.stringify({ status, message, data }, null, 2) + '\n');
      if (status === 'critical') throw new CliError(message);
      return;
    }
    throw usage(
      sub
        ? `unknown config subcommand ${sub} (set-hosting, diagnose)`
        : 'config needs a subcommand (set-hosting, diagnose)',
    );
  },
};
