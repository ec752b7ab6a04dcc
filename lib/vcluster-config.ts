/**
 * The complete vCluster configuration (`config.yaml` of Secret `vc-config-vcluster`) for the pinned release.
 *
 * vCluster reads that file strictly and applies no defaults of its own: every key the chart would write must be
 * there, or booleans become false and numbers 0 (its API server and controller manager would not even start). The
 * chart writes `.Values` deep-merged with the user's values; VCLUSTER_CHART_DEFAULTS is that `.Values` for
 * VCLUSTER_VERSION, written out here in one place (the chart's values.yaml is not vendored), and vclusterConfig()
 * merges our choices over it the way Helm does: maps merge key by key, anything else is replaced.
 *
 * Bumping VCLUSTER_VERSION means re-checking this table against the chart of the new tag.
 */

type Values = { [key: string]: unknown };

const none = (): Values => ({});
const meta = () => ({ annotations: {}, labels: {} });
const scheduling = () => ({
  affinity: {},
  nodeSelector: {},
  podManagementPolicy: 'Parallel',
  priorityClassName: '',
  tolerations: [],
  topologySpreadConstraints: [],
});
const volumeClaim = (enabled: boolean | 'auto') => ({
  accessModes: ['ReadWriteOnce'],
  enabled,
  retentionPolicy: 'Retain',
  size: '5Gi',
  storageClass: '',
});
const on = { enabled: true };
const off = { enabled: false };
const auto = { enabled: 'auto' };
const joinNode = () => ({ containerd: { enabled: true } });

