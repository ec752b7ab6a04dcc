import { ApiObject, JsonPatch } from 'cdk8s';
import {
  ExternalControlPlane,
  HostControlPlane,
  K3sControlPlane,
  K8S_APISERVER_PORT,
  K8sControlPlane,
  PostCreateHook,
  VClusterControlPlane,
} from '../lib';
import { datastoreOf, singleServer } from '../lib/datastore/endpoint';
import { kinePoolSize, TENANT_DB_CONNECTION_LIMIT, TENANT_DB_RESERVED_CONNECTIONS } from '../lib/wire';
import { find, setup, synth } from './helpers';

/** A container that meets Pod Security `restricted`. */
const RESTRICTED = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };

const cpLabels = (name: string) => ({
  'app.kubernetes.io/part-of': 'kubeflex',
  'tenancy.kflex.kubestellar.org/control-plane': name,
});

describe('HostControlPlane', () => {
  test('minimal: exact manifests', () => {
    const { app, hosting } = setup();
    const cp = new HostControlPlane(app, 'h1', { hosting });
    expect(synth(cp).filter((o) => o.kind !== 'NetworkPolicy')).toEqual([
      {
        apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
        kind: 'ControlPlane',
        metadata: { name: 'h1', labels: cpLabels('h1') },
        spec: { type: 'host', postCreateHooks: [], waitForPostCreateHooks: false },
      },
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: 'h1-system',
          labels: {
            ...cpLabels('h1'),
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/warn': 'restricted',
          },
        },
        spec: {},
      },
      {
        apiVersion: 'v1',
        kind: 'ResourceQuota',
        metadata: { name: 'kubeflex-plane', namespace: 'h1-system', labels: cpLabels('h1') },
        spec: { hard: { 'services.loadbalancers': 0 } },
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'kubeflex-controller', namespace: 'h1-system', labels: cpLabels('h1') },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'kubeflex-controller-tenant' },
        subjects: [
          { apiGroup: '', kind: 'ServiceAccount', name: 'kubeflex-controller-manager', namespace: 'kubeflex-system' },
        ],
      },
      {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: 'h1', namespace: 'h1-system', labels: cpLabels('h1') },
        automountServiceAccountToken: false,
      },
    ]);
  });

  test('no ClusterRoleBinding is synthesized: the controller binds the admitted plane (review N1/N2)', () => {
    const { app, hosting } = setup();
    const objects = synth(new HostControlPlane(app, 'h1', { hosting }));
    expect(objects.filter((o) => !o.metadata.namespace && o.kind !== 'ControlPlane').map((o) => o.kind)).toEqual([
      'Namespace',
    ]);
  });

  test('no non-expiring token Secret: the controller mints and renews a TokenRequest token (security review H4)', () => {
    const { app, hosting } = setup();
    const objects = synth(new HostControlPlane(app, 'h1', { hosting }));
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
  });

  test('the ControlPlane object is the Resource child, patchable through ApiObject.of', () => {
    const { app, hosting } = setup();
    const cp = new HostControlPlane(app, 'h1', { hosting });
    ApiObject.of(cp.node.findChild('Resource')).addJsonPatch(JsonPatch.add('/spec/backend', 'shared'));
    expect(find(synth(cp), 'ControlPlane', 'h1').spec.backend).toBe('shared');
  });
});

describe('NetworkPolicies (security review H3)', () => {
  test('a host plane: default deny; same-namespace traffic and DNS; egress open for hooks acting elsewhere', () => {
    const { app, hosting } = setup();
    const policies = synth(new HostControlPlane(app, 'h1', { hosting })).filter((o) => o.kind === 'NetworkPolicy');
    expect(policies.map((p) => p.spec)).toEqual([
      { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
      {
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ podSelector: {} }] }],
        egress: [
          { to: [{ podSelector: {} }] },
          {
            to: [
              {
                namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
                podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
              },
            ],
            ports: [
              { protocol: 'UDP', port: 53 },
              { protocol: 'TCP', port: 53 },
            ],
          },
          {},
        ],
      },
    ]);
  });

  test("a hook's declared egress: its pods only, to the hosting API and other planes' API pods on their ports", () => {
    const { app, hosting } = setup({ hostingApiServer: { cidrs: ['172.18.0.2/32'], ports: [6443] } });
    const hook = new PostCreateHook(hosting, 'ks-ctl', {
      hosting,
      egress: ['control-planes', 'hosting-api', 'hosting-api'],
      templates: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'ctl' },
          spec: {
            selector: { matchLabels: { name: 'ctl' } },
            template: {
              metadata: { labels: { name: 'ctl' } },
              spec: {
                containers: [{ name: 'c', image: 'x', securityContext: RESTRICTED }],
                securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
              },
            },
          },
        },
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' } },
      ],
    });
    const objects = synth(new K8sControlPlane(app, 'wds1', { hosting, postCreateHooks: [{ hook }] }));
    expect(find(synth(hosting), 'PostCreateHook', 'ks-ctl').metadata.annotations).toEqual({
      'kflex.kubestellar.org/egress': 'control-planes,hosting-api',
    });
    expect(find(objects, 'Deployment', 'ctl').spec.template.metadata.labels).toEqual({
      name: 'ctl',
      'kflex.kubestellar.org/hook': 'ks-ctl',
    });
    expect(find(objects, 'Namespace', 'wds1-system').metadata.labels['kflex.kubestellar.org/plane-api-clients']).toBe(
      'true',
    );
    const planes = { matchExpressions: [{ key: 'tenancy.kflex.kubestellar.org/control-plane', operator: 'Exists' }] };
    expect(find(objects, 'NetworkPolicy', 'allow-hook-egress-ks-ctl').spec).toEqual({
      podSelector: { matchLabels: { 'kflex.kubestellar.org/hook': 'ks-ctl' } },
      policyTypes: ['Egress'],
      egress: [
        { to: [{ ipBlock: { cidr: '172.18.0.2/32' } }], ports: [{ protocol: 'TCP', port: 6443 }] },
        {
          to: [{ namespaceSelector: planes, podSelector: { matchLabels: { app: 'kube-apiserver' } } }],
          ports: [{ protocol: 'TCP', port: K8S_APISERVER_PORT }],
        },
        {
          to: [{ namespaceSelector: planes, podSelector: { matchLabels: { 'controller.kubeflex.dev/type': 'k3s' } } }],
          ports: [{ protocol: 'TCP', port: 6443 }],
        },
        {
          to: [{ namespaceSelector: planes, podSelector: { matchLabels: { app: 'vcluster', release: 'vcluster' } } }],
          ports: [{ protocol: 'TCP', port: 8443 }],
        },
      ],
    });
    // A plane that uses no such hook: no label, no egress policy.
    const plain = synth(new K8sControlPlane(app, 'plain', { hosting }));
    expect(plain.filter((o) => o.metadata.name.startsWith('allow-hook-egress'))).toEqual([]);
    expect(
      find(plain, 'Namespace', 'plain-system').metadata.labels['kflex.kubestellar.org/plane-api-clients'],
    ).toBeUndefined();
  });

  test('a k8s plane: its API server only from the controller and the ingress namespace; kine only to PostgreSQL', () => {
    const { app, hosting } = setup({ ingressNamespace: 'edge' });
    const objects = synth(new K8sControlPlane(app, 'cp1', { hosting }));
    expect(find(objects, 'NetworkPolicy', 'allow-api').spec).toEqual({
      podSelector: { matchLabels: { app: 'kube-apiserver' } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kubeflex-system' } },
              podSelector: { matchLabels: { app: 'kubeflex-controller-manager' } },
            },
            { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'edge' } } },
            // Hook pods (only those labelled as such) of planes whose admin-written hooks declare control-planes egress.
            {
              namespaceSelector: { matchLabels: { 'kflex.kubestellar.org/plane-api-clients': 'true' } },
              podSelector: { matchExpressions: [{ key: 'kflex.kubestellar.org/hook', operator: 'Exists' }] },
            },
            // The activator passes a sleeping plane's clients through once it is awake.
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kubeflex-system' } },
              podSelector: { matchLabels: { app: 'kubeflex-activator' } },
            },
          ],
          ports: [{ protocol: 'TCP', port: 9444 }],
        },
      ],
    });
    expect(find(objects, 'NetworkPolicy', 'allow-postgres').spec.egress).toEqual([
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kubeflex-system' } },
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'postgresql' } },
          },
        ],
        ports: [{ protocol: 'TCP', port: 5432 }],
      },
    ]);
    // KCM binds its pod IP, not 0.0.0.0.
    expect(find(objects, 'Deployment', 'kube-controller-manager').spec.template.spec.containers[0].args).toContain(
      '--bind-address=$(POD_IP)',
    );
  });
});

