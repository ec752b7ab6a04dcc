// kflex wake
import { parseDuration } from '../../kube/args';
import { Command, TIMEOUT } from '../context';
import { setSleeping, sleepTarget, waitReady } from '../planes';

export const wakeCommand: Command = {
  synopsis: '<name> [flags]',
  description:
    'Wakes a sleeping control plane: scales its workloads back to the replicas they had (else one) and waits until it is Ready.',
  flags: [TIMEOUT],
  run: async (ctx, flags, args) => {
    const timeout = parseDuration('timeout', flags.timeout ?? '10m');
    const { client, name, cp } = await sleepTarget(ctx, args);
    await setSleeping(client, name, cp, false);
    await waitReady(ctx, client, name, timeout);
    ctx.io.out(`control plane ${name} is awake and Ready\n`);
  },
};
