// kflex delete
import { deleteByLabel } from '../../kube/apply';
import { parseDuration } from '../../kube/args';
import { paths, sleep } from '../../kube/client';
import { CONTROL_PLANE_LABEL } from '../../names';
import { ControlPlaneObject } from '../../wire';
import { CliError, Command, DELETE_TIMEOUT, TIMEOUT, usage } from '../context';
import { hosting, loadKubeconfig } from '../hosting-access';

export const deleteCommand: Command = {
  synopsis: '<name> [flags]',
  description:
    'Deletes a control plane and every object applied for it (found by label, so nothing is orphaned), waits until\nits namespace is gone, removes its local context and switches to the hosting context.',
  flags: [{ ...TIMEOUT, help: `how long to wait (e.g. 90s, 10m; default ${DELETE_TIMEOUT})` }],
  run: async (ctx, flags, args) => {
    if (args.length !== 1)
      throw usage(args.length ? `unexpected argument ${args[1]}` : 'the control plane name is required');
    const name = args[0];
    const timeout = parseDuration('timeout', flags.timeout ?? DELETE_TIMEOUT);
    const kc = loadKubeconfig(ctx);
    const { client, context } = await hosting(ctx, kc);
    const cp = await client.get<ControlPlaneObject>(paths.controlPlane(name));
    if (!cp) throw new CliError(`control plane ${name} not found on the hosting cluster (context ${context})`);
    await client.deleteIfPresent(`${paths.controlPlane(name)}?propagationPolicy=Background`);
    const deleted = await deleteByLabel(client, CONTROL_PLANE_LABEL, name);
    ctx.io.err(`deleting control plane ${name}${deleted.length ? ` and ${deleted.join(', ')}` : ''}\n`);
    const ns = `${name}-system`;
    const deadline = Date.now() + timeout;
    for (;;) {
      const [left, nsLeft] = await Promise.all([
        client.get<ControlPlaneObject>(paths.controlPlane(name)),
        client.get<any>(paths.namespace(ns)),
      ]);
      if (!left && !nsLeft) break;
      if (Date.now() > deadline) {
        // KubeFlex #461: say what is stuck instead of hanging.
        const why = left
          ? `ControlPlane ${name} still has finalizers ${JSON.stringify(left.metadata.finalizers ?? [])} (is the kubeflex controller running?)`
          : `namespace ${ns} is ${nsLeft.status?.phase ?? 'present'}${(nsLeft.status?.conditions ?? [])
              .filter((c: any) => c.status === 'True')
              .map((c: any) => `; ${c.type}: ${c.message}`)
              .join('')}`;
        throw new CliError(`timed out after ${timeout / 1000}s deleting control plane ${name}: ${why}`);
      }
      await sleep(500);
    }
    kc.removeControlPlane(name);
    kc.currentContext = context;
    kc.save();
    ctx.io.out(`control plane ${name} deleted; current context is ${context}\n`);
  },
};
