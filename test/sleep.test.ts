// Sleep on idle and wake on request, without a cluster: the idle timeout's format and bounds, the construct's and the
// hosting install's output, the controller's idle decision, and the activator's plain decisions.
import { HostControlPlane, K3sControlPlane, K8sControlPlane, VClusterControlPlane } from '../lib';
import {
  activatorSlice,
  allocatePort,
  readyEndpoint,
  servedPlane,
  sliceCurrent,
  slicePort,
} from '../lib/activator/core';
import {
  auditEventTotal,
  baselineActivity,
  idleDecision,
  idleTimeoutMs,
  managerDecision,
  managerTimeoutMs,
  observeActivity,
  readDue,
} from '../lib/controller/sleep';
import { decodeHostingConfig, encodeHostingConfig, HostingConfig } from '../lib/hosting-config';
import { decodeAwakeReplicas, encodeAwakeReplicas, parseIdleTimeout } from '../lib/idle';
import { find, setup, synth, expectConfigError } from './helpers';

describe('the idle timeout', () => {
  test.each([
    ['60s', 60],
    ['15m', 900],
    ['1h30m', 5400],
    ['2d', 172_800],
    ['1m30s', 90],
  ])('%s is %d s', (text, seconds) => expect(parseIdleTimeout(text)).toEqual({ seconds }));

  test.each([
    ['', 'is not a duration'],
    ['59s', 'below the floor of 60s'],
    ['1m-1s', 'is not a duration'],
    ['15 m', 'is not a duration'],
    ['31d', 'above the ceiling of 30d'],
    ['1.5h', 'is not a duration'],
  ])('%j is refused: %s', (text, why) =>
    expect(parseIdleTimeout(text)).toEqual({ error: expect.stringContaining(why) }),
  );

  test('awake replicas are read strictly: what is not one of ours is left out', () => {
    const text = encodeAwakeReplicas([
      { kind: 'Deployment', name: 'kube-apiserver', replicas: 2 },
      { kind: 'StatefulSet', name: 'k3s-server', replicas: 1 },
    ]);
    expect(text).toBe('Deployment/kube-apiserver=2,StatefulSet/k3s-server=1');
    expect([...decodeAwakeReplicas(text)]).toEqual([
      ['Deployment/kube-apiserver', 2],
      ['StatefulSet/k3s-server', 1],
    ]);
    expect([...decodeAwakeReplicas('Pod/x=1,Deployment/a=0,Deployment/b=1000,Deployment/c=x,Deployment/d=3')]).toEqual([
      ['Deployment/d', 3],
    ]);
  });
});

