// kflex version
import { BUILD_DATE, CliError, Command, KFLEX_VERSION, usage } from '../context';
import { hosting, loadKubeconfig } from '../hosting-access';

export const versionCommand: Command = {
  synopsis: '',
  description: 'Prints the kflex version and the Kubernetes version of the hosting cluster.',
  flags: [],
  run: async (ctx, _flags, args) => {
    if (args.length) throw usage(`unexpected argument ${args[0]}`);
    // KubeFlex's exact lines: scripts grep "^Kubeflex version:" and compare the version with a minimum.
    ctx.io.out(`Kubeflex version: ${KFLEX_VERSION} ${BUILD_DATE}\n`);
    try {
      const kc = loadKubeconfig(ctx);
      const { client } = await hosting(ctx, kc);
      const v = await client.request<any>('GET', '/version');
      ctx.io.out(`Kubernetes version: ${v.gitVersion}\n`);
    } catch (e) {
      ctx.io.out(`Could not connect to a Kubernetes cluster: ${(e as Error).message}\n`);
      throw new CliError('', 1);
    }
  },
};
