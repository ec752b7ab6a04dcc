import { ApiObject, Chart, Lazy } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { TlsRoute } from '../imports/gateway.networking.k8s.io';
import {
  ControlPlane as ControlPlaneApi,
  ControlPlaneSpec,
  ControlPlaneSpecType,
} from '../imports/tenancy.kflex.kubestellar.org';
import {
  objectProblems,
  POD_SECURITY_LEVELS,
  PodSecurityLevel,
  podSecurityViolations,
  podTemplatesOf,
  valueAtPath,
} from './api-validation';
import { KubeflexConfigError } from './errors';
import { bindControllerInNamespace, IKubeflexHosting, registerControlPlane } from './hosting-face';
import { AWAKE_REPLICAS_ANNOTATION, encodeAwakeReplicas, IDLE_TIMEOUT_ANNOTATION, checkIdleTimeout } from './idle';
import {
  CONTROL_PLANE_LABEL,
  HOOK_POD_LABEL,
  hookLabelValue,
  PLANE_API_CLIENTS_LABEL,
  TenantNames,
  tenantNames,
} from './names';
import { hookEgressPolicy, tenantNetworkPolicies, TenantNetworkOptions } from './network-policy';
import { PostCreateHook } from './post-create-hook';
import { podSecurityLabels, restrictedContainerJson } from './security';
import { IMAGES } from './versions';
import { ControlPlaneTypeName, SLEEP_ANNOTATION, TYPE_CONTRACTS, WorkloadRef } from './wire';

/** The ResourceQuota of every plane's `<name>-system` namespace. */
const NAMESPACE_QUOTA = 'kubeflex-plane';

/** One use of a PostCreateHook by a control plane. */
export interface PostCreateHookUse {
  /** The hook, or the name of a hook registered with the same hosting install. */
  readonly hook: PostCreateHook | string;
  /** Variables for this use (override the hook's defaultVars and the control plane's globalVars). @default - none */
  readonly vars?: Record<string, string>;
}

/** Props common to every control-plane construct. */
export interface ControlPlaneProps {
  /** The hosting install this control plane runs on. */
  readonly hosting: IKubeflexHosting;
  /** Name of the control plane (DNS-1123 label, at most 56 characters). @default - the construct id */
  readonly name?: string;
  /** Hooks rendered into the control plane's namespace, in order. More can be added with addPostCreateHook(). @default - none */
  readonly postCreateHooks?: PostCreateHookUse[];
  /** Variables shared by all hooks of this control plane. @default - none */
  readonly globalVars?: Record<string, string>;
  /** Ready waits until every hook's objects are ready. @default false */
  readonly waitForPostCreateHooks?: boolean;
  /**
   * Pod Security Standard enforced in `<name>-system`. Hook pod templates are checked against it at synth, so a
   * hook Pod the namespace would refuse fails synth instead of never starting. Cannot be stricter than the type's
   * own workloads allow.
   * @default - 'restricted' for k8s, host and external; 'baseline' for k3s and vcluster (their workloads need it)
   */
  readonly podSecurity?: PodSecurityLevel;
  /**
   * Put the control plane to sleep: its workloads get zero replicas and the ControlPlane the sleeping annotation, so
   * it holds no process memory while its data stays (PostgreSQL or its volume). `false` wakes it. k8s, k3s and
   * vcluster only. `kflex sleep`/`kflex wake` do the same on a live cluster.
   * @default false
   */
  readonly sleeping?: boolean;
  /**
   * Sleep after this long without a client request (`90s`, `15m`, `1h30m`, `2d`; at least 60 s), and wake on the
   * next one: the hosting install's activator holds the connection meanwhile. Requests of the plane's own
   * controllers and of our probes do not count. k8s, k3s and vcluster only; needs the hosting prop `activator`.
   * @default - the hosting install's `idleTimeout`, else never
   */
  readonly idleTimeout?: string;
}

/** Where the runtime controller puts a control plane's kubeconfigs (KubeFlex's Secret names and keys). */
export interface KubeconfigSecretRef {
  /** Secret name in `<name>-system`. */
  readonly name: string;
  /** Key of the off-cluster kubeconfig, if the type has one. */
  readonly key?: string;
  /** Key of the in-cluster kubeconfig. */
  readonly inClusterKey: string;
}

/** What a control-plane type tells the shared base. */
export interface ControlPlaneTypeInfo {
  /** Value of `spec.type`. */
  readonly type: ControlPlaneSpecType;
  /** The strictest Pod Security Standard the type's own workloads run under (the default of `podSecurity`). */
  readonly podSecurity: PodSecurityLevel;
  /** The kubeconfig Secret the controller mints. */
  readonly kubeconfigSecret: KubeconfigSecretRef;
  /** Extra spec fields (external type). */
  readonly spec?: Partial<ControlPlaneSpec>;
}

