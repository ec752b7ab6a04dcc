// kflex init
import { App } from 'cdk8s';
import { stringify } from 'yaml';
import { KubeflexConfigError } from '../../errors';
import { KubeflexHosting } from '../../hosting';
import { applyObjects } from '../../kube/apply';
import { sleep } from '../../kube/client';
import { CliError, Command, onPath, usage } from '../context';
import { clientFor, loadKubeconfig, servesControlPlanes } from '../hosting-access';

export const initCommand: Command = {
  synopsis: '[cluster-name] [flags]',
  description:
    'Installs the hosting components (CRDs, kubeflex-config, runtime controller, PostgreSQL) into the current\ncontext by server-side apply, and records that context as the hosting context.',
  flags: [
    { long: 'domain', short: 'd', kind: 'string', help: 'domain of control-plane host names (default localtest.me)' },
    { long: 'external-port', short: 'p', kind: 'string', help: 'external port of the ingress (default 9443)' },
    {
      long: 'host-container-name',
      short: 'n',
      kind: 'string',
      help: 'host container name added to certificate SANs',
    },
    { long: 'ingress-class', kind: 'string', help: 'ingress class with SSL passthrough (default nginx)' },
    { long: 'controller-image', kind: 'string', help: 'runtime controller image' },
    { long: 'no-postgres', kind: 'bool', help: 'do not install PostgreSQL (no k8s-type control planes)' },
    { long: 'create-kind', short: 'c', kind: 'bool', help: 'not supported: create the cluster first' },
    { long: 'dry-run', kind: 'bool', help: 'print the manifests instead of applying them' },
  ],
  run: async (ctx, flags, args) => {
    if (args.length > 1) throw usage(`unexpected argument ${args[1]}`);
    if (flags['create-kind']) {
      // KubeFlex creates a kind cluster named by the argument (default kind-kubeflex); this kflex does not.
      const clusterName = args[0] ?? 'kind-kubeflex';
      const kind = onPath('kind');
      throw new CliError(
        `--create-kind: ${kind ? `found ${kind}, but this kflex does not create kind clusters` : 'kind cannot run here: no kind binary on PATH (it also needs a container engine such as Docker)'}; ` +
          `create the cluster first (e.g. kind create cluster --name ${clusterName}), then run kflex init in its context`,
      );
    }
    const kc = loadKubeconfig(ctx);
    const context = kc.currentContext;
    if (!context || !kc.isUsable(context))
      throw new CliError(
        `the current context of ${ctx.file} is not set or has no server: choose the hosting cluster with kubectl config use-context`,
      );
    const client = clientFor(ctx, context);
    let isOpenShift = false;
    try {
      isOpenShift = !!(await client.get('/apis/project.openshift.io/v1'));
    } catch (e) {
      throw new CliError(`cannot reach the cluster of context ${context} at ${client.server}: ${(e as Error).message}`);
    }
    let objects: any[];
    try {
      const app = new App({ outdir: '/nonexistent' });
      const port = flags['external-port'];
      if (port !== undefined && !/^\d+$/.test(port)) throw usage(`--external-port ${port} is not a port number`);
      const h = new KubeflexHosting(app, 'hosting', {
        domain: flags.domain,
        externalPort: port === undefined ? undefined : Number(port),
        hostContainer: flags['host-container-name'],
        ingressClassName: flags['ingress-class'],
        controllerImage: flags['controller-image'],
        installPostgres: flags['no-postgres'] ? false : undefined,
        isOpenShift,
      });
      objects = h.toJson();
    } catch (e) {
      if (e instanceof KubeflexConfigError) throw new CliError(e.message);
      throw e;
    }
    if (flags['dry-run']) {
      ctx.io.out(objects.map((o) => stringify(o)).join('---\n'));
      return;
    }
    await applyObjects(client, objects);
    // Established CRDs reach discovery a moment later; later commands find the hosting cluster through it.
    for (let i = 0; i < 100 && !(await servesControlPlanes(client)); i++) await sleep(200);
    kc.setHostingContext(context);
    kc.save();
    ctx.io.out(
      `Hosting components applied to context ${context} (${client.server})${isOpenShift ? ', OpenShift detected' : ''}; ${context} is the hosting context.\n`,
    );
  },
};