describe('ExternalControlPlane', () => {
  test('minimal: exact ControlPlane with bootstrap reference and default token lifetime', () => {
    const { app, hosting } = setup();
    const cp = new ExternalControlPlane(app, 'ext', { hosting, bootstrapSecret: { name: 'ext-bootstrap' } });
    const objects = synth(cp);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'ControlPlane/ext',
      'Namespace/ext-system',
      'ResourceQuota/kubeflex-plane',
      'RoleBinding/kubeflex-controller',
      'NetworkPolicy/default-deny',
      'NetworkPolicy/allow-same-namespace',
    ]);
    expect(objects[0].spec).toEqual({
      type: 'external',
      bootstrapSecretRef: { name: 'ext-bootstrap', namespace: 'kubeflex-system', inClusterKey: 'kubeconfig-incluster' },
      tokenExpirationSeconds: 31536000,
      postCreateHooks: [],
      waitForPostCreateHooks: false,
    });
  });

  test('the bootstrap Secret is always kubeflex-system/<name>-bootstrap; the controller gets no access elsewhere', () => {
    const { app, hosting } = setup();
    const cp = new ExternalControlPlane(app, 'ext', {
      hosting,
      bootstrapSecret: { inClusterKey: 'kc' },
      tokenExpirationSeconds: 3600,
    });
    const objects = synth(cp);
    expect(objects[0].spec.bootstrapSecretRef).toEqual({
      name: 'ext-bootstrap',
      namespace: 'kubeflex-system',
      inClusterKey: 'kc',
    });
    expect(objects[0].spec.tokenExpirationSeconds).toBe(3600);
    const bindings = objects.filter((o) => o.kind === 'RoleBinding').map((o) => o.metadata.namespace);
    expect(bindings).toEqual(['ext-system']);
  });
});