describe('constructs', () => {
  test('a k8s plane with an idle timeout: the annotation on its ControlPlane, nothing else changes', () => {
    const { app, hosting } = setup({ activator: true });
    const plain = synth(
      new K8sControlPlane(setup({ activator: true }).app, 'cp1', { hosting: setup({ activator: true }).hosting }),
    );
    const objects = synth(new K8sControlPlane(app, 'cp1', { hosting, idleTimeout: '15m' }));
    expect(find(objects, 'ControlPlane', 'cp1').metadata.annotations).toEqual({
      'kflex.kubestellar.org/idle-timeout': '15m',
    });
    const strip = (os: any[]) =>
      os.map((o) => (o.kind === 'ControlPlane' ? { ...o, metadata: { ...o.metadata, annotations: undefined } } : o));
    expect(strip(objects)).toEqual(strip(plain));
  });

  test('a k3s plane takes an idle timeout; its server audits clients, the identities of k3s left out', () => {
    const { app, hosting } = setup({ activator: true });
    const objects = synth(new K3sControlPlane(app, 'k3', { hosting, idleTimeout: '1h' }));
    expect(find(objects, 'ControlPlane', 'k3').metadata.annotations).toEqual({
      'kflex.kubestellar.org/idle-timeout': '1h',
    });
    const server = find(objects, 'StatefulSet', 'k3s-server').spec.template.spec.containers[0];
    expect(server.args).toEqual(
      expect.arrayContaining([
        '--kube-apiserver-arg=audit-policy-file=/etc/kflex-audit/audit-policy.yaml',
        '--kube-apiserver-arg=audit-log-path=-',
      ]),
    );
    expect(find(objects, 'ConfigMap', 'audit-policy').data['audit-policy.yaml']).toContain(
      "users: ['system:apiserver', 'system:kube-controller-manager', 'system:k3s-supervisor', 'system:k3s-controller', 'system:k3s', 'system:admin']",
    );
  });

  test('fails when a vcluster plane gets an idle timeout (its syncer hides who made a request)', () => {
    const { app, hosting } = setup({ activator: true });
    expectConfigError(
      () => new VClusterControlPlane(app, 'vc', { hosting, idleTimeout: '1h' }),
      'VClusterControlPlane "vc"',
      'idleTimeout',
      '"1h"',
      'cannot tell its clients',
    );
  });

  test('a plane made asleep records what to restore on wake: its replicas (an HA plane its two)', () => {
    const { app, hosting } = setup({ activator: true });
    const ha = find(
      synth(new K8sControlPlane(app, 'ha', { hosting, sleeping: true, replicas: 2 })),
      'ControlPlane',
      'ha',
    );
    expect(ha.metadata.annotations).toEqual({
      'kflex.kubestellar.org/sleeping': 'true',
      'kflex.kubestellar.org/awake-replicas': 'Deployment/kube-apiserver=2,Deployment/kube-controller-manager=2',
    });
    const k3 = find(synth(new K3sControlPlane(app, 'k3', { hosting, sleeping: true })), 'ControlPlane', 'k3');
    expect(k3.metadata.annotations['kflex.kubestellar.org/awake-replicas']).toBe('StatefulSet/k3s-server=1');
    const awake = find(synth(new K8sControlPlane(app, 'up', { hosting })), 'ControlPlane', 'up');
    expect(awake.metadata.annotations).toBeUndefined();
  });

  test('fails when the idle timeout is not a duration', () => {
    const { app, hosting } = setup({ activator: true });
    expectConfigError(
      () => new K8sControlPlane(app, 'cp1', { hosting, idleTimeout: 'soon' }),
      'K8sControlPlane "cp1"',
      'idleTimeout',
      '"soon"',
      'is not a duration',
    );
  });

  test('fails when the idle timeout is below the floor', () => {
    const { app, hosting } = setup({ activator: true });
    expectConfigError(
      () => new K8sControlPlane(app, 'cp1', { hosting, idleTimeout: '30s' }),
      'K8sControlPlane "cp1"',
      'idleTimeout',
      '"30s"',
      'below the floor of 60s',
    );
  });

  test('fails when a plane of a type without workloads gets an idle timeout', () => {
    const { app, hosting } = setup({ activator: true });
    expectConfigError(
      () => new HostControlPlane(app, 'h1', { hosting, idleTimeout: '15m' }),
      'HostControlPlane "h1"',
      'idleTimeout',
      'no workloads of its own',
    );
  });

  test('fails when the hosting install runs no activator', () => {
    const { app, hosting } = setup();
    expectConfigError(
      () => new K8sControlPlane(app, 'cp1', { hosting, idleTimeout: '15m' }),
      'K8sControlPlane "cp1"',
      'idleTimeout',
      '"15m"',
      'runs no activator',
    );
  });

  test('fails when the hosting-wide idle timeout has no activator, or is below the floor', () => {
    expectConfigError(
      () => setup({ idleTimeout: '15m' }),
      'KubeflexHosting "hosting"',
      'idleTimeout',
      'needs `activator: true`',
    );
    expectConfigError(
      () => setup({ activator: true, idleTimeout: '10s' }),
      'KubeflexHosting "hosting"',
      'idleTimeout',
      '"10s"',
      'below the floor',
    );
  });

  test('the hosting install with the activator: its Deployment, least rights, and the settings in kubeflex-config', () => {
    const { hosting } = setup({ activator: true, idleTimeout: '30m' });
    const objects = synth(hosting);
    const deployment = find(objects, 'Deployment', 'kubeflex-activator');
    const pod = deployment.spec.template.spec;
    expect(pod.serviceAccountName).toBe('kubeflex-activator');
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(pod.containers[0]).toMatchObject({
      command: ['kubeflex-activator'],
      args: ['--health-port=8083'],
      env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
      securityContext: {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      },
    });
    expect(find(objects, 'ClusterRole', 'kubeflex-activator').rules).toEqual([
      {
        apiGroups: ['tenancy.kflex.kubestellar.org'],
        resourceNames: [],
        resources: ['controlplanes'],
        verbs: ['get', 'list', 'watch', 'patch'],
      },
      {
        apiGroups: ['discovery.k8s.io'],
        resourceNames: [],
        resources: ['endpointslices'],
        verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      },
      { apiGroups: [''], resourceNames: [], resources: ['events'], verbs: ['create', 'patch'] },
    ]);
    expect(find(objects, 'ValidatingAdmissionPolicy', 'kubeflex-activator-scope').spec.matchConditions).toEqual([
      {
        name: 'activator',
        expression: "request.userInfo.username == 'system:serviceaccount:kubeflex-system:kubeflex-activator'",
      },
    ]);
    expect(find(objects, 'ConfigMap', 'kubeflex-config').data).toMatchObject({ activator: 'true', idleTimeout: '30m' });
    // Without the activator, none of it.
    const without = synth(setup().hosting);
    expect(without.filter((o) => o.metadata.name === 'kubeflex-activator')).toEqual([]);
    expect(find(without, 'ConfigMap', 'kubeflex-config').data.activator).toBeUndefined();
  });

  test('the tenant audit policy leaves out the tenant machinery and our probes, so its counter is clients only', () => {
    const { app, hosting } = setup({ activator: true });
    const policy = find(synth(new K8sControlPlane(app, 'cp1', { hosting })), 'ConfigMap', 'audit-policy').data[
      'audit-policy.yaml'
    ];
    expect(policy).toContain("users: ['system:apiserver', 'system:kube-controller-manager']");
    expect(policy).toContain("userGroups: ['system:serviceaccounts:kube-system']");
    expect(policy).toContain("resourceNames: ['kubeflex:admins']");
    expect(policy).toContain("'/metrics'");
  });
});

