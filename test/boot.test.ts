// Boot admission without a cluster: the gate on synthesized Pods, the hosting prop and its ConfigMap key, and the
// controller's pure decision of which Pods may start.
import { App, Testing } from 'cdk8s';
import { K8sControlPlane, KubeflexHosting } from '../lib';
import {
  BOOT_SLOT_TIMEOUT_MS,
  bootPodOf,
  BootPod,
  decideBoot,
  MANAGER_DEFER_MS,
  ungatePatch,
} from '../lib/controller/boot';
import { decodeHostingConfig, encodeHostingConfig } from '../lib/hosting-config';
import { expectConfigError, find, setup, synth, testApp } from './helpers';

const GATE = 'kflex.kubestellar.org/boot-slot';

describe('constructs', () => {
  test('a k8s plane on an install with boot admission: both Deployments create gated, labelled Pods', () => {
    const { app, hosting } = setup();
    expect(hosting.bootSlots).toBe(3);
    const objects = synth(new K8sControlPlane(app, 'cp1', { hosting }));
    for (const name of ['kube-apiserver', 'kube-controller-manager']) {
      const template = find(objects, 'Deployment', name).spec.template;
      expect(template.spec.schedulingGates).toEqual([{ name: GATE }]);
      expect(template.metadata.labels[GATE]).toBe(name);
      // The selector does not use the label: the Deployment's Pods stay the same set.
      expect(find(objects, 'Deployment', name).spec.selector.matchLabels).toEqual({ app: name });
    }
    // The controller lets KCM go only once the plane's API server is ready: no waiter process before it.
    expect(find(objects, 'Deployment', 'kube-controller-manager').spec.template.spec.initContainers).toBeUndefined();
  });

  test('bootSlots 0: no gate, no label, and the ConfigMap has no key', () => {
    const { app, hosting } = setup({ bootSlots: 0 });
    const objects = synth(new K8sControlPlane(app, 'cp1', { hosting }));
    const template = find(objects, 'Deployment', 'kube-apiserver').spec.template;
    expect(template.spec.schedulingGates).toBeUndefined();
    expect(template.metadata.labels[GATE]).toBeUndefined();
    // Nobody orders the starts: KCM waits in an init container until the API server answers.
    const kcm = find(objects, 'Deployment', 'kube-controller-manager').spec.template.spec;
    expect(kcm.schedulingGates).toBeUndefined();
    expect(kcm.initContainers.map((c: any) => [c.name, c.command])).toEqual([
      ['wait-for-apiserver', ['kubeflex-wait-for-apiserver']],
    ]);
    expect(find(Testing.synth(hosting), 'ConfigMap', 'kubeflex-config').data.bootSlots).toBeUndefined();
  });

  test('the install writes bootSlots to kubeflex-config; an import from it gates its planes alike', () => {
    const { hosting } = setup({ bootSlots: 3 });
    const data = find(Testing.synth(hosting), 'ConfigMap', 'kubeflex-config').data;
    expect(data.bootSlots).toBe('3');
    expect(decodeHostingConfig(data).bootSlots).toBe(3);
    const imported = KubeflexHosting.fromConfig(testApp(), 'h', { config: data });
    expect(imported.bootSlots).toBe(3);
  });

  test('imported attributes without bootSlots: no gate (a plane never waits on admission nobody runs)', () => {
    const hosting = KubeflexHosting.fromHostingAttributes(testApp(), 'h', {
      domain: 'example.com',
      externalPort: 443,
    });
    expect(hosting.bootSlots).toBe(0);
  });

  test.each([[-1], [65], [1.5]])('fails when bootSlots is %p', (bad) => {
    expectConfigError(
      () => new KubeflexHosting(new App(), 'hosting', { bootSlots: bad }),
      'KubeflexHosting "hosting"',
      'bootSlots',
      String(bad),
      'must be an integer from 0 to 64',
    );
  });

  test('fails when imported attributes have bootSlots out of range', () => {
    expectConfigError(
      () =>
        KubeflexHosting.fromHostingAttributes(testApp(), 'h', {
          domain: 'example.com',
          externalPort: 443,
          bootSlots: 100,
        }),
      'KubeflexHosting.fromHostingAttributes "h"',
      'bootSlots',
      '100',
    );
  });

  test('fails when kubeflex-config has a bad bootSlots', () => {
    const data = encodeHostingConfig({
      domain: 'd.example',
      externalPort: 443,
      isOpenShift: false,
      hostContainer: 'c',
      ingressClassName: 'nginx',
      hostControlPlanes: true,
    });
    expect(() => decodeHostingConfig({ ...data, bootSlots: '0' })).toThrow(
      'ConfigMap kubeflex-config key bootSlots="0" is not an integer from 1 to 64',
    );
    expect(() => decodeHostingConfig({ ...data, bootSlots: 'two' })).toThrow(/bootSlots="two"/);
  });
});