/** Mount path of the kubeconfig Secret in the init container that waits for the tenant API. */
const WAIT_KUBECONFIG_DIR = '/var/run/kubeflex/kubeconfig';

/** Image, command and arguments of the init container that waits until a tenant API answers (hooks, KCM). */
export function waitForApiserver(kubeconfig: string): { image: string; command: string[]; args: string[] } {
  return {
    image: IMAGES.controller,
    command: ['kubeflex-wait-for-apiserver'],
    args: [`--kubeconfig=${kubeconfig}`, '--timeout=600s'],
  };
}

/** Construct id prefix of the objects a control plane renders from its PostCreateHooks (`Hook-<hook>-<i>`). */
export const HOOK_OBJECT_ID_PREFIX = 'Hook-';

/**
 * Shared part of every control-plane type: one chart per tenant holding the `ControlPlane` object (id `Resource`),
 * the `<name>-system` namespace, the controller's access to that namespace, and the rendered PostCreateHooks.
 */
export abstract class ControlPlaneBase extends Chart {
  /** Every name derived from the tenant name. */
  public readonly names: TenantNames;
  /** The hosting install. */
  public readonly hosting: IKubeflexHosting;
  /** The kubeconfig Secret the controller mints for this control plane. */
  public readonly kubeconfigSecret: KubeconfigSecretRef;
  /** The tenant namespace `<name>-system`. */
  public readonly tenantNamespace: kplus.Namespace;
  /** Pod Security Standard enforced in `<name>-system` (lowered to a used hook's `podSecurity`, never below it). */
  public get podSecurity(): PodSecurityLevel {
    return this.level;
  }
  protected readonly constructName: string;
  /** Replicas of the type's workloads: 0 while asleep. */
  protected readonly replicas: number;
  private readonly globalVars: Record<string, string>;
  private readonly hookUses: { hookName: string; vars?: Record<string, string> }[] = [];
  private readonly resource: ControlPlaneApi;
  private readonly sleepWorkloads: readonly WorkloadRef[];
  private level: PodSecurityLevel;

  protected constructor(scope: Construct, id: string, props: ControlPlaneProps, info: ControlPlaneTypeInfo) {
    const name = props.name ?? id;
    super(scope, id, { labels: { [CONTROL_PLANE_LABEL]: name, 'app.kubernetes.io/part-of': 'kubeflex' } });
    this.constructName = `${new.target.name} "${this.node.path}"`;
    this.names = tenantNames(name, this.constructName, 'name');
    this.hosting = props.hosting;
    this.kubeconfigSecret = info.kubeconfigSecret;
    this.globalVars = { ...(props.globalVars ?? {}) };
    this.level = props.podSecurity ?? info.podSecurity;
    if (!POD_SECURITY_LEVELS.includes(this.podSecurity)) {
      throw new KubeflexConfigError(
        this.constructName,
        'podSecurity',
        this.podSecurity,
        `must be one of ${POD_SECURITY_LEVELS.join(', ')}`,
      );
    }
    if (POD_SECURITY_LEVELS.indexOf(this.podSecurity) > POD_SECURITY_LEVELS.indexOf(info.podSecurity)) {
      throw new KubeflexConfigError(
        this.constructName,
        'podSecurity',
        this.podSecurity,
        `the ${info.type} type's own workloads need "${info.podSecurity}" or less strict`,
      );
    }
    for (const [k, v] of Object.entries(this.globalVars)) {
      if (typeof v !== 'string')
        throw new KubeflexConfigError(this.constructName, `globalVars.${k}`, v, 'must be a string');
    }
    registerControlPlane(props.hosting, name, this);
    const sleeping = props.sleeping ?? false;
    if (sleeping && !TYPE_CONTRACTS[info.type as ControlPlaneTypeName]?.sleepWorkloads.length) {
      throw new KubeflexConfigError(
        this.constructName,
        'sleeping',
        true,
        `a ${info.type} control plane has no workloads of its own to put to sleep`,
      );
    }
    this.replicas = sleeping ? 0 : 1;
    const idleTimeout = this.checkPlaneIdleTimeout(props.idleTimeout, info.type);
    const annotations = {
      ...(sleeping ? { [SLEEP_ANNOTATION]: 'true' } : {}),
      ...(idleTimeout !== undefined ? { [IDLE_TIMEOUT_ANNOTATION]: idleTimeout } : {}),
    };

    this.resource = new ControlPlaneApi(this, 'Resource', {
      metadata: { name, ...(Object.keys(annotations).length ? { annotations } : {}) },
      spec: {
        type: info.type,
        ...info.spec,
        // Rendered at synth, so hooks added later with addPostCreateHook() are listed (no shared mutable array).
        postCreateHooks: Lazy.any({ produce: () => this.hookUses.map((u) => ({ ...u })) }),
        globalVars: props.globalVars,
        waitForPostCreateHooks: props.waitForPostCreateHooks ?? false,
      },
    });
    // A plane made asleep says what to restore when a request (the activator) or kflex wake wakes it.
    this.sleepWorkloads = sleeping ? (TYPE_CONTRACTS[info.type as ControlPlaneTypeName]?.sleepWorkloads ?? []) : [];
    this.recordAwakeReplicas(1);
    this.tenantNamespace = new kplus.Namespace(this, 'Namespace', {
      metadata: { name: this.names.namespace, labels: podSecurityLabels(this.podSecurity) },
    });
    this.addNamespaceQuota();
    bindControllerInNamespace(this, 'ControllerAccess', this.names.namespace);
    for (const use of props.postCreateHooks ?? []) this.addPostCreateHook(use);
  }