/** `.Values` of the vCluster chart at VCLUSTER_VERSION (0.26.1) with no user values. */
export const VCLUSTER_CHART_DEFAULTS: Values = {
  controlPlane: {
    advanced: {
      defaultImageRegistry: '',
      globalMetadata: { annotations: {} },
      headlessService: meta(),
      konnectivity: {
        agent: {
          enabled: true,
          extraArgs: [],
          extraEnv: [],
          image: '',
          imagePullPolicy: '',
          nodeSelector: {},
          replicas: 1,
          tolerations: [],
        },
        server: { enabled: true, extraArgs: [] },
      },
      registry: { anonymousPull: true, config: {}, enabled: false },
      serviceAccount: { ...meta(), enabled: true, imagePullSecrets: [], name: '' },
      virtualScheduler: off,
      workloadServiceAccount: { ...meta(), enabled: true, imagePullSecrets: [], name: '' },
    },
    backingStore: {
      database: {
        embedded: { enabled: false, extraArgs: [] },
        external: {
          caFile: '',
          certFile: '',
          connector: '',
          dataSource: '',
          enabled: false,
          extraArgs: [],
          keyFile: '',
        },
      },
      etcd: {
        deploy: {
          enabled: false,
          headlessService: { annotations: {} },
          service: { annotations: {}, enabled: true },
          statefulSet: {
            annotations: {},
            enableServiceLinks: true,
            enabled: true,
            env: [],
            extraArgs: [],
            highAvailability: { replicas: 1 },
            image: { registry: 'registry.k8s.io', repository: 'etcd', tag: '3.5.21-0' },
            imagePullPolicy: '',
            labels: {},
            persistence: {
              addVolumeMounts: [],
              addVolumes: [],
              volumeClaim: volumeClaim(true),
              volumeClaimTemplates: [],
            },
            pods: meta(),
            resources: { requests: { cpu: '20m', memory: '150Mi' } },
            scheduling: scheduling(),
            security: { containerSecurityContext: {}, podSecurityContext: {} },
          },
        },
        embedded: { enabled: false, extraArgs: [], migrateFromDeployedEtcd: false },
        external: { enabled: false, endpoint: '', tls: { caFile: '', certFile: '', keyFile: '' } },
      },
    },
    coredns: {
      deployment: {
        affinity: {},
        annotations: {},
        image: '',
        labels: {},
        nodeSelector: {},
        pods: meta(),
        replicas: 1,
        resources: { limits: { cpu: '1000m', memory: '170Mi' }, requests: { cpu: '20m', memory: '64Mi' } },
        tolerations: [],
        topologySpreadConstraints: [
          {
            labelSelector: { matchLabels: { 'k8s-app': 'vcluster-kube-dns' } },
            maxSkew: 1,
            topologyKey: 'kubernetes.io/hostname',
            whenUnsatisfiable: 'DoNotSchedule',
          },
        ],
      },
      embedded: false,
      enabled: true,
      overwriteConfig: '',
      overwriteManifests: '',
      priorityClassName: '',
      security: { containerSecurityContext: {}, podSecurityContext: {} },
      service: { ...meta(), spec: { type: 'ClusterIP' } },
    },
    distro: {
      k3s: {
        command: [],
        enabled: false,
        extraArgs: [],
        image: { registry: '', repository: 'rancher/k3s', tag: 'v1.32.7-k3s1' },
        imagePullPolicy: '',
        resources: { limits: { cpu: '100m', memory: '256Mi' }, requests: { cpu: '40m', memory: '64Mi' } },
        securityContext: {},
      },
      k8s: {
        apiServer: { command: [], enabled: true, extraArgs: [] },
        controllerManager: { command: [], enabled: true, extraArgs: [] },
        enabled: true,
        env: [],
        image: { registry: 'ghcr.io', repository: 'loft-sh/kubernetes', tag: 'v1.32.8' },
        imagePullPolicy: '',
        resources: { limits: { cpu: '100m', memory: '256Mi' }, requests: { cpu: '40m', memory: '64Mi' } },
        scheduler: { command: [], enabled: false, extraArgs: [] },
        securityContext: {},
      },
    },
    ingress: {
      annotations: {
        'nginx.ingress.kubernetes.io/backend-protocol': 'HTTPS',
        'nginx.ingress.kubernetes.io/ssl-passthrough': 'true',
        'nginx.ingress.kubernetes.io/ssl-redirect': 'true',
      },
      enabled: false,
      host: 'my-host.com',
      labels: {},
      pathType: 'ImplementationSpecific',
      spec: { tls: [] },
    },
    proxy: { bindAddress: '0.0.0.0', extraSANs: [], port: 8443 },
    service: { ...meta(), enabled: true, httpsNodePort: 0, kubeletNodePort: 0, spec: { type: 'ClusterIP' } },
    serviceMonitor: { ...meta(), enabled: false },
    standalone: {
      bundleRepository: 'https://github.com/loft-sh/kubernetes/releases/download',
      dataDir: '/var/lib/vcluster',
      joinNode: { ...joinNode(), enabled: true },
    },
    statefulSet: {
      annotations: {},
      args: [],
      command: [],
      enableServiceLinks: true,
      env: [],
      highAvailability: { leaseDuration: 60, renewDeadline: 40, replicas: 1, retryPeriod: 15 },
      image: { registry: 'ghcr.io', repository: 'loft-sh/vcluster-pro', tag: '' },
      imagePullPolicy: '',
      labels: {},
      persistence: {
        addVolumeMounts: [],
        addVolumes: [],
        binariesVolume: [{ emptyDir: {}, name: 'binaries' }],
        dataVolume: [],
        volumeClaim: volumeClaim('auto'),
        volumeClaimTemplates: [],
      },
      pods: meta(),
      probes: {
        livenessProbe: {
          enabled: true,
          failureThreshold: 60,
          initialDelaySeconds: 60,
          periodSeconds: 2,
          timeoutSeconds: 3,
        },
        readinessProbe: { enabled: true, failureThreshold: 60, periodSeconds: 2, timeoutSeconds: 3 },
        startupProbe: { enabled: true, failureThreshold: 300, periodSeconds: 6, timeoutSeconds: 3 },
      },
      resources: {
        limits: { 'ephemeral-storage': '8Gi', memory: '2Gi' },
        requests: { cpu: '200m', 'ephemeral-storage': '400Mi', memory: '256Mi' },
      },
      scheduling: scheduling(),
      security: {
        containerSecurityContext: { allowPrivilegeEscalation: false, runAsGroup: 0, runAsUser: 0 },
        podSecurityContext: {},
      },
      workingDir: '',
    },
  },
  deploy: {
    cni: { flannel: on },
    ingressNginx: { defaultIngressClass: true, enabled: false },
    kubeProxy: {
      enabled: true,
      extraArgs: [],
      extraEnv: [],
      image: '',
      imagePullPolicy: '',
      nodeSelector: {},
      tolerations: [],
    },
    localPathProvisioner: on,
    metallb: { enabled: false, ipAddressPool: { addresses: [], l2Advertisement: true } },
    metricsServer: off,
  },
  experimental: {
    deploy: {
      host: { manifests: '', manifestsTemplate: '' },
      vcluster: { helm: [], manifests: '', manifestsTemplate: '' },
    },
    genericSync: { clusterRole: { extraRules: [] }, role: { extraRules: [] } },
    isolatedControlPlane: { headless: false },
    syncSettings: { setOwner: true, targetNamespace: '' },
  },
  exportKubeConfig: {
    context: '',
    insecure: false,
    secret: { name: '', namespace: '' },
    server: '',
    serviceAccount: { clusterRole: '', name: '', namespace: '' },
  },
  external: {},
  integrations: {
    certManager: {
      enabled: false,
      sync: {
        fromHost: { clusterIssuers: { enabled: true, selector: { labels: {} } } },
        toHost: { certificates: on, issuers: on },
      },
    },
    externalSecrets: {
      enabled: false,
      sync: {
        clusterStores: { enabled: false, selector: { labels: {} } },
        externalSecrets: on,
        stores: off,
      },
      webhook: off,
    },
    istio: { enabled: false, sync: { toHost: { destinationRules: on, gateways: on, virtualServices: on } } },
    kubeVirt: {
      enabled: false,
      sync: {
        dataVolumes: off,
        virtualMachineClones: on,
        virtualMachineInstanceMigrations: on,
        virtualMachineInstances: on,
        virtualMachinePools: on,
        virtualMachines: on,
      },
      webhook: on,
    },
    metricsServer: { enabled: false, nodes: true, pods: true },
  },
  logging: { encoding: 'console' },
  networking: {
    advanced: {
      clusterDomain: 'cluster.local',
      fallbackHostCluster: false,
      proxyKubelets: { byHostname: true, byIP: true },
    },
    podCIDR: '10.244.0.0/16',
    replicateServices: { fromHost: [], toHost: [] },
    resolveDNS: [],
  },
  plugins: {},
  policies: {
    centralAdmission: { mutatingWebhooks: [], validatingWebhooks: [] },
    limitRange: {
      annotations: {},
      default: { cpu: '1', 'ephemeral-storage': '8Gi', memory: '512Mi' },
      defaultRequest: { cpu: '100m', 'ephemeral-storage': '3Gi', memory: '128Mi' },
      enabled: 'auto',
      labels: {},
      max: {},
      min: {},
    },
    networkPolicy: {
      annotations: {},
      enabled: false,
      extraControlPlaneRules: [],
      extraWorkloadRules: [],
      fallbackDns: '8.8.8.8',
      labels: {},
      outgoingConnections: {
        ipBlock: {
          cidr: '0.0.0.0/0',
          except: ['100.64.0.0/10', '127.0.0.0/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'],
        },
        platform: true,
      },
    },
    resourceQuota: {
      annotations: {},
      enabled: 'auto',
      labels: {},
      quota: {
        'count/configmaps': 100,
        'count/endpoints': 40,
        'count/persistentvolumeclaims': 20,
        'count/pods': 20,
        'count/secrets': 100,
        'count/services': 20,
        'limits.cpu': 20,
        'limits.ephemeral-storage': '160Gi',
        'limits.memory': '40Gi',
        'requests.cpu': 10,
        'requests.ephemeral-storage': '60Gi',
        'requests.memory': '20Gi',
        'requests.storage': '100Gi',
        'services.loadbalancers': 1,
        'services.nodeports': 0,
      },
      scopeSelector: { matchExpressions: [] },
      scopes: [],
    },
  },
  privateNodes: {
    autoUpgrade: { concurrency: 1, enabled: true },
    enabled: false,
    importNodeBinaries: true,
    joinNode: joinNode(),
  },
  rbac: {
    clusterRole: { enabled: 'auto', extraRules: [], overwriteRules: [] },
    role: { enabled: true, extraRules: [], overwriteRules: [] },
  },
  sync: {
    fromHost: {
      configMaps: { enabled: false, mappings: { byName: {} } },
      csiDrivers: auto,
      csiNodes: auto,
      csiStorageCapacities: auto,
      events: on,
      ingressClasses: off,
      nodes: { clearImageStatus: false, enabled: false, selector: { all: false, labels: {} }, syncBackChanges: false },
      priorityClasses: off,
      runtimeClasses: off,
      secrets: { enabled: false, mappings: { byName: {} } },
      storageClasses: auto,
      volumeSnapshotClasses: off,
    },
    toHost: {
      configMaps: { all: false, enabled: true },
      endpoints: on,
      ingresses: off,
      namespaces: { enabled: false, mappingsOnly: false },
      networkPolicies: off,
      persistentVolumeClaims: on,
      persistentVolumes: off,
      podDisruptionBudgets: off,
      pods: {
        enabled: true,
        enforceTolerations: [],
        hybridScheduling: { enabled: false, hostSchedulers: [] },
        priorityClassName: '',
        rewriteHosts: {
          enabled: true,
          initContainer: {
            image: 'library/alpine:3.20',
            resources: { limits: { cpu: '30m', memory: '64Mi' }, requests: { cpu: '30m', memory: '64Mi' } },
          },
        },
        runtimeClassName: '',
        translateImage: {},
        useSecretsForSATokens: false,
      },
      priorityClasses: off,
      secrets: { all: false, enabled: true },
      serviceAccounts: off,
      services: on,
      storageClasses: off,
      volumeSnapshotContents: off,
      volumeSnapshots: off,
    },
  },
  // The chart turns telemetry on; vclusterConfig() turns it off on purpose (nothing phones home from a tenant).
  telemetry: { enabled: true },
};

function isMap(v: unknown): v is Values {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's merge of user values over chart values: maps merge key by key; lists and scalars replace. */
export function mergeValues(base: Values, over: Values): Values {
  const out: Values = {};
  for (const [k, v] of Object.entries(base)) out[k] = isMap(v) ? mergeValues(v, none()) : v;
  for (const [k, v] of Object.entries(over)) out[k] = isMap(v) && isMap(out[k]) ? mergeValues(out[k] as Values, v) : v;
  return out;
}

/** Keys sorted at every level (as Helm's toYaml writes them), so the Secret and its hash are stable. */
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (!isMap(v)) return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sorted(v[k])]),
  );
}

/** The full configuration vCluster reads: the chart's defaults with `overrides` merged over them. */
export function vclusterConfig(overrides: Values): Values {
  return sorted(mergeValues(VCLUSTER_CHART_DEFAULTS, overrides)) as Values;
}