describe('the decision', () => {
  const T0 = 1_000_000;
  const pod = (ns: string, component: string, over: Partial<BootPod> = {}): BootPod => ({
    namespace: ns,
    name: `${component}-x`,
    component,
    gated: true,
    ready: false,
    terminating: false,
    createdMs: T0,
    ...over,
  });
  const api = (ns: string, over: Partial<BootPod> = {}) => pod(ns, 'kube-apiserver', over);
  const kcm = (ns: string, over: Partial<BootPod> = {}) => pod(ns, 'kube-controller-manager', over);
  const names = (d: { ungate: readonly BootPod[] }) => d.ungate.map((p) => `${p.namespace}/${p.component}`);

  test('a burst: the oldest API servers first, only as many as there are slots', () => {
    const pods = ['c', 'a', 'd', 'b'].map((n, i) => api(`${n}-system`, { createdMs: T0 + (n === 'd' ? -5 : i) }));
    expect(names(decideBoot(pods, 2, T0))).toEqual(['d-system/kube-apiserver', 'c-system/kube-apiserver']);
  });

  test("a woken plane's API server goes before older first boots; the rest are told they wait", () => {
    const first = ['a', 'b', 'c'].map((n, i) => api(`${n}-system`, { createdMs: T0 + i }));
    const woken = api('z-system', { createdMs: T0 + 10, wake: true });
    const d = decideBoot([...first, woken], 2, T0);
    expect(names(d)).toEqual(['z-system/kube-apiserver', 'a-system/kube-apiserver']);
    expect(names({ ungate: d.waiting })).toEqual(['b-system/kube-apiserver', 'c-system/kube-apiserver']);
    // No free slot: the woken plane waits at the head of the queue, not behind the first boots.
    const busy = [api('s-system', { gated: false, ungatedMs: T0 }), api('t-system', { gated: false, ungatedMs: T0 })];
    const full = decideBoot([...busy, ...first, woken], 2, T0);
    expect(names(full)).toEqual([]);
    expect(full.waiting.map((p) => p.namespace)).toEqual(['z-system', 'a-system', 'b-system', 'c-system']);
  });

  test('starting Pods hold their slots until ready; a ready one frees its slot', () => {
    const starting = api('a-system', { gated: false, ungatedMs: T0 - 1000 });
    const waiting = [api('b-system'), api('c-system', { createdMs: T0 + 1 })];
    expect(names(decideBoot([starting, ...waiting], 1, T0))).toEqual([]);
    expect(names(decideBoot([starting, ...waiting], 2, T0))).toEqual(['b-system/kube-apiserver']);
    const ready = { ...starting, ready: true };
    expect(names(decideBoot([ready, ...waiting], 1, T0))).toEqual(['b-system/kube-apiserver']);
  });

  test('a start whose API server answered the controller frees its slot before its Ready condition', () => {
    const answered = api('a-system', { gated: false, ungatedMs: T0 - 1000, answered: true });
    const waiting = [api('b-system'), api('c-system', { createdMs: T0 + 1 })];
    expect(names(decideBoot([answered, ...waiting], 1, T0))).toEqual(['b-system/kube-apiserver']);
    // Its controller manager still waits for the Ready condition (KCM exits against an API that does not answer).
    const manager = kcm('a-system');
    expect(names(decideBoot([answered, manager], 1, T0))).toEqual([]);
    expect(names(decideBoot([{ ...answered, ready: true }, manager], 1, T0))).toEqual([
      'a-system/kube-controller-manager',
    ]);
  });

  test('a start that never gets ready frees its slot after the timeout, and the decision says when', () => {
    const stuck = api('a-system', { gated: false, ungatedMs: T0 });
    const waiting = api('b-system');
    const early = decideBoot([stuck, waiting], 1, T0 + 10_000);
    expect(names(early)).toEqual([]);
    expect(early.recheckAfterMs).toBe(BOOT_SLOT_TIMEOUT_MS - 10_000);
    expect(names(decideBoot([stuck, waiting], 1, T0 + BOOT_SLOT_TIMEOUT_MS))).toEqual(['b-system/kube-apiserver']);
  });

  test("a Pod no node can take holds no slot, and is listed with the scheduler's reason", () => {
    const full = api('a-system', {
      gated: false,
      ungatedMs: T0,
      unschedulable: '0/1 nodes are available: 1 Insufficient cpu.',
    });
    const waiting = api('b-system');
    const d = decideBoot([full, waiting], 1, T0 + 1000);
    expect(names(d)).toEqual(['b-system/kube-apiserver']);
    expect(d.unschedulable.map((p) => [p.namespace, p.unschedulable])).toEqual([
      ['a-system', '0/1 nodes are available: 1 Insufficient cpu.'],
    ]);
    // Once placed (the condition gone), it is a start again and holds its slot.
    const placed = { ...full, unschedulable: undefined };
    const again = decideBoot([placed, waiting], 1, T0 + 1000);
    expect(names(again)).toEqual([]);
    expect(again.unschedulable).toEqual([]);
  });

  test("the scheduler's reason is read from PodScheduled=False/Unschedulable only, and bounded", () => {
    const of = (conditions: unknown[]) =>
      bootPodOf(
        {
          metadata: {
            namespace: 'a-system',
            name: 'p',
            labels: { 'kflex.kubestellar.org/boot-slot': 'kube-apiserver' },
          },
          status: { conditions },
        },
        undefined,
      )!.unschedulable;
    expect(of([{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'no cpu' }])).toBe('no cpu');
    expect(
      of([{ type: 'PodScheduled', status: 'False', reason: 'SchedulingGated', message: 'gated' }]),
    ).toBeUndefined();
    expect(of([{ type: 'PodScheduled', status: 'True' }])).toBeUndefined();
    expect(of([{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }])).toBe('no node fits it');
    expect(of([{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'x'.repeat(1000) }])).toBe(
      `${'x'.repeat(300)}…`,
    );
  });

  test('nothing waiting: no recheck; terminating Pods neither wait nor hold a slot', () => {
    const going = api('a-system', { gated: false, ungatedMs: T0, terminating: true });
    const d = decideBoot([going, api('b-system', { terminating: true })], 1, T0);
    expect(names(d)).toEqual([]);
    expect(d.recheckAfterMs).toBeUndefined();
    expect(names(decideBoot([going, api('c-system')], 1, T0))).toEqual(['c-system/kube-apiserver']);
  });

  test('a controller manager goes once its own API server is ready, without a slot', () => {
    const pods = [
      api('a-system', { gated: false, ready: true }),
      kcm('a-system'),
      api('b-system', { gated: false, ungatedMs: T0 }),
      kcm('b-system'),
      api('c-system'),
    ];
    expect(names(decideBoot(pods, 1, T0))).toEqual(['a-system/kube-controller-manager']);
  });

  test('while API servers start or wait, a controller manager waits until its API server has been ready 30 s', () => {
    const ready = api('a-system', { gated: false, ready: true, readyMs: T0 });
    const manager = kcm('a-system');
    const starting = api('b-system', { gated: false, ungatedMs: T0 });
    // Another start runs: KCM's start would take CPU from it. The decision says when to look again.
    const d = decideBoot([ready, manager, starting], 3, T0 + 10_000);
    expect(names(d)).toEqual([]);
    expect(d.recheckAfterMs).toBe(MANAGER_DEFER_MS - 10_000);
    expect(names(decideBoot([ready, manager, starting], 3, T0 + MANAGER_DEFER_MS))).toEqual([
      'a-system/kube-controller-manager',
    ]);
    // One waits for a slot: the same.
    const queued = api('c-system', { createdMs: T0 + 1 });
    expect(names(decideBoot([ready, manager, starting, queued], 1, T0 + 10_000))).toEqual([]);
    // Nothing else starts or waits: at once.
    expect(names(decideBoot([ready, manager], 3, T0 + 1))).toEqual(['a-system/kube-controller-manager']);
  });

  test('reduced from API objects: gate, readiness, deletion; Pods without the label are not ours', () => {
    const raw = {
      metadata: {
        namespace: 'a-system',
        name: 'kube-apiserver-1',
        uid: 'u',
        creationTimestamp: '2026-12-05T10:00:00Z',
        labels: { [GATE]: 'kube-apiserver' },
      },
      spec: { schedulingGates: [{ name: 'other' }, { name: GATE }] },
      status: { conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: '2026-12-05T10:00:05Z' }] },
    };
    expect(bootPodOf(raw, undefined)).toEqual({
      namespace: 'a-system',
      name: 'kube-apiserver-1',
      component: 'kube-apiserver',
      gated: true,
      ready: false,
      readyMs: Date.parse('2026-12-05T10:00:05Z'),
      terminating: false,
      createdMs: Date.parse('2026-12-05T10:00:00Z'),
      ungatedMs: undefined,
    });
    expect(bootPodOf({ ...raw, metadata: { ...raw.metadata, labels: { [GATE]: 'etcd' } } }, undefined)).toBeUndefined();
    // With an address: where its startup probe asks (an HTTPS GET, by number or by the container's port name).
    const probe = (port: unknown, scheme = 'HTTPS') => ({ httpGet: { path: '/readyz', port, scheme } });
    const withProbe = (startupProbe: unknown, podIP: unknown = '10.244.0.7') => ({
      ...raw,
      spec: {
        ...raw.spec,
        containers: [
          { name: 'kine' },
          { name: 'kube-apiserver', ports: [{ name: 'https', containerPort: 9444 }], startupProbe },
        ],
      },
      status: { ...raw.status, podIP },
    });
    expect(bootPodOf(withProbe(probe(9444)), undefined)?.readyz).toEqual({
      host: '10.244.0.7',
      port: 9444,
      path: '/readyz',
    });
    expect(bootPodOf(withProbe(probe('https')), undefined)?.readyz).toEqual({
      host: '10.244.0.7',
      port: 9444,
      path: '/readyz',
    });
    // No address yet, another scheme, an unknown port name, a bad address or port: nothing to ask.
    for (const pod of [
      withProbe(probe(9444), null),
      withProbe(probe(9444, 'HTTP')),
      withProbe(probe('metrics')),
      withProbe(probe(9444), 'evil.example/x'),
      withProbe(probe(70000)),
      withProbe({ tcpSocket: { port: 9444 } }),
    ]) {
      expect(bootPodOf(pod, undefined)?.readyz).toBeUndefined();
    }
    // A controller manager is never asked.
    const manager = withProbe(probe(9444));
    manager.metadata = { ...manager.metadata, labels: { [GATE]: 'kube-controller-manager' } };
    expect(bootPodOf(manager, undefined)?.readyz).toBeUndefined();
    expect(bootPodOf({ ...raw, metadata: { ...raw.metadata, labels: {} } }, undefined)).toBeUndefined();
    // Only the boot gate goes; the patch fails if the gates changed since they were read.
    expect(ungatePatch(raw)).toEqual([
      { op: 'test', path: '/spec/schedulingGates', value: [{ name: 'other' }, { name: GATE }] },
      { op: 'replace', path: '/spec/schedulingGates', value: [{ name: 'other' }] },
    ]);
  });
});
