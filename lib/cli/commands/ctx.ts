// kflex ctx
import { paths } from '../../kube/client';
import { ControlPlaneObject } from '../../wire';
import { CliError, Command, table, usage } from '../context';
import { hosting, loadKubeconfig } from '../hosting-access';
import { CP_NAME_KEY, KubeconfigFileError } from '../kubeconfig-file';
import { fetchKubeconfig } from '../planes';

export const ctxCommand: Command = {
  synopsis: '[name | get | list | rename OLD NEW | delete CONTEXT] [flags]',
  description:
    'Switches contexts. Without a name: to the hosting context (or, with -c, records the current context as the\nhosting one). With a name: to that control plane, fetching its kubeconfig from the hosting cluster if needed.',
  flags: [
    {
      long: 'overwrite-existing-context',
      short: 'o',
      kind: 'bool',
      help: 'fetch the kubeconfig again even if the context exists',
    },
    {
      long: 'set-current-for-hosting',
      short: 'c',
      kind: 'bool',
      help: 'record the current context as the hosting context',
    },
    { long: 'switch', short: 'S', kind: 'bool', help: 'rename: switch to the new name' },
    { long: 'force', short: 'f', kind: 'bool', help: 'delete: do not ask for contexts kflex does not manage' },
  ],
  run: async (ctx, flags, args) => {
    const kc = loadKubeconfig(ctx);
    const [sub, ...rest] = args;
    if (sub === 'get') {
      ctx.io.out(`${kc.currentContext ?? ''}\n`);
      return;
    }
    if (sub === 'list') {
      const rows = [['CONTEXT', 'MANAGED BY KFLEX', 'CONTROLPLANE']];
      for (const c of kc.contexts) {
        const cp = c.kubeflex[CP_NAME_KEY];
        rows.push([
          `${c.name === kc.currentContext ? '*' : ' '} ${c.name}`,
          cp ? 'yes' : c.kubeflex['is-hosting-cluster-ctx'] ? 'hosting' : 'no',
          cp ?? '',
        ]);
      }
      ctx.io.out(table(rows));
      return;
    }
    if (sub === 'rename') {
      if (rest.length !== 2) throw usage('ctx rename needs OLD and NEW');
      try {
        kc.rename(rest[0], rest[1]);
      } catch (e) {
        if (e instanceof KubeconfigFileError) throw new CliError(e.message);
        throw e;
      }
      if (flags.switch) kc.currentContext = rest[1];
      else if (kc.currentContext === rest[1] && kc.hostingContext && kc.hostingContext !== rest[1])
        kc.currentContext = kc.hostingContext;
      kc.save();
      ctx.io.out(`context ${rest[0]} renamed to ${rest[1]}; current context is ${kc.currentContext}\n`);
      return;
    }
    if (sub === 'delete') {
      if (rest.length !== 1) throw usage('ctx delete needs a context name');
      const c = kc.contexts.find((x) => x.name === rest[0]);
      if (!c) throw new CliError(`context ${rest[0]} not found in ${ctx.file}`);
      if (!c.kubeflex[CP_NAME_KEY] && !flags.force) {
        const answer = ctx.io.ask
          ? await ctx.io.ask(`context ${rest[0]} is not managed by kflex; delete it? [y/N] `)
          : undefined;
        if (answer === undefined)
          throw new CliError(`context ${rest[0]} is not managed by kflex; use --force to delete it anyway`);
        if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('not deleted');
      }
      const wasCurrent = kc.currentContext === rest[0];
      kc.removeControlPlane(rest[0]);
      if (wasCurrent) kc.currentContext = kc.hostingContext;
      kc.save();
      ctx.io.out(
        `context ${rest[0]} deleted${wasCurrent ? `; current context is ${kc.currentContext ?? 'unset'}` : ''}\n`,
      );
      return;
    }
    if (rest.length) throw usage(`unexpected argument ${rest[0]}`);
    if (!sub) {
      if (flags['set-current-for-hosting']) {
        const cur = kc.currentContext;
        if (!cur || !kc.isUsable(cur))
          throw new CliError('there is no usable current context to record as the hosting context');
        kc.setHostingContext(cur);
        kc.save();
        ctx.io.out(`hosting context is now ${cur}\n`);
        return;
      }
      const { context } = await hosting(ctx, kc);
      if (!kc.hostingContext) kc.setHostingContext(context);
      kc.currentContext = context;
      kc.save();
      ctx.io.out(`switched to hosting context ${context}\n`);
      return;
    }
    const name = sub;
    if (flags['overwrite-existing-context']) kc.removeControlPlane(name);
    if (kc.hasContext(name)) {
      kc.currentContext = name;
      kc.save();
      ctx.io.out(`switched to context ${name}\n`);
      return;
    }
    const { client, context } = await hosting(ctx, kc);
    const cp = await client.get<ControlPlaneObject>(paths.controlPlane(name));
    if (!cp)
      throw new CliError(
        `control plane ${name} not found on the hosting cluster (context ${context}) and no local context ${name} exists`,
      );
    if (cp.spec?.type === 'host') {
      kc.currentContext = context;
      kc.save();
      ctx.io.out(`control plane ${name} is the hosting cluster; switched to ${context}\n`);
      return;
    }
    const minted = await fetchKubeconfig(client, cp);
    if (!minted)
      throw new CliError(`control plane ${name} has no off-cluster kubeconfig yet (status.secretRef.key is unset)`);
    kc.mergeControlPlane(name, minted);
    kc.currentContext = name;
    kc.save();
    ctx.io.out(`switched to context ${name}\n`);
  },
};