describe("the controller's idle decision", () => {
  const metrics = [
    '# HELP apiserver_audit_event_total [ALPHA] Counter of audit events generated and sent to the audit backend.',
    '# TYPE apiserver_audit_event_total counter',
    'apiserver_audit_event_total 42',
    'apiserver_audit_event_total_other 7',
    'apiserver_audit_level_total{level="Metadata"} 42',
  ].join('\n');

  test('reads the audit counter, and only it', () => {
    expect(auditEventTotal(metrics)).toBe(42);
    expect(auditEventTotal('apiserver_request_total 5\n')).toBeUndefined();
    expect(auditEventTotal('apiserver_audit_event_total{a="1"} 2\napiserver_audit_event_total{a="2"} 3\n')).toBe(5);
  });

  test('a moved counter, or a restarted API server, is activity now; an unmoved one keeps its time', () => {
    const a = observeActivity(undefined, 5, 1000);
    expect(a).toEqual({ count: 5, sinceMs: 1000 });
    expect(observeActivity(a, 5, 9000)).toBe(a);
    expect(observeActivity(a, 6, 9000)).toEqual({ count: 6, sinceMs: 9000 });
    expect(observeActivity(a, 0, 9000)).toEqual({ count: 0, sinceMs: 9000 });
  });

  test('sleeps once idle for the timeout; else looks again after a quarter of it (15 s to 5 min), never past it', () => {
    const a = { count: 1, sinceMs: 0 };
    expect(idleDecision(a, 60_000, 60_000)).toEqual({ sleep: true });
    expect(idleDecision(a, 60_000, 10_000)).toEqual({ sleep: false, checkAfterMs: 15_000 });
    expect(idleDecision(a, 60_000, 50_000)).toEqual({ sleep: false, checkAfterMs: 10_000 });
    expect(idleDecision(a, 3_600_000, 0)).toEqual({ sleep: false, checkAfterMs: 300_000 });
  });

  const config = (more: Partial<HostingConfig> = {}) =>
    decodeHostingConfig({ ...encodeHostingConfig({ ...decodeHostingConfig({}), ...more } as HostingConfig) });
  const cp = (type: string, annotations?: Record<string, string>) => ({
    metadata: { name: 'a', annotations },
    spec: { type },
  });

  test('the timeout: the plane annotation, else the hosting default; none without the activator or for host planes', () => {
    expect(idleTimeoutMs(cp('k8s', { 'kflex.kubestellar.org/idle-timeout': '2m' }), config({ activator: true }))).toBe(
      120_000,
    );
    expect(idleTimeoutMs(cp('k8s'), config({ activator: true, idleTimeout: '1h' }))).toBe(3_600_000);
    expect(idleTimeoutMs(cp('k8s'), config({ activator: true }))).toBeUndefined();
    expect(idleTimeoutMs(cp('k8s', { 'kflex.kubestellar.org/idle-timeout': '2m' }), config())).toBeUndefined();
    expect(
      idleTimeoutMs(cp('host', { 'kflex.kubestellar.org/idle-timeout': '2m' }), config({ activator: true })),
    ).toBeUndefined();
    // A tampered annotation is ignored (synth and the materializer refuse it first).
    expect(
      idleTimeoutMs(cp('k8s', { 'kflex.kubestellar.org/idle-timeout': '1s' }), config({ activator: true })),
    ).toBeUndefined();
  });

  test('kubeflex-config refuses a bad idle timeout, naming the key', () => {
    expect(() => decodeHostingConfig({ activator: 'true', idleTimeout: '5s' })).toThrow(
      'ConfigMap kubeflex-config key idleTimeout="5s" is below the floor of 60s',
    );
    expect(() => decodeHostingConfig({ managerIdleTimeout: 'soon' })).toThrow(
      'ConfigMap kubeflex-config key managerIdleTimeout="soon" is not a duration',
    );
  });
});