  /**
   * A ResourceQuota in `<name>-system` that refuses LoadBalancer Services: a plane is reached through its Ingress,
   * Route or TLSRoute (TLS passthrough), never on an address of its own that its NetworkPolicies do not cover.
   * It also spares every write into the namespace a round trip: the API server's quota admission reads a namespace's
   * quotas from its cache, but for a namespace that has none it lists them from the store (cached 30 s, 100
   * namespaces): ~100 ms in front of the first Secret the controller writes for each plane (BENCHMARKS.md).
   */
  private addNamespaceQuota(): void {
    new kplus.k8s.KubeResourceQuota(this, 'NamespaceQuota', {
      metadata: { name: NAMESPACE_QUOTA, namespace: this.names.namespace },
      spec: { hard: { 'services.loadbalancers': kplus.k8s.Quantity.fromNumber(0) } },
    });
  }

  /** The idle timeout as given, checked: a duration within bounds, on a type that sleeps, with an activator. */
  private checkPlaneIdleTimeout(value: string | undefined, type: string): string | undefined {
    if (value === undefined) return undefined;
    checkIdleTimeout(this.constructName, 'idleTimeout', value);
    const contract = TYPE_CONTRACTS[type as ControlPlaneTypeName];
    if (!contract?.sleepWorkloads.length) {
      throw new KubeflexConfigError(
        this.constructName,
        'idleTimeout',
        value,
        `a ${type} control plane has no workloads of its own to put to sleep`,
      );
    }
    if (!contract.clientsAudited) {
      throw new KubeflexConfigError(
        this.constructName,
        'idleTimeout',
        value,
        `a ${type} control plane cannot tell its clients' requests from its own (vCluster's syncer proxies both under one identity); put it to sleep with kflex sleep, and the activator wakes it on request`,
      );
    }
    if (!this.hosting.activator) {
      throw new KubeflexConfigError(
        this.constructName,
        'idleTimeout',
        value,
        'the hosting install runs no activator (KubeflexHosting prop `activator`): nothing would wake the plane',
      );
    }
    return value;
  }

  /** On a plane made asleep: the replicas its workloads get back when it wakes (annotation AWAKE_REPLICAS). */
  protected recordAwakeReplicas(replicas: number): void {
    if (!this.sleepWorkloads.length) return;
    this.resource.metadata.addAnnotation(
      AWAKE_REPLICAS_ANNOTATION,
      encodeAwakeReplicas(this.sleepWorkloads.map((w) => ({ ...w, replicas }))),
    );
  }

  /** The control plane name. */
  public get controlPlaneName(): string {
    return this.names.name;
  }

