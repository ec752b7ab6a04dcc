// kflex create
import { stringify } from 'yaml';
import { CONTROL_PLANE_CONSTRUCTS } from '../../control-plane-types';
import { applyObjects } from '../../kube/apply';
import { parseDuration } from '../../kube/args';
import { DEFAULT_KUBERNETES_MINOR, KUBERNETES_RELEASES } from '../../versions';
import { ALLOW_CLUSTER_SCOPED, CliError, Command, HOOK, parseSets, SET, TIMEOUT, usage } from '../context';
import { prepareNew } from '../hosting-access';
import { fetchKubeconfig, waitReady } from '../planes';

export const createCommand: Command = {
  synopsis: '<name> [flags]',
  description:
    'Creates a control plane, waits until it is Ready, merges its kubeconfig (context <name>) and switches to it.',
  flags: [
    { long: 'type', short: 't', kind: 'string', help: 'k8s, k3s, vcluster or host (default k8s)' },
    HOOK,
    SET,
    ALLOW_CLUSTER_SCOPED,
    TIMEOUT,
    { long: 'dry-run', kind: 'bool', help: 'print the manifests instead of applying them' },
    {
      long: 'kube-version',
      kind: 'string',
      help: `Kubernetes minor of a k8s control plane (${Object.keys(KUBERNETES_RELEASES).join(', ')}; default ${DEFAULT_KUBERNETES_MINOR})`,
    },
    {
      long: 'replicas',
      kind: 'string',
      help: 'API server and controller-manager replicas of a k8s control plane (1-5)',
    },
    {
      long: 'idle-timeout',
      kind: 'string',
      help: 'sleep after this long without a client request, wake on the next one (e.g. 30m; k8s, k3s, vcluster)',
    },
    {
      long: 'backend-type',
      short: 'b',
      kind: 'string',
      help: 'accepted for KubeFlex compatibility; only "shared" exists',
    },
  ],
  run: async (ctx, flags, args) => {
    if (args.length !== 1)
      throw usage(args.length ? `unexpected argument ${args[1]}` : 'the control plane name is required');
    const name = args[0];
    const type = (flags.type as string | undefined) ?? 'k8s';
    // Every type of the construct table but external (adopted with kflex adopt).
    const types = Object.keys(CONTROL_PLANE_CONSTRUCTS).filter((t) => t !== 'external');
    if (type === 'external') throw usage('--type external: use kflex adopt to bring an existing cluster in');
    if (!types.includes(type)) throw usage(`--type ${type} is not a control-plane type (one of ${types.join(', ')})`);
    if (flags['backend-type'] && flags['backend-type'] !== 'shared')
      throw usage(`--backend-type ${flags['backend-type']}: only "shared" is supported`);
    const timeout = parseDuration('timeout', flags.timeout ?? '10m');
    const vars = parseSets(flags.set);
    const k8sOnly: { kubernetesVersion?: string; replicas?: number } = {};
    if (flags['kube-version'] !== undefined) k8sOnly.kubernetesVersion = flags['kube-version'];
    if (flags.replicas !== undefined) {
      if (!/^\d+$/.test(flags.replicas)) throw usage(`--replicas ${flags.replicas}: must be a whole number`);
      k8sOnly.replicas = Number(flags.replicas);
    }
    if (type !== 'k8s' && Object.keys(k8sOnly).length)
      throw usage(`--kube-version and --replicas apply to --type k8s only, not ${type}`);
    const { kc, client, context, app, h, uses } = await prepareNew(
      ctx,
      name,
      flags['postcreate-hook'],
      vars,
      flags['allow-cluster-scoped'] === true,
    );
    // Construct errors (KubeflexConfigError) are printed by kflex's dispatcher, exit 1.
    const objects = CONTROL_PLANE_CONSTRUCTS[type as keyof typeof CONTROL_PLANE_CONSTRUCTS]({
      scope: app,
      name,
      common: { hosting: h, postCreateHooks: uses, idleTimeout: flags['idle-timeout'] as string | undefined },
      k8s: k8sOnly,
    }).toJson();
    if (flags['dry-run']) {
      ctx.io.out(objects.map((o) => stringify(o)).join('---\n'));
      return;
    }
    await applyObjects(client, objects, undefined, undefined, {
      clusterScoped: flags['allow-cluster-scoped'] === true ? 'any' : 'namespaces-only',
    });
    ctx.io.err(`control plane ${name} (${type}) applied to context ${context}\n`);
    const cp = await waitReady(ctx, client, name, timeout);
    if (!kc.hostingContext) kc.setHostingContext(context);
    if (type === 'host') {
      kc.currentContext = context;
      kc.save();
      ctx.io.out(
        `control plane ${name} is Ready; it is the hosting cluster itself, so the current context stays ${context}\n`,
      );
      return;
    }
    const minted = await fetchKubeconfig(client, cp);
    if (!minted) throw new CliError(`control plane ${name} is Ready but its status has no kubeconfig secretRef`);
    kc.mergeControlPlane(name, minted);
    kc.currentContext = name;
    kc.save();
    ctx.io.out(`control plane ${name} is Ready; current context is now ${name}\n`);
  },
};