describe('K8sControlPlane', () => {
  const make = (hostingProps = {}) => {
    const { app, hosting } = setup(hostingProps);
    return new K8sControlPlane(app, 'cp1', { hosting });
  };

  test('workloads, service and ingress carry KubeFlex names', () => {
    const objects = synth(make());
    expect(objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`)).toEqual([
      'ControlPlane//cp1',
      'Namespace//cp1-system',
      'ResourceQuota/cp1-system/kubeflex-plane',
      'RoleBinding/cp1-system/kubeflex-controller',
      'ConfigMap/cp1-system/audit-policy',
      'Deployment/cp1-system/kube-apiserver',
      'Deployment/cp1-system/kube-controller-manager',
      'Service/cp1-system/cp1',
      'Ingress/cp1-system/cp1',
      'NetworkPolicy/cp1-system/default-deny',
      'NetworkPolicy/cp1-system/allow-same-namespace',
      'NetworkPolicy/cp1-system/allow-api',
      'NetworkPolicy/cp1-system/allow-postgres',
    ]);
    expect(find(objects, 'Service', 'cp1').spec).toEqual({
      type: 'ClusterIP',
      externalIPs: [],
      ports: [{ name: 'https', port: 443, targetPort: K8S_APISERVER_PORT }],
      selector: { app: 'kube-apiserver' },
    });
    expect(find(objects, 'Ingress', 'cp1')).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: {
        name: 'cp1',
        namespace: 'cp1-system',
        labels: cpLabels('cp1'),
        annotations: { 'nginx.ingress.kubernetes.io/ssl-passthrough': 'true' },
      },
      spec: {
        ingressClassName: 'nginx',
        rules: [
          {
            host: 'cp1.localtest.me',
            http: {
              paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'cp1', port: { number: 443 } } } }],
            },
          },
        ],
      },
    });
  });

  test("kine's pool: every replica's and a replacement's fit the tenant role's connection limit", () => {
    expect([1, 2, 3, 4, 5, 8].map(kinePoolSize)).toEqual([20, 13, 10, 8, 6, 4]);
    for (const replicas of [1, 2, 3, 4, 5, 8, 40]) {
      expect((replicas + 1) * kinePoolSize(replicas) + TENANT_DB_RESERVED_CONNECTIONS).toBeLessThanOrEqual(
        Math.max(TENANT_DB_CONNECTION_LIMIT, replicas + 1 + TENANT_DB_RESERVED_CONNECTIONS),
      );
    }
  });

  test('kine listens on loopback and gets its password from a Secret, never from argv', () => {
    const pod = find(synth(make()), 'Deployment', 'kube-apiserver').spec.template.spec;
    const kine = pod.containers.find((c: any) => c.name === 'kine');
    expect(kine.args).toEqual([
      '--listen-address=127.0.0.1:2379',
      '--metrics-bind-address=0',
      '--datastore-max-open-connections=20',
      '--datastore-max-idle-connections=20',
      '--datastore-connection-max-idle-time=15s',
      '--datastore-poll-interval=10s',
    ]);
    expect(kine.command).toBeUndefined();
    expect(kine.env).toEqual([
      { name: 'KINE_DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'kine-postgres', key: 'password' } } },
      {
        name: 'KINE_ENDPOINT',
        value:
          'postgres://cp1:$(KINE_DB_PASSWORD)@postgres-postgresql.kubeflex-system.svc:5432/cp1?sslmode=verify-full&sslrootcert=/etc/postgresql-ca/ca.crt',
      },
      { name: 'GOMEMLIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1' } } },
      { name: 'GOMAXPROCS', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } } },
      { name: 'GOGC', value: '25' },
    ]);
    const apiserver = pod.containers.find((c: any) => c.name === 'kube-apiserver');
    expect(apiserver.args).toContain('--etcd-servers=http://127.0.0.1:2379');
    expect(JSON.stringify(pod)).not.toMatch(/password=|:\/\/[^$]*:[^$]+@/);
  });

  test('size presets and per-component resources; GOMEMLIMIT and GOMAXPROCS follow each container limit', () => {
    const spec = (cp: K8sControlPlane) => {
      const objects = synth(cp);
      const api = find(objects, 'Deployment', 'kube-apiserver').spec.template.spec.containers;
      const kcm = find(objects, 'Deployment', 'kube-controller-manager').spec.template.spec.containers;
      return Object.fromEntries([...api, ...kcm].map((c: any) => [c.name, c]));
    };
    const { app, hosting } = setup();
    const medium = spec(new K8sControlPlane(app, 'm', { hosting }));
    expect(medium['kube-apiserver'].resources).toEqual({
      limits: { cpu: '2000m', memory: '512Mi' },
      requests: { cpu: '20m', memory: '192Mi' },
    });
    for (const c of Object.values(medium)) {
      expect((c as any).env).toContainEqual({
        name: 'GOMEMLIMIT',
        valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1' } },
      });
      // Whole cores, rounded up by the kubelet: 2 for the API server, 1 for kine and KCM.
      expect((c as any).env).toContainEqual({
        name: 'GOMAXPROCS',
        valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1' } },
      });
    }
    const small = spec(
      new K8sControlPlane(app, 's', {
        hosting,
        size: 'small',
        resources: {
          kine: { cpuRequestMillis: 20, cpuLimitMillis: 200, memoryRequestMi: 32, memoryLimitMi: 96 },
        },
      }),
    );
    expect(small['kube-apiserver'].resources).toEqual({
      limits: { cpu: '2000m', memory: '384Mi' },
      requests: { cpu: '15m', memory: '160Mi' },
    });
    expect(small.kine.resources).toEqual({
      limits: { cpu: '200m', memory: '96Mi' },
      requests: { cpu: '20m', memory: '32Mi' },
    });
    expect(small['kube-controller-manager'].resources.limits.memory).toBe('128Mi');
  });

  test("the API server's probes: ready within a second of /readyz, then a readiness probe every 10 s", () => {
    const { app, hosting } = setup();
    const c = find(
      synth(new K8sControlPlane(app, 'pr', { hosting })),
      'Deployment',
      'kube-apiserver',
    ).spec.template.spec.containers.find((x: any) => x.name === 'kube-apiserver');
    // The kubelet runs the readiness probe as soon as the startup probe passes: both ask /readyz.
    expect(c.startupProbe).toMatchObject({ httpGet: { path: '/readyz', scheme: 'HTTPS' }, periodSeconds: 1 });
    expect(c.readinessProbe).toMatchObject({ httpGet: { path: '/readyz' }, periodSeconds: 10, failureThreshold: 3 });
    expect(c.livenessProbe).toMatchObject({ httpGet: { path: '/livez' }, periodSeconds: 10 });
  });

  test.each([[2], [0]])(
    "a tenant reserves what its containers request (bootSlots %p): KCM's waiter adds nothing",
    (bootSlots) => {
      const { app, hosting } = setup({ bootSlots });
      // The scheduler counts max(largest init container, sum of containers) per resource: what a node must hold free.
      const millis = (q: string) => (q.endsWith('m') ? Number(q.slice(0, -1)) : Number(q) * 1000);
      const podCpu = (pod: any) =>
        Math.max(
          ...(pod.initContainers ?? []).map((c: any) => millis(c.resources.requests.cpu)),
          pod.containers.reduce((sum: number, c: any) => sum + millis(c.resources.requests.cpu), 0),
        );
      for (const [size, perTenant] of [
        ['small', 25],
        ['medium', 30],
        ['large', 800],
      ] as const) {
        const objects = synth(new K8sControlPlane(app, `r${size}`, { hosting, size }));
        const total = ['kube-apiserver', 'kube-controller-manager']
          .map((d) => podCpu(find(objects, 'Deployment', d).spec.template.spec))
          .reduce((a, b) => a + b, 0);
        expect({ size, total }).toEqual({ size, total: perTenant });
      }
    },
  );

  test('sleeping: zero replicas and the sleeping annotation; data and Secrets untouched', () => {
    const { app, hosting } = setup();
    const objects = synth(new K8sControlPlane(app, 'zz', { hosting, sleeping: true }));
    expect(find(objects, 'Deployment', 'kube-apiserver').spec.replicas).toBe(0);
    expect(find(objects, 'Deployment', 'kube-controller-manager').spec.replicas).toBe(0);
    expect(find(objects, 'ControlPlane', 'zz').metadata.annotations).toEqual({
      'kflex.kubestellar.org/sleeping': 'true',
      // What a wake (kflex wake, or the activator through the controller) restores.
      'kflex.kubestellar.org/awake-replicas': 'Deployment/kube-apiserver=1,Deployment/kube-controller-manager=1',
    });
    const awake = synth(new K8sControlPlane(app, 'aw', { hosting }));
    expect(find(awake, 'Deployment', 'kube-apiserver').spec.replicas).toBe(1);
    expect(find(awake, 'ControlPlane', 'aw').metadata.annotations).toBeUndefined();
  });

  test('controller manager runs the denatured set without leader election', () => {
    const c = find(synth(make()), 'Deployment', 'kube-controller-manager').spec.template.spec.containers[0];
    const controllers = c.args
      .find((a: string) => a.startsWith('--controllers='))
      .split('=')[1]
      .split(',');
    expect(controllers).toContain('clusterrole-aggregation-controller');
    expect(controllers).toContain('garbage-collector-controller');
    expect(controllers).toContain('namespace-controller');
    expect(controllers).not.toContain('*');
    expect(c.args).toContain('--leader-elect=false');
  });

  test('workloads meet the restricted pod security standard', () => {
    for (const d of synth(make()).filter((o) => o.kind === 'Deployment' || o.kind === 'Job')) {
      const pod = d.spec.template.spec;
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      for (const c of pod.containers) {
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
      }
    }
  });

  test('no object of a tenant refers to the PostgreSQL superuser: the controller makes its database, kine reads its own password', () => {
    const objects = synth(make());
    expect(objects.some((o) => o.kind === 'Job')).toBe(false);
    expect(JSON.stringify(objects)).not.toMatch(/postgres-postgresql"|postgres-password|db-credentials/);
    const kine = find(objects, 'Deployment', 'kube-apiserver').spec.template.spec.containers[0];
    expect(kine.env[0]).toEqual({
      name: 'KINE_DB_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'kine-postgres', key: 'password' } },
    });
  });

  test('tenant name with dashes maps to an underscore database name', () => {
    const { app, hosting } = setup();
    const kine = find(synth(new K8sControlPlane(app, 'x', { hosting, name: 'team-a' })), 'Deployment', 'kube-apiserver')
      .spec.template.spec.containers[0];
    expect(kine.env[1].value).toMatch(/^postgres:\/\/team_a:\$\(KINE_DB_PASSWORD\)@[^/]+\/team_a\?/);
  });

  test('on OpenShift a passthrough Route replaces the Ingress', () => {
    const objects = synth(make({ isOpenShift: true }));
    expect(objects.some((o) => o.kind === 'Ingress')).toBe(false);
    expect(find(objects, 'Route', 'cp1')).toEqual({
      apiVersion: 'route.openshift.io/v1',
      kind: 'Route',
      metadata: {
        name: 'cp1',
        namespace: 'cp1-system',
        labels: cpLabels('cp1'),
        annotations: { 'openshift.io/host.generated': 'true' },
      },
      spec: {
        to: { kind: 'Service', name: 'cp1', weight: 100 },
        port: { targetPort: 'https' },
        tls: { termination: 'passthrough', insecureEdgeTerminationPolicy: 'None' },
        wildcardPolicy: 'None',
      },
    });
  });

  test('an external PostgreSQL is used as given', () => {
    const objects = synth(
      make({
        externalPostgres: { host: 'pg.example.com', port: 6432, passwordSecretName: 'pg-admin', superuser: 'admin' },
      }),
    );
    const kine = find(objects, 'Deployment', 'kube-apiserver').spec.template.spec.containers[0];
    expect(kine.env[1].value).toBe('postgres://cp1:$(KINE_DB_PASSWORD)@pg.example.com:6432/cp1?sslmode=prefer');
    // The controller reads where and as whom it makes tenant databases from kubeflex-config.
    const config = find(
      synth(
        setup({
          externalPostgres: { host: 'pg.example.com', port: 6432, passwordSecretName: 'pg-admin', superuser: 'admin' },
        }).hosting,
      ),
      'ConfigMap',
      'kubeflex-config',
    ).data;
    expect(config).toMatchObject({
      postgresHost: 'pg.example.com',
      postgresPort: '6432',
      postgresSuperuser: 'admin',
      postgresPasswordSecret: 'pg-admin',
    });
  });
  test('the bundled PostgreSQL serves TLS with the minted certificate; clients verify it by default', () => {
    const objects = synth(make());
    const hostingObjects = synth(setup().hosting);
    const sts = find(hostingObjects, 'StatefulSet', 'postgres-postgresql').spec.template.spec;
    const pg = sts.containers[0];
    expect(pg.args).toEqual(
      expect.arrayContaining([
        'ssl=on',
        'ssl_cert_file=/etc/postgresql/tls/tls.crt',
        'ssl_key_file=/etc/postgresql/tls/tls.key',
        'ssl_min_protocol_version=TLSv1.2',
      ]),
    );
    // The server key only, never the CA key; group-readable through fsGroup, as PostgreSQL accepts for root-owned keys.
    expect(sts.volumes.find((v: any) => v.name === 'tls')).toEqual({
      name: 'tls',
      secret: {
        secretName: 'postgres-postgresql-tls',
        defaultMode: 0o440,
        items: [
          { key: 'tls.crt', path: 'tls.crt' },
          { key: 'tls.key', path: 'tls.key' },
        ],
      },
    });
    expect(find(hostingObjects, 'ConfigMap', 'kubeflex-config').data).toMatchObject({
      postgresSslMode: 'verify-full',
      postgresCaSecret: 'postgres-postgresql-tls',
      postgresCaKey: 'ca.crt',
    });
    expect(find(objects, 'Deployment', 'kube-apiserver').spec.template.spec.containers[0].env[1].value).toMatch(
      /sslmode=verify-full&sslrootcert=\/etc\/postgresql-ca\/ca\.crt$/,
    );
  });

  test('an external PostgreSQL with its CA is verified: kine gets the CA certificate only', () => {
    const objects = synth(
      make({
        externalPostgres: { host: 'pg.example.com', passwordSecretName: 'pg-admin', caSecretName: 'pg-ca' },
      }),
    );
    const kine = find(objects, 'Deployment', 'kube-apiserver').spec.template.spec;
    expect(kine.containers[0].env[1].value).toBe(
      'postgres://cp1:$(KINE_DB_PASSWORD)@pg.example.com:5432/cp1?sslmode=verify-full&sslrootcert=/etc/postgresql-ca/ca.crt',
    );
    expect(kine.containers[0].volumeMounts).toEqual([
      { mountPath: '/etc/postgresql-ca', name: 'postgres-ca', readOnly: true },
    ]);
    expect(kine.volumes.find((v: any) => v.name === 'postgres-ca')).toEqual({
      name: 'postgres-ca',
      secret: { secretName: 'kine-postgres', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
    });
  });
  test('tenant API servers store privileged Pods by default (KubeFlex, Kamaji); allowPrivileged: false turns it off', () => {
    const { app, hosting } = setup();
    const args = (cp: K8sControlPlane) =>
      find(synth(cp), 'Deployment', 'kube-apiserver').spec.template.spec.containers.find(
        (c: any) => c.name === 'kube-apiserver',
      ).args;
    expect(args(new K8sControlPlane(app, 'p1', { hosting }))).toContain('--allow-privileged=true');
    expect(args(new K8sControlPlane(app, 'p2', { hosting, allowPrivileged: false }))).toContain(
      '--allow-privileged=false',
    );
  });

  test('the controller manager is replaced, never rolled (one KCM, no leader election)', () => {
    const { app, hosting } = setup();
    const kcm = find(synth(new K8sControlPlane(app, 'r1', { hosting })), 'Deployment', 'kube-controller-manager');
    expect(kcm.spec.strategy).toEqual({ type: 'Recreate' });
    expect(kcm.spec.template.spec.containers[0].args).toContain('--leader-elect=false');
  });

  test('with a hosting gateway: a TLS passthrough TLSRoute (Gateway API v1) replaces the Ingress; policies admit the gateway namespace', () => {
    const { app, hosting } = setup({ gateway: { name: 'tenants', namespace: 'gateway-system', sectionName: 'tls' } });
    const objects = synth(new K8sControlPlane(app, 'gw', { hosting }));
    expect(objects.filter((o) => o.kind === 'Ingress')).toEqual([]);
    expect(find(objects, 'TLSRoute', 'gw')).toEqual({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'TLSRoute',
      metadata: expect.objectContaining({ name: 'gw', namespace: 'gw-system' }),
      spec: {
        parentRefs: [
          {
            group: 'gateway.networking.k8s.io',
            kind: 'Gateway',
            name: 'tenants',
            namespace: 'gateway-system',
            sectionName: 'tls',
          },
        ],
        hostnames: ['gw.localtest.me'],
        rules: [{ backendRefs: [{ group: '', kind: 'Service', name: 'gw', port: 443 }] }],
      },
    });
    const api = objects.find((o) => o.kind === 'NetworkPolicy' && JSON.stringify(o).includes('kube-apiserver'));
    expect(JSON.stringify(api)).toContain('"kubernetes.io/metadata.name":"gateway-system"');
    const config = synth(hosting).find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'kubeflex-config');
    expect(config.data).toMatchObject({
      gatewayName: 'tenants',
      gatewayNamespace: 'gateway-system',
      gatewaySectionName: 'tls',
      ingressNamespace: 'gateway-system',
    });
  });

  test('kubernetesVersion picks both images of that release; the default is the first minor', () => {
    const { app, hosting } = setup();
    const images = (cp: K8sControlPlane) =>
      synth(cp)
        .filter((o) => o.kind === 'Deployment')
        .flatMap((o) => o.spec.template.spec.containers.map((c: any) => c.image))
        .filter((i: string) => i.startsWith('registry.k8s.io/'));
    expect(images(new K8sControlPlane(app, 'v32', { hosting }))).toEqual([
      'registry.k8s.io/kube-apiserver:v1.32.2',
      'registry.k8s.io/kube-controller-manager:v1.32.2',
    ]);
    for (const v of ['1.33', 'v1.33', 'v1.33.13']) {
      expect(
        images(new K8sControlPlane(app, `v33-${v.replace(/\./g, '')}`, { hosting, kubernetesVersion: v })),
      ).toEqual(['registry.k8s.io/kube-apiserver:v1.33.13', 'registry.k8s.io/kube-controller-manager:v1.33.13']);
    }
  });

  test('replicas: 3 -> leader election, rolling KCM, spread by hostname, a PodDisruptionBudget each, priority', () => {
    const { app, hosting } = setup();
    const objects = synth(
      new K8sControlPlane(app, 'ha', { hosting, replicas: 3, priorityClassName: 'system-cluster-critical' }),
    );
    const api = find(objects, 'Deployment', 'kube-apiserver');
    const kcm = find(objects, 'Deployment', 'kube-controller-manager');
    expect([api.spec.replicas, kcm.spec.replicas]).toEqual([3, 3]);
    expect(kcm.spec.strategy.type).toBe('RollingUpdate');
    const kcmArgs = kcm.spec.template.spec.containers[0].args;
    expect(kcmArgs).toContain('--leader-elect=true');
    const apiArgs = api.spec.template.spec.containers[1].args;
    // Identity leases serve several replicas; a stopping replica keeps serving until its endpoint is gone.
    expect(apiArgs.filter((a: string) => a.startsWith('--feature-gates'))).toEqual([]);
    expect(apiArgs).toContain('--shutdown-delay-duration=5s');
    // Replicas share the database: each kine finds the others' writes by its poll, so it keeps kine's 1 s.
    const kineArgs = api.spec.template.spec.containers[0].args;
    expect(kineArgs.filter((a: string) => a.startsWith('--datastore-poll-interval'))).toEqual([]);
    // Three replicas and a replacement starting beside a terminating Pod: four pools within the role's limit.
    expect(kineArgs).toContain('--datastore-max-open-connections=10');
    expect(kineArgs).toContain('--datastore-max-idle-connections=10');
    expect(4 * 10 + TENANT_DB_RESERVED_CONNECTIONS).toBeLessThanOrEqual(TENANT_DB_CONNECTION_LIMIT);
    for (const [d, app] of [
      [api, 'kube-apiserver'],
      [kcm, 'kube-controller-manager'],
    ]) {
      expect(d.spec.template.spec.priorityClassName).toBe('system-cluster-critical');
      expect(d.spec.template.spec.affinity).toEqual({
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 100,
              podAffinityTerm: {
                topologyKey: 'kubernetes.io/hostname',
                labelSelector: { matchLabels: { app } },
              },
            },
          ],
        },
      });
      expect(find(objects, 'PodDisruptionBudget', app)).toEqual({
        apiVersion: 'policy/v1',
        kind: 'PodDisruptionBudget',
        metadata: expect.objectContaining({ name: app, namespace: 'ha-system' }),
        spec: { maxUnavailable: 1, selector: { matchLabels: { app } } },
      });
    }
    const strict = synth(new K8sControlPlane(app, 'strict', { hosting, replicas: 2, requireDistinctNodes: true }));
    expect(
      find(strict, 'Deployment', 'kube-apiserver').spec.template.spec.affinity.podAntiAffinity
        .requiredDuringSchedulingIgnoredDuringExecution,
    ).toEqual([{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: 'kube-apiserver' } } }]);
    // One replica: no PDB (it would block every drain), no spread.
    const single = synth(new K8sControlPlane(app, 'single', { hosting }));
    expect(single.filter((o) => o.kind === 'PodDisruptionBudget')).toEqual([]);
    expect(find(single, 'Deployment', 'kube-apiserver').spec.template.spec.affinity).toBeUndefined();
  });

  test('oidc: --oidc-* flags and the issuer CA from a ConfigMap; extraArgs after ours', () => {
    const { app, hosting } = setup();
    const objects = synth(
      new K8sControlPlane(app, 'sso', {
        hosting,
        oidc: {
          issuerUrl: 'https://login.example.com/realms/team',
          clientId: 'kubernetes',
          usernameClaim: 'email',
          usernamePrefix: '-',
          groupsClaim: 'groups',
          requiredClaims: { tenant: 'sso', hd: 'example.com' },
          caConfigMap: { name: 'sso-ca', key: 'root.pem' },
        },
        extraArgs: { apiServer: { 'max-requests-inflight': '200' }, controllerManager: { 'concurrent-gc-syncs': '5' } },
      }),
    );
    const api = find(objects, 'Deployment', 'kube-apiserver').spec.template.spec;
    const args: string[] = api.containers[1].args;
    expect(args.filter((a) => a.startsWith('--oidc-') || a.startsWith('--max-requests'))).toEqual([
      '--oidc-issuer-url=https://login.example.com/realms/team',
      '--oidc-client-id=kubernetes',
      '--oidc-username-claim=email',
      '--oidc-username-prefix=-',
      '--oidc-groups-claim=groups',
      '--oidc-groups-prefix=oidc:',
      '--oidc-required-claim=hd=example.com',
      '--oidc-required-claim=tenant=sso',
      '--oidc-signing-algs=RS256',
      '--oidc-ca-file=/etc/kubernetes/oidc/ca.crt',
      '--max-requests-inflight=200',
    ]);
    expect(args[args.length - 1]).toBe('--max-requests-inflight=200');
    expect(api.volumes).toContainEqual({
      name: 'oidc-ca',
      configMap: { name: 'sso-ca', items: [{ key: 'root.pem', path: 'ca.crt' }] },
    });
    expect(api.containers[1].volumeMounts).toContainEqual({
      name: 'oidc-ca',
      mountPath: '/etc/kubernetes/oidc',
      readOnly: true,
    });
    const kcmArgs = find(objects, 'Deployment', 'kube-controller-manager').spec.template.spec.containers[0].args;
    expect(kcmArgs[kcmArgs.length - 1]).toBe('--concurrent-gc-syncs=5');
  });
});

describe('K3sControlPlane', () => {
  test('server-only k3s with configurable PVCs and no privileges', () => {
    const { app, hosting } = setup();
    const objects = synth(new K3sControlPlane(app, 'k', { hosting, storageClassName: 'fast', dataStorageSize: '5Gi' }));
    expect(find(objects, 'PersistentVolumeClaim', 'k3s-data').spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '5Gi' } },
      storageClassName: 'fast',
      volumeMode: 'Filesystem',
    });
    expect(find(objects, 'PersistentVolumeClaim', 'k3s-config').spec.resources.requests.storage).toBe('1Gi');
    const sts = find(objects, 'StatefulSet', 'k3s-server');
    expect(sts.spec.serviceName).toBe('k3s');
    const c = sts.spec.template.spec.containers[0];
    expect(c.args).toEqual(expect.arrayContaining(['server', '--disable-agent', '--tls-san=k.localtest.me']));
    expect(c.args.find((a: string) => a.startsWith('--disable='))).toBe(
      '--disable=traefik,servicelb,metrics-server,local-storage,coredns',
    );
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(find(objects, 'Service', 'k3s').spec.ports).toEqual([{ name: 'https', port: 443, targetPort: 6443 }]);
    expect(JSON.stringify(objects)).not.toContain('"standard"');
  });

  test('without a storage class the cluster default is used', () => {
    const { app, hosting } = setup();
    const pvc = find(synth(new K3sControlPlane(app, 'k', { hosting })), 'PersistentVolumeClaim', 'k3s-data');
    expect(pvc.spec.storageClassName).toBeUndefined();
  });
  test('PVC sizes are kept as written, Mi included (found by the generated test: "500Mi" used to crash synth)', () => {
    const { app, hosting } = setup();
    const objects = synth(
      new K3sControlPlane(app, 'k', { hosting, dataStorageSize: '500Mi', configStorageSize: '2Ti' }),
    );
    expect(find(objects, 'PersistentVolumeClaim', 'k3s-data').spec.resources.requests.storage).toBe('500Mi');
    expect(find(objects, 'PersistentVolumeClaim', 'k3s-config').spec.resources.requests.storage).toBe('2Ti');
  });
});

describe('VClusterControlPlane', () => {
  test('chart objects without credentials, version pinned', () => {
    const { app, hosting } = setup();
    const objects = synth(new VClusterControlPlane(app, 'v', { hosting }));
    const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names).toEqual(
      expect.arrayContaining([
        'ServiceAccount/vc-vcluster',
        'ServiceAccount/vc-workload-vcluster',
        'RoleBinding/vc-vcluster',
        'Secret/vc-config-vcluster',
        'Service/vcluster',
        'Service/vcluster-headless',
        'StatefulSet/vcluster',
        'Ingress/v',
      ]),
    );
    const config = find(objects, 'Secret', 'vc-config-vcluster');
    expect(Object.keys(config.stringData)).toEqual(['config.yaml']);
    expect(config.stringData['config.yaml']).toContain('server: https://v.localtest.me:9443');
    const sts = find(objects, 'StatefulSet', 'vcluster');
    expect(sts.spec.volumeClaimTemplates[0].spec.resources.requests.storage).toBe('5Gi');
    expect(sts.spec.template.spec.containers[0].image).toMatch(/^ghcr\.io\/loft-sh\/vcluster-oss:\d+\.\d+\.\d+$/);
  });
});

describe('PostCreateHook', () => {
  const template = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: '{{.HookName}}-cm' },
    data: { a: '{{.A}}', b: '{{ .B }}', ns: '{{.Namespace}}', cp: '{{.ControlPlaneName}}' },
  };

  test('renders with KubeFlex precedence: defaultVars < globalVars < vars < built-ins', () => {
    const { app, hosting } = setup();
    new PostCreateHook(hosting, 'h', {
      hosting,
      templates: [template],
      defaultVars: { A: 'default-a', B: 'default-b', Namespace: 'ignored' },
    });
    const cp = new HostControlPlane(app, 'cp', {
      allowPostCreateHooks: true,
      hosting,
      globalVars: { A: 'global-a', B: 'global-b' },
      postCreateHooks: [{ hook: 'h', vars: { B: 'use-b' } }],
    });
    const objects = synth(cp);
    expect(find(objects, 'ConfigMap', 'h-cm')).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'h-cm', namespace: 'cp-system', labels: cpLabels('cp') },
      data: { a: 'global-a', b: 'use-b', ns: 'cp-system', cp: 'cp' },
    });
    expect(find(objects, 'ControlPlane', 'cp').spec.postCreateHooks).toEqual([{ hookName: 'h', vars: { B: 'use-b' } }]);
    expect(find(objects, 'ControlPlane', 'cp').spec.globalVars).toEqual({ A: 'global-a', B: 'global-b' });
  });

  test('a hook an admin marked baseline lowers its planes to baseline (warning at restricted), both ways', () => {
    const { app, hosting } = setup();
    // KubeStellar's transport-controller shape: no securityContext at all (meets baseline, not restricted).
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'transport-controller' },
      spec: {
        selector: { matchLabels: { app: 't' } },
        template: {
          metadata: { labels: { app: 't' } },
          spec: { containers: [{ name: 't', image: 'ghcr.io/kubestellar/ocm-transport-controller:0.30.0' }] },
        },
      },
    };
    new PostCreateHook(hosting, 'strict', { hosting, templates: [deployment] });
    expect(() => new K8sControlPlane(app, 'refused', { hosting, postCreateHooks: [{ hook: 'strict' }] })).toThrow(
      /enforces Pod Security "restricted" and would refuse this pod/,
    );
    const hook = new PostCreateHook(hosting, 'transport', {
      hosting,
      templates: [{ ...deployment, metadata: { name: 'transport-controller-2' } }],
      podSecurity: 'baseline',
    });
    expect(find(synth(hosting), 'PostCreateHook', 'transport').metadata.annotations).toEqual({
      'kflex.kubestellar.org/pod-security': 'baseline',
    });
    const cp = new K8sControlPlane(app, 'wds1', { hosting, postCreateHooks: [{ hook }] });
    expect(cp.podSecurity).toBe('baseline');
    expect(find(synth(cp), 'Namespace', 'wds1-system').metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'baseline',
      'pod-security.kubernetes.io/warn': 'restricted',
    });
    // A plane without that hook stays restricted.
    const other = new K8sControlPlane(app, 'plain', { hosting });
    expect(find(synth(other), 'Namespace', 'plain-system').metadata.labels['pod-security.kubernetes.io/enforce']).toBe(
      'restricted',
    );
  });

  test('emits the PostCreateHook object and propagates its labels to control planes', () => {
    const { app, hosting } = setup();
    const hook = new PostCreateHook(hosting, 'h', {
      hosting,
      templates: [template],
      defaultVars: { A: '1', B: '2' },
      labels: { flavor: 'x' },
    });
    expect(find(synth(hosting), 'PostCreateHook', 'h')).toEqual({
      apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
      kind: 'PostCreateHook',
      metadata: { name: 'h', labels: { 'app.kubernetes.io/part-of': 'kubeflex', flavor: 'x' } },
      spec: {
        templates: [template],
        defaultVars: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
      },
    });
    const cp = new HostControlPlane(app, 'cp', { hosting, allowPostCreateHooks: true, postCreateHooks: [{ hook }] });
    expect(find(synth(cp), 'ControlPlane', 'cp').metadata.labels.flavor).toBe('x');
  });

  test('cluster-scoped templates are marked for garbage collection with the control plane', () => {
    const { app, hosting } = setup();
    new PostCreateHook(hosting, 'crd', {
      hosting,
      allowClusterScoped: true,
      templates: [
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: '{{.ControlPlaneName}}-r' },
        },
      ],
    });
    const cr = find(
      synth(
        new HostControlPlane(app, 'cp', { hosting, allowPostCreateHooks: true, postCreateHooks: [{ hook: 'crd' }] }),
      ),
      'ClusterRole',
      'cp-r',
    );
    expect(cr.metadata.namespace).toBeUndefined();
    expect(cr.metadata.labels['app.kubernetes.io/managed-by']).toBe('Helm');
    expect(cr.metadata.annotations).toEqual({ 'meta.helm.sh/release-namespace': 'cp-system' });
  });

  test('Jobs that mount the tenant kubeconfig wait for the tenant API first', () => {
    const { app, hosting } = setup();
    const job = (secretName: string) => ({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: `j-${secretName}` },
      spec: {
        template: {
          spec: {
            restartPolicy: 'Never',
            volumes: [{ name: 'kc', secret: { secretName } }],
            containers: [{ name: 'c', image: 'x' }],
          },
        },
      },
    });
    new PostCreateHook(hosting, 'j', { hosting, templates: [job('vc-vcluster'), job('other')] });
    const objects = synth(new VClusterControlPlane(app, 'v', { hosting, postCreateHooks: [{ hook: 'j' }] }));
    const waiting = find(objects, 'Job', 'j-vc-vcluster').spec.template.spec.initContainers;
    expect(waiting).toHaveLength(1);
    expect(waiting[0].name).toBe('wait-for-control-plane');
    expect(waiting[0].args[0]).toBe('--kubeconfig=/var/run/kubeflex/kubeconfig/config-incluster');
    expect(waiting[0].volumeMounts).toEqual([
      { name: 'kc', mountPath: '/var/run/kubeflex/kubeconfig', readOnly: true },
    ]);
    expect(find(objects, 'Job', 'j-other').spec.template.spec.initContainers).toBeUndefined();
  });

  test('every hook workload that uses the tenant kubeconfig waits for the tenant API, not only Jobs (KubeFlex #490)', () => {
    const { app, hosting } = setup();
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'syncer' },
      spec: {
        selector: { matchLabels: { app: 's' } },
        template: {
          metadata: { labels: { app: 's' } },
          spec: {
            containers: [
              {
                name: 'c',
                image: 'x',
                env: [
                  {
                    name: 'KC',
                    valueFrom: { secretKeyRef: { name: 'admin-kubeconfig', key: 'kubeconfig-incluster' } },
                  },
                ],
              },
            ],
          },
        },
      },
    };
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'once' },
      spec: {
        volumes: [
          {
            name: 'kc',
            secret: { secretName: 'admin-kubeconfig', items: [{ key: 'kubeconfig-incluster', path: 'kc.yaml' }] },
          },
        ],
        containers: [{ name: 'c', image: 'x' }],
      },
    };
    const cronJob = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'nightly' },
      spec: {
        schedule: '0 0 * * *',
        jobTemplate: {
          spec: {
            template: {
              spec: {
                restartPolicy: 'Never',
                containers: [{ name: 'c', image: 'x', envFrom: [{ secretRef: { name: 'admin-kubeconfig' } }] }],
              },
            },
          },
        },
      },
    };
    const unrelated = {
      ...deployment,
      metadata: { name: 'plain' },
      spec: {
        ...deployment.spec,
        template: { metadata: { labels: { app: 's' } }, spec: { containers: [{ name: 'c', image: 'x' }] } },
      },
    };
    new PostCreateHook(hosting, 'w', { hosting, templates: [deployment, pod, cronJob, unrelated] });
    const objects = synth(
      new K8sControlPlane(app, 'k', { hosting, podSecurity: 'privileged', postCreateHooks: [{ hook: 'w' }] }),
    );
    const d = find(objects, 'Deployment', 'syncer').spec.template.spec;
    expect(d.initContainers.map((c: any) => [c.name, c.args[0], c.volumeMounts[0].name])).toEqual([
      [
        'wait-for-control-plane',
        '--kubeconfig=/var/run/kubeflex/kubeconfig/kubeconfig-incluster',
        'kubeflex-wait-kubeconfig',
      ],
    ]);
    expect(d.volumes).toEqual([
      {
        name: 'kubeflex-wait-kubeconfig',
        secret: {
          secretName: 'admin-kubeconfig',
          items: [{ key: 'kubeconfig-incluster', path: 'kubeconfig-incluster' }],
        },
      },
    ]);
    const p = find(objects, 'Pod', 'once').spec;
    expect(p.initContainers[0].args[0]).toBe('--kubeconfig=/var/run/kubeflex/kubeconfig/kc.yaml');
    expect(p.initContainers[0].volumeMounts[0].name).toBe('kc');
    expect(find(objects, 'CronJob', 'nightly').spec.jobTemplate.spec.template.spec.initContainers).toHaveLength(1);
    expect(find(objects, 'Deployment', 'plain').spec.template.spec.initContainers).toBeUndefined();
  });
});

describe('the datastore room', () => {
  test("one server today: every tenant's database is on the hosting install's server, or nowhere", () => {
    const { app, hosting } = setup();
    const cp = new K8sControlPlane(app, 'cp1', { hosting });
    expect(datastoreOf(hosting).serverFor(cp.names)).toBe(hosting.postgres);
    expect(datastoreOf({}).serverFor(cp.names)).toBeUndefined();
    expect(singleServer(hosting.postgres).serverFor(cp.names)?.host).toBe('postgres-postgresql.kubeflex-system.svc');
  });
});