  /**
   * Uses a PostCreateHook: records it in `spec.postCreateHooks` and renders its templates into `<name>-system`.
   * Hook workloads that use this control plane's kubeconfig Secret get an init container that waits for its API.
   */
  public addPostCreateHook(use: PostCreateHookUse): void {
    const hook = typeof use.hook === 'string' ? this.hosting.findPostCreateHook(use.hook) : use.hook;
    if (!hook) {
      const known = this.hosting.postCreateHookNames;
      throw new KubeflexConfigError(
        this.constructName,
        'postCreateHooks[].hook',
        use.hook,
        `no PostCreateHook with that name is registered with the hosting install (known: ${known.length ? known.join(', ') : 'none'}); define hooks before the control planes that use them`,
      );
    }
    if (this.hookUses.some((u) => u.hookName === hook.hookName)) {
      throw new KubeflexConfigError(this.constructName, 'postCreateHooks[].hook', hook.hookName, 'is used twice');
    }
    this.hookUses.push({ hookName: hook.hookName, vars: use.vars });
    if (hook.podSecurity && POD_SECURITY_LEVELS.indexOf(hook.podSecurity) < POD_SECURITY_LEVELS.indexOf(this.level)) {
      // The admin's hook needs a less strict level (KubeStellar's pods meet baseline): enforce it in the namespace,
      // and keep warning at the stricter level so what does not meet it shows on every apply.
      const warn = this.level;
      this.level = hook.podSecurity;
      this.tenantNamespace.metadata.addLabel('pod-security.kubernetes.io/enforce', this.level);
      this.tenantNamespace.metadata.addLabel('pod-security.kubernetes.io/warn', warn);
    }
    const labels = hook.labels;
    for (const [k, v] of Object.entries(labels)) this.resource.metadata.addLabel(k, v);

    const rendered = hook.render({
      controlPlanePath: this.constructName,
      controlPlaneName: this.names.name,
      namespace: this.names.namespace,
      globalVars: this.globalVars,
      vars: use.vars ?? {},
    });
    const egressLabel = hook.egress.length ? hookLabelValue(hook.hookName) : undefined;
    if (egressLabel) {
      // Only this hook's pods get the reach it declares (the admin's hook; KubeStellar's controllers).
      hookEgressPolicy(
        this,
        `HookEgress-${hook.hookName}`,
        this.names.namespace,
        egressLabel,
        hook.egress,
        this.hosting.hostingApiEgress,
      );
      if (hook.egress.includes('control-planes')) {
        this.tenantNamespace.metadata.addLabel(PLANE_API_CLIENTS_LABEL, 'true');
      }
    }
    rendered.forEach((obj, i) => {
      if (egressLabel) labelPods(obj, HOOK_POD_LABEL, egressLabel);
      this.addApiWait(obj);
      this.checkHookObject(hook.hookName, i, obj);
      new ApiObject(this, `${HOOK_OBJECT_ID_PREFIX}${hook.hookName}-${i}`, obj as any);
    });
  }

  /**
   * Exposes `service` outside the cluster at `<name>.<domain>`: a Gateway API TLSRoute when the hosting install has a
   * gateway, else an Ingress with SSL passthrough, or an OpenShift Route with passthrough TLS on OpenShift. TLS always ends at the tenant API server.
   */
  protected expose(service: kplus.Service, port: number, targetPortName: string): void {
    const metadata = { name: this.names.name, namespace: this.names.namespace };
    const gateway = this.hosting.gateway;
    if (gateway) {
      // TLS passthrough by host name (SNI): the Gateway never terminates TLS, so the tenant API server's own
      // certificate and client-certificate authentication work end to end, as with the Ingress and the Route.
      new TlsRoute(this, 'TlsRoute', {
        metadata,
        spec: {
          parentRefs: [
            {
              group: 'gateway.networking.k8s.io',
              kind: 'Gateway',
              name: gateway.name,
              namespace: gateway.namespace,
              ...(gateway.sectionName ? { sectionName: gateway.sectionName } : {}),
            },
          ],
          hostnames: [this.names.host(this.hosting.domain)],
          rules: [{ backendRefs: [{ group: '', kind: 'Service', name: service.name, port }] }],
        },
      });
      return;
    }
    if (this.hosting.isOpenShift) {
      // No cdk8s-plus or generated class exists for routes.openshift.io.
      new ApiObject(this, 'Route', {
        apiVersion: 'route.openshift.io/v1',
        kind: 'Route',
        metadata: { ...metadata, annotations: { 'openshift.io/host.generated': 'true' } },
        spec: {
          to: { kind: 'Service', name: service.name, weight: 100 },
          port: { targetPort: targetPortName },
          tls: { termination: 'passthrough', insecureEdgeTerminationPolicy: 'None' },
          wildcardPolicy: 'None',
        },
      });
      return;
    }
    new kplus.Ingress(this, 'Ingress', {
      metadata: { ...metadata, annotations: { 'nginx.ingress.kubernetes.io/ssl-passthrough': 'true' } },
      className: this.hosting.ingressClassName,
      rules: [
        {
          host: this.names.host(this.hosting.domain),
          path: '/',
          pathType: kplus.HttpIngressPathType.PREFIX,
          backend: kplus.IngressBackend.fromService(service, { port }),
        },
      ],
    });
  }