describe("parking an idle plane's kube-controller-manager", () => {
  const config = (more: Partial<HostingConfig> = {}) =>
    decodeHostingConfig({ ...encodeHostingConfig({ ...decodeHostingConfig({}), ...more } as HostingConfig) });
  const cp = (type: string) => ({ metadata: { name: 'a' }, spec: { type } });

  test('the hosting install parks after 10 minutes by default, writes it to kubeflex-config, and `off` switches it off', () => {
    const data = (props: Parameters<typeof setup>[0]) =>
      find(synth(setup(props).hosting), 'ConfigMap', 'kubeflex-config').data;
    expect(data({}).managerIdleTimeout).toBe('10m');
    expect(data({ controllerManagerIdleTimeout: '1h' }).managerIdleTimeout).toBe('1h');
    expect(data({ controllerManagerIdleTimeout: 'off' })).not.toHaveProperty('managerIdleTimeout');
  });

  test('fails when the kube-controller-manager idle timeout is not a duration or below the floor', () => {
    expectConfigError(
      () => setup({ controllerManagerIdleTimeout: 'never' }),
      'KubeflexHosting',
      'controllerManagerIdleTimeout',
      'never',
    );
    expectConfigError(
      () => setup({ controllerManagerIdleTimeout: '30s' }),
      'KubeflexHosting',
      'controllerManagerIdleTimeout',
      '30s',
    );
  });

  test('only k8s planes (the one type with a kube-controller-manager), and only when kubeflex-config says so', () => {
    expect(managerTimeoutMs(cp('k8s'), config({ managerIdleTimeout: '10m' }))).toBe(600_000);
    expect(managerTimeoutMs(cp('k8s'), config())).toBeUndefined();
    expect(managerTimeoutMs(cp('k3s'), config({ managerIdleTimeout: '10m' }))).toBeUndefined();
    expect(managerTimeoutMs(cp('vcluster'), config({ managerIdleTimeout: '10m' }))).toBeUndefined();
  });

  test('parks once no write came for the timeout, then looks every 15 s; a write starts it again at once', () => {
    const idle = { count: 7, sinceMs: 0 };
    expect(managerDecision(idle, 600_000, 600_000, false)).toEqual({ action: 'park', checkAfterMs: 15_000 });
    expect(managerDecision(idle, 600_000, 700_000, true)).toEqual({ checkAfterMs: 15_000 });
    // The counter moved: activity now.
    const moved = observeActivity(idle, 8, 715_000);
    expect(managerDecision(moved, 600_000, 715_000, true)).toEqual({ action: 'unpark', checkAfterMs: 150_000 });
    // Running: look again after a quarter of the timeout (15 s to 5 min), never past it.
    expect(managerDecision(idle, 600_000, 500_000, false)).toEqual({ checkAfterMs: 100_000 });
    expect(managerDecision(idle, 60_000, 0, false)).toEqual({ checkAfterMs: 15_000 });
  });

  test('switched off while parked: started again; nothing read yet: nothing done', () => {
    expect(managerDecision({ count: 1, sinceMs: 0 }, undefined, 10, true)).toEqual({ action: 'unpark' });
    expect(managerDecision({ count: 1, sinceMs: 0 }, undefined, 10, false)).toEqual({});
    expect(managerDecision(undefined, 600_000, 10, true)).toEqual({});
  });

  test('the counter is read on its schedule, not on every pass (a storm gives a Ready plane many passes)', () => {
    expect(readDue(undefined, 5)).toBe(true);
    expect(readDue({ count: 1, sinceMs: 0 }, 5)).toBe(true);
    expect(readDue({ count: 1, sinceMs: 0, nextReadMs: 15_000 }, 14_999)).toBe(false);
    expect(readDue({ count: 1, sinceMs: 0, nextReadMs: 15_000 }, 15_000)).toBe(true);
    // The timeouts changed since that schedule (kubeflex-config edited): read at once.
    const scheduled = { count: 1, sinceMs: 0, nextReadMs: 300_000, timeouts: '600000' };
    expect(readDue(scheduled, 10, '600000')).toBe(false);
    expect(readDue(scheduled, 10, '60000')).toBe(true);
  });

  test('a restarted controller keeps a parked plane parked until its counter moves', () => {
    const base = baselineActivity(40, 1_000_000, 600_000)!;
    expect(managerDecision(observeActivity(base, 40, 1_000_000), 600_000, 1_000_000, true)).toEqual({
      checkAfterMs: 15_000,
    });
    expect(managerDecision(observeActivity(base, 41, 1_015_000), 600_000, 1_015_000, true).action).toBe('unpark');
    // A plane not parked starts from its first reading, as before.
    expect(baselineActivity(40, 1_000_000, undefined)).toBeUndefined();
  });
});

