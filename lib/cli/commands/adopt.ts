// kflex adopt
import { ExternalControlPlane } from '../../external-control-plane';
import { applyObjects } from '../../kube/apply';
import { parseDuration } from '../../kube/args';
import { bootstrapSecretName, CONTROL_PLANE_LABEL, HOSTING_NAMESPACE } from '../../names';
import { ADMIN_KUBECONFIG_KEYS } from '../../wire';
import { ALLOW_CLUSTER_SCOPED, Command, HOOK, parseSets, SET, TIMEOUT, usage } from '../context';
import { checkUrlOverride, prepareNew, trimmedKubeconfig } from '../hosting-access';
import { waitReady } from '../planes';

export const adoptCommand: Command = {
  synopsis: '<name> [flags]',
  description:
    'Adopts an existing cluster as an external control plane: writes the bootstrap Secret <name>-bootstrap with a\ntrimmed kubeconfig of the chosen context, creates the ControlPlane, and waits until the controller has minted\nits own token there (the bootstrap Secret is then deleted).',
  flags: [
    {
      long: 'adopted-kubeconfig',
      short: 'a',
      kind: 'string',
      help: 'kubeconfig of the cluster to adopt (default: --kubeconfig)',
    },
    {
      long: 'adopted-context',
      short: 'c',
      kind: 'string',
      help: 'context of that kubeconfig (default: its current context)',
    },
    {
      long: 'url-override',
      short: 'u',
      kind: 'string',
      help: 'API server URL as reachable from the hosting cluster',
    },
    {
      long: 'expiration-seconds',
      short: 'x',
      kind: 'string',
      help: 'lifetime of the minted token (default 31536000; renewed at 80%)',
    },
    HOOK,
    SET,
    ALLOW_CLUSTER_SCOPED,
    TIMEOUT,
  ],
  run: async (ctx, flags, args) => {
    if (args.length !== 1)
      throw usage(args.length ? `unexpected argument ${args[1]}` : 'the control plane name is required');
    const name = args[0];
    const timeout = parseDuration('timeout', flags.timeout ?? '10m');
    const expiration = flags['expiration-seconds'] ?? '31536000';
    if (!/^\d+$/.test(expiration)) throw usage(`--expiration-seconds ${expiration} is not a whole number of seconds`);
    if (flags['url-override'] !== undefined) checkUrlOverride(flags['url-override']);
    const bootstrap = trimmedKubeconfig(
      flags['adopted-kubeconfig'] ?? ctx.file,
      flags['adopted-context'],
      flags['url-override'],
    );
    const { client, context, app, h, uses } = await prepareNew(
      ctx,
      name,
      flags['postcreate-hook'],
      parseSets(flags.set),
      flags['allow-cluster-scoped'] === true,
    );
    const objects = new ExternalControlPlane(app, name, {
      hosting: h,
      bootstrapSecret: { name: bootstrapSecretName(name) },
      tokenExpirationSeconds: Number(expiration),
      postCreateHooks: uses,
    }).toJson();
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: bootstrapSecretName(name),
        namespace: HOSTING_NAMESPACE,
        labels: { [CONTROL_PLANE_LABEL]: name },
      },
      data: { [ADMIN_KUBECONFIG_KEYS.inClusterKey]: Buffer.from(bootstrap.text).toString('base64') },
    };
    await applyObjects(client, [secret, ...objects], undefined, undefined, {
      clusterScoped: flags['allow-cluster-scoped'] === true ? 'any' : 'namespaces-only',
    });
    ctx.io.err(`control plane ${name} (external, ${bootstrap.server}) applied to context ${context}\n`);
    await waitReady(ctx, client, name, timeout);
    ctx.io.out(
      `control plane ${name} adopted and Ready; its kubeconfig is in Secret ${name}-system/admin-kubeconfig\n`,
    );
  },
};