  /** Refuses a rendered hook object the API server or the namespace's Pod Security level would refuse. */
  private checkHookObject(hookName: string, i: number, obj: Record<string, any>): void {
    const prop = `postCreateHooks[${hookName}] templates[${i}] (${obj.kind} "${obj.metadata?.name}")`;
    const problems = objectProblems(obj);
    if (problems.length) {
      const p = problems[0];
      throw new KubeflexConfigError(
        this.constructName,
        `${prop} ${p.path}`,
        valueAtPath(obj, p.path.replace(/^\./, '')),
        `${p.message} (after rendering the hook's variables)`,
      );
    }
    for (const t of podTemplatesOf(obj)) {
      const violations = podSecurityViolations(t.meta, t.spec, this.podSecurity);
      if (violations.length) {
        throw new KubeflexConfigError(
          this.constructName,
          `${prop} ${t.path}`,
          `Pod Security "${this.podSecurity}"`,
          `namespace ${this.names.namespace} enforces Pod Security "${this.podSecurity}" and would refuse this pod: ${violations.join('; ')}. Fix the hook template, or set the podSecurity prop of this control plane to a less strict level`,
        );
      }
    }
  }

  /** Default-deny NetworkPolicies for `<name>-system`, with the flows this type needs (security review H3). */
  protected isolateNetwork(opts: Omit<TenantNetworkOptions, 'namespace' | 'ingressNamespace'>): void {
    tenantNetworkPolicies(this, {
      ...opts,
      namespace: this.names.namespace,
      ingressNamespace: this.hosting.ingressNamespace,
    });
  }

  /**
   * Adds an init container to every pod template of a hook object that uses the tenant kubeconfig Secret (a volume, a
   * projected source, an env or envFrom reference), so no hook workload starts before the tenant API serves
   * (KubeFlex #490: Deployments and Pods of hooks used to crash-loop on a half-ready tenant).
   */
  private addApiWait(obj: Record<string, any>): void {
    const name = this.kubeconfigSecret.name;
    const key = this.kubeconfigSecret.inClusterKey;
    for (const t of podTemplatesOf(obj)) {
      const pod = t.spec;
      if (!pod || typeof pod !== 'object') continue;
      const volumes: any[] = Array.isArray(pod.volumes) ? pod.volumes : [];
      const containers: any[] = [
        ...(Array.isArray(pod.containers) ? pod.containers : []),
        ...(Array.isArray(pod.initContainers) ? pod.initContainers : []),
      ];
      const uses =
        volumes.some(
          (v) => v?.secret?.secretName === name || v?.projected?.sources?.some((s: any) => s?.secret?.name === name),
        ) ||
        containers.some(
          (c) =>
            c?.env?.some?.((e: any) => e?.valueFrom?.secretKeyRef?.name === name) ||
            c?.envFrom?.some?.((e: any) => e?.secretRef?.name === name),
        );
      if (!uses) continue;
      // The template's own volume when it holds the in-cluster key, else one of ours with just that key.
      let volume = volumes.find(
        (v) => v?.secret?.secretName === name && (!v.secret.items || v.secret.items.some((i: any) => i?.key === key)),
      );
      const path = volume?.secret?.items?.find((i: any) => i?.key === key)?.path ?? key;
      if (!volume) {
        volume = { name: 'kubeflex-wait-kubeconfig', secret: { secretName: name, items: [{ key, path: key }] } };
        pod.volumes = [...volumes, volume];
      }
      const waiter = {
        name: 'wait-for-control-plane',
        ...waitForApiserver(`${WAIT_KUBECONFIG_DIR}/${path}`),
        volumeMounts: [{ name: volume.name, mountPath: WAIT_KUBECONFIG_DIR, readOnly: true }],
        securityContext: restrictedContainerJson(),
        resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '100m', memory: '64Mi' } },
      };
      pod.initContainers = [waiter, ...(Array.isArray(pod.initContainers) ? pod.initContainers : [])];
    }
  }
}

/** Sets a label on every pod `obj` makes (the Pod itself, or its workload's pod template). */
function labelPods(obj: Record<string, any>, key: string, value: string): void {
  const into = (holder: Record<string, any> | undefined) => {
    if (!holder || typeof holder !== 'object') return;
    holder.metadata = { ...(holder.metadata ?? {}) };
    holder.metadata.labels = { ...(holder.metadata.labels ?? {}), [key]: value };
  };
  if (obj.kind === 'Pod') into(obj);
  else if (obj.kind === 'CronJob') into(obj.spec?.jobTemplate?.spec?.template);
  else if (obj.kind === 'PodTemplate') into(obj.template);
  else if (podTemplatesOf(obj).length) into(obj.spec?.template);
}
