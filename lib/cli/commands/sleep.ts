// `kflex sleep`: one command of kflex, dispatched by lib/cli/kflex.ts.
import { Command } from '../context';
import { setSleeping, sleepTarget } from '../planes';

export const sleepCommand: Command = {
  synopsis: '<name>',
  description:
    'Puts a control plane to sleep: scales its workloads to zero (its data stays in PostgreSQL or its volume) and\nmarks it, so the controller reports Ready=False/Sleeping. k8s, k3s and vcluster planes.',
  flags: [],
  run: async (ctx, _flags, args) => {
    const { client, name, cp } = await sleepTarget(ctx, args);
    await setSleeping(client, name, cp, true);
    ctx.io.out(`control plane ${name} is asleep\n`);
  },
};
