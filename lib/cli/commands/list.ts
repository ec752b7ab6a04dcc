// kflex list
import { paths } from '../../kube/client';
import { ControlPlaneObject } from '../../wire';
import { age, Command, table, usage } from '../context';
import { hosting, loadKubeconfig } from '../hosting-access';
import { condition } from '../planes';

export const listCommand: Command = {
  synopsis: '',
  description: 'Lists the control planes of the hosting cluster.',
  flags: [],
  run: async (ctx, _flags, args) => {
    if (args.length) throw usage(`unexpected argument ${args[0]}`);
    const kc = loadKubeconfig(ctx);
    const { client } = await hosting(ctx, kc);
    const items = (
      (await client.request<{ items?: ControlPlaneObject[] }>('GET', paths.controlPlanes)).items ?? []
    ).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    if (!items.length) {
      ctx.io.out('No control planes found.\n');
      return;
    }
    const rows = [['NAME', 'SYNCED', 'READY', 'TYPE', 'AGE']];
    for (const cp of items) {
      rows.push([
        cp.metadata.name,
        condition(cp, 'Synced')?.status ?? 'Unknown',
        // A sleeping plane is not Ready by design: say so instead of a bare False.
        condition(cp, 'Ready')?.reason === 'Sleeping' ? 'Sleeping' : (condition(cp, 'Ready')?.status ?? 'Unknown'),
        cp.spec?.type ?? '',
        age(cp.metadata.creationTimestamp),
      ]);
    }
    ctx.io.out(table(rows));
  },
};