describe("the activator's decisions", () => {
  const cp = {
    metadata: { name: 'cp1', uid: 'u1', annotations: { 'kflex.kubestellar.org/sleeping': 'true' } },
    spec: { type: 'k8s' },
  };

  test('serves sleeping planes of types that sleep, through their API Service', () => {
    expect(servedPlane(cp)).toEqual({
      name: 'cp1',
      namespace: 'cp1-system',
      service: 'cp1',
      portName: 'https',
      booted: false,
    });
    // A plane whose API answered ready before (the controller's mark): a wake need not wait for the bootstrap hooks.
    const booted = { ...cp.metadata.annotations, 'kflex.kubestellar.org/booted': 'true' };
    expect(servedPlane({ ...cp, metadata: { ...cp.metadata, annotations: booted } })?.booted).toBe(true);
    expect(servedPlane({ ...cp, spec: { type: 'k3s' } })?.service).toBe('k3s');
    expect(servedPlane({ ...cp, spec: { type: 'vcluster' } })?.service).toBe('vcluster');
    expect(servedPlane({ ...cp, spec: { type: 'host' } })).toBeUndefined();
    expect(servedPlane({ ...cp, metadata: { ...cp.metadata, annotations: {} } })).toBeUndefined();
    expect(servedPlane({ ...cp, metadata: { ...cp.metadata, deletionTimestamp: 'now' } })).toBeUndefined();
  });

  test('its EndpointSlice: the Service label, its own managed-by, owned by the ControlPlane', () => {
    const slice = activatorSlice(cp, servedPlane(cp)!, '10.0.0.7', 20001);
    expect(slice).toEqual({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: 'cp1-kflex-activator',
        namespace: 'cp1-system',
        labels: {
          'kubernetes.io/service-name': 'cp1',
          'endpointslice.kubernetes.io/managed-by': 'activator.kflex.kubestellar.org',
          'tenancy.kflex.kubestellar.org/control-plane': 'cp1',
        },
        ownerReferences: [
          {
            apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
            kind: 'ControlPlane',
            name: 'cp1',
            uid: 'u1',
            controller: true,
          },
        ],
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.0.0.7'], conditions: { ready: true, serving: true, terminating: false } }],
      ports: [{ name: 'https', port: 20001, protocol: 'TCP' }],
    });
    expect(activatorSlice(cp, servedPlane(cp)!, 'fd00::7', 20001).addressType).toBe('IPv6');
    expect(slicePort(slice)).toEqual({ plane: 'cp1', port: 20001 });
    expect(slicePort({ ...slice, ports: [{ port: 80 }] })).toBeUndefined();
    expect(sliceCurrent(slice, slice)).toBe(true);
    // A restarted activator has a new address: the slice is rewritten.
    expect(sliceCurrent(slice, activatorSlice(cp, servedPlane(cp)!, '10.0.0.8', 20001))).toBe(false);
  });

  test('ports: the lowest free one', () => {
    expect(allocatePort(new Set())).toBe(20000);
    expect(allocatePort(new Set([20000, 20001, 20003]))).toBe(20002);
  });

  test("a plane's ready endpoint: never the activator's own, only a ready one with the API port", () => {
    const own = activatorSlice(cp, servedPlane(cp)!, '10.0.0.7', 20001);
    const plane = (ready: boolean) => ({
      metadata: { labels: { 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' } },
      endpoints: [{ addresses: ['10.244.0.9'], conditions: { ready } }],
      ports: [{ name: 'https', port: 9444 }],
    });
    expect(readyEndpoint([own], 'https')).toBeUndefined();
    expect(readyEndpoint([own, plane(false)], 'https')).toBeUndefined();
    expect(readyEndpoint([own, plane(true)], 'https')).toEqual({ host: '10.244.0.9', port: 9444 });
    expect(readyEndpoint([plane(true)], 'kubelet')).toBeUndefined();
    // Not ready yet, not terminating: a starting Pod, whose /readyz the activator may ask itself.
    const starting: { host: string; port: number }[] = [];
    const terminating = {
      ...plane(false),
      endpoints: [{ addresses: ['10.244.0.3'], conditions: { ready: false, terminating: true } }],
    };
    expect(readyEndpoint([own, plane(false), terminating], 'https', starting)).toBeUndefined();
    expect(starting).toEqual([{ host: '10.244.0.9', port: 9444 }]);
  });
});
