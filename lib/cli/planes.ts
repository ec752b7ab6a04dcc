// kflex: one control plane on the hosting cluster (its conditions, waiting for Ready, sleep and wake, its kubeconfig).
import { AWAKE_REPLICAS_ANNOTATION, decodeAwakeReplicas, encodeAwakeReplicas } from '../idle';
import { KubeClient, paths, sleep } from '../kube/client';
import { tenantNames } from '../names';
import { ControlPlaneObject, SLEEP_ANNOTATION, typeContract } from '../wire';
import { CliError, Ctx, usage } from './context';
import { hosting, loadKubeconfig } from './hosting-access';

export const condition = (cp: ControlPlaneObject | undefined, type: string) =>
  (cp?.status?.conditions ?? []).find((c: any) => c.type === type);

export async function waitReady(ctx: Ctx, client: KubeClient, name: string, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  ctx.io.err(`Waiting for control plane ${name} to be Ready (timeout ${timeoutMs / 1000}s)\n`);
  let last = '';
  for (;;) {
    const cp = await client.get<ControlPlaneObject>(paths.controlPlane(name));
    if (!cp) throw new CliError(`control plane ${name} disappeared while waiting for it`);
    const ready = condition(cp, 'Ready');
    const synced = condition(cp, 'Synced');
    if (ready?.status === 'True' && cp.status?.observedGeneration === cp.metadata.generation) return cp;
    const line = `  Synced=${synced?.status ?? 'Unknown'} Ready=${ready?.status ?? 'Unknown'}${ready?.reason ? ` (${ready.reason}${ready.message ? `: ${ready.message}` : ''})` : ''}${synced?.status === 'False' ? ` ${synced.message}` : ''}`;
    if (line !== last) ctx.io.err(`${line}\n`);
    last = line;
    if (Date.now() > deadline) {
      throw new CliError(
        `timed out after ${timeoutMs / 1000}s waiting for control plane ${name} to be Ready (last:${line.trimStart() ? ` ${line.trim()}` : ' no status'})`,
      );
    }
    await sleep(Math.min(1000, Math.max(50, deadline - Date.now())));
  }
}

export async function sleepTarget(ctx: Ctx, args: string[]) {
  if (args.length !== 1)
    throw usage(args.length ? `unexpected argument ${args[1]}` : 'the control plane name is required');
  const name = args[0];
  const kc = loadKubeconfig(ctx);
  const { client, context } = await hosting(ctx, kc);
  const cp = await client.get<ControlPlaneObject>(paths.controlPlane(name));
  if (!cp) throw new CliError(`control plane ${name} not found on the hosting cluster (context ${context})`);
  if (!typeContract(cp.spec?.type)?.sleepWorkloads.length)
    throw new CliError(
      `control plane ${name} is of type ${cp.spec?.type}: only k8s, k3s and vcluster planes can sleep`,
    );
  return { client, name, cp };
}

/**
 * Scales the type's workloads through their scale subresource (no field-ownership fight with whoever applied them)
 * and sets or removes the sleeping annotation. Asleep, the workloads go first; awake, the annotation goes last, so
 * the controller never probes an API server that is being stopped.
 */
export async function setSleeping(
  client: KubeClient,
  name: string,
  cp: ControlPlaneObject,
  sleeping: boolean,
): Promise<void> {
  const ns = tenantNames(name).namespace;
  // Awake: the replicas recorded when it went to sleep (an HA plane gets its replicas back), else one.
  const recorded = decodeAwakeReplicas(cp.metadata.annotations?.[AWAKE_REPLICAS_ANNOTATION]);
  const scale = async (replicas?: number) => {
    for (const w of typeContract(cp.spec?.type)?.sleepWorkloads ?? []) {
      const path = `${paths.object('apps/v1', w.kind, w.name, ns)!}/scale`;
      const want = replicas ?? recorded.get(`${w.kind}/${w.name}`) ?? 1;
      await client.request('PATCH', path, { spec: { replicas: want } }, 'application/merge-patch+json');
    }
  };
  const annotate = (annotations: Record<string, string | null>) =>
    client.request('PATCH', paths.controlPlane(name), { metadata: { annotations } }, 'application/merge-patch+json');
  if (sleeping) {
    // What to restore on wake, whoever wakes it (kflex wake, or the activator through the controller).
    const record: { kind: string; name: string; replicas: number }[] = [];
    for (const w of typeContract(cp.spec?.type)?.sleepWorkloads ?? []) {
      const obj = await client.get<any>(paths.object('apps/v1', w.kind, w.name, ns)!);
      if (obj?.spec?.replicas) record.push({ ...w, replicas: obj.spec.replicas });
    }
    await client.request(
      'PATCH',
      paths.controlPlane(name),
      {
        metadata: {
          annotations: {
            [SLEEP_ANNOTATION]: 'true',
            ...(record.length ? { [AWAKE_REPLICAS_ANNOTATION]: encodeAwakeReplicas(record) } : {}),
          },
        },
      },
      'application/merge-patch+json',
    );
    await scale(0);
  } else {
    // Awake first: while the annotation says asleep, the controller keeps the workloads at zero. It restores them
    // too (from the record), so both writers agree.
    await annotate({ [SLEEP_ANNOTATION]: null });
    await scale();
    await annotate({ [AWAKE_REPLICAS_ANNOTATION]: null });
  }
}

/** Fetches the control plane's off-cluster kubeconfig (every data value non-empty, as KubeFlex waits for). */
export async function fetchKubeconfig(client: KubeClient, cp: ControlPlaneObject): Promise<string | undefined> {
  const ref = cp.status?.secretRef;
  if (!ref?.name || !ref.key) return undefined;
  // status is written by whoever may write controlplanes/status: only the type's own Secret in the plane's own
  // namespace is read with the operator's credentials, never one that status points elsewhere (review N8).
  const contract = typeContract(cp.spec?.type);
  const namespace = tenantNames(cp.metadata.name).namespace;
  if (
    !contract ||
    ref.namespace !== namespace ||
    ref.name !== contract.kubeconfig.name ||
    ref.key !== contract.kubeconfig.key
  ) {
    throw new CliError(
      `ControlPlane ${cp.metadata.name}: status.secretRef ${ref.namespace}/${ref.name} key ${ref.key} is not the kubeconfig Secret of its type (${contract ? `${namespace}/${contract.kubeconfig.name} key ${contract.kubeconfig.key}` : `unknown type ${cp.spec?.type}`}); not read`,
    );
  }
  const s = await client.get<any>(paths.secret(ref.namespace, ref.name));
  const data = s?.data?.[ref.key];
  if (!data) throw new CliError(`Secret ${ref.namespace}/${ref.name} has no key ${ref.key} yet`);
  return Buffer.from(data, 'base64').toString('utf8');
}
