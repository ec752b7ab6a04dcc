// One source of truth: for every type, what the materializer builds from a bare ControlPlane (its spec, the hosting
// configuration as installed, the cluster's PostCreateHook objects) equals what `cdk8s synth` emits for it.
import { App } from 'cdk8s';
import { KubeflexConfigError, materialize } from '../lib';
import { isSynthesized, withOwnership } from '../lib/materialize';
import { MATERIALIZED_FOR, MATERIALIZED_TYPE } from '../lib/wire';
import { buildExamplePlatform } from '../main';

function examplePlatform() {
  const app = new App();
  buildExamplePlatform(app);
  const charts = Object.fromEntries(app.charts.map((c) => [c.node.id, c.toJson()]));
  const hosting = charts.hosting;
  const config = hosting.find((o: any) => o.kind === 'ConfigMap' && o.metadata.name === 'kubeflex-config').data;
  const hooks = hosting.filter((o: any) => o.kind === 'PostCreateHook');
  return { charts, config, hooks };
}

describe('materializer: a bare ControlPlane gives exactly the synthesized objects', () => {
  const { charts, config, hooks } = examplePlatform();

  test('a hook object an admin annotated baseline gives its bare planes a baseline namespace, as synth does', () => {
    const hook = {
      metadata: { name: 'transport', annotations: { 'kflex.kubestellar.org/pod-security': 'baseline' } },
      spec: {
        templates: [
          {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: 'no-seccomp' },
            spec: { containers: [{ name: 'c', image: 'busybox' }] },
          },
        ],
      },
    };
    const bare = {
      metadata: { name: 'wds1', uid: 'u' },
      spec: { type: 'k8s', postCreateHooks: [{ hookName: 'transport' }] },
    };
    const ns = materialize(bare, config, [hook]).find((o: any) => o.kind === 'Namespace');
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('baseline');
    const { metadata, ...rest } = hook;
    const unmarked = { ...rest, metadata: { name: metadata.name } };
    expect(() => materialize(bare, config, [unmarked])).toThrow(
      /enforces Pod Security "restricted" and would refuse this pod/,
    );
  });

  test('a plane whose kube-controller-manager the controller parked keeps it at zero replicas; nothing else differs', () => {
    const bare = { metadata: { name: 'wds2', uid: 'u' }, spec: { type: 'k8s' } };
    const parked = {
      ...bare,
      metadata: {
        ...bare.metadata,
        annotations: { 'kflex.kubestellar.org/parked-manager': 'Deployment/kube-controller-manager=1' },
      },
    };
    const running = materialize(bare, config, hooks);
    const kcm = (objs: any[]) =>
      objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-controller-manager');
    expect(kcm(running).spec.replicas).toBe(1);
    const built = materialize(parked, config, hooks);
    expect(kcm(built).spec.replicas).toBe(0);
    kcm(built).spec.replicas = 1;
    expect(built).toEqual(running);
  });

  for (const name of ['cp1', 'cp2', 'cp3', 'cp4', 'ext1']) {
    test(`${name}: same objects as cdk8s synth, apart from the ownership mark`, () => {
      const synthesized = charts[name];
      const cp = synthesized.find((o: any) => o.kind === 'ControlPlane');
      expect(isSynthesized(cp)).toBe(true);
      // What a KubeFlex client creates: name and spec, none of our labels.
      const bare = { metadata: { name: cp.metadata.name, uid: `uid-${name}` }, spec: cp.spec };
      expect(isSynthesized(bare)).toBe(false);
      const built = materialize(bare, config, hooks);
      expect(built).toEqual(synthesized);
      const applied = withOwnership(built, bare);
      const strip = (o: any) => {
        const { ownerReferences, annotations, ...metadata } = o.metadata;
        expect(ownerReferences).toEqual([
          {
            apiVersion: 'tenancy.kflex.kubestellar.org/v1alpha1',
            kind: 'ControlPlane',
            name,
            uid: `uid-${name}`,
            controller: true,
          },
        ]);
        const { [MATERIALIZED_FOR]: mark, [MATERIALIZED_TYPE]: type, ...rest } = annotations;
        expect(mark).toBe(`uid-${name}`);
        // The Namespace also says for which type it was made (the admission policy and the controller read it).
        expect(type).toBe(o.kind === 'Namespace' ? cp.spec.type : undefined);
        return { ...o, metadata: Object.keys(rest).length ? { ...metadata, annotations: rest } : metadata };
      };
      expect(applied.map(strip)).toEqual(synthesized.filter((o: any) => o.kind !== 'ControlPlane'));
    });
  }

  test("a spec synth would refuse fails with synth's own message", () => {
    const bad = (spec: object) => () => materialize({ metadata: { name: 'x1', uid: 'u' }, spec }, config, hooks);
    expect(bad({ type: 'k8s', postCreateHooks: [{ hookName: 'nope' }] })).toThrow(KubeflexConfigError);
    expect(bad({ type: 'k8s', postCreateHooks: [{ hookName: 'nope' }] })).toThrow(
      /postCreateHooks\[\]\.hook "nope": no PostCreateHook with that name/,
    );
    expect(bad({ type: 'ocm' })).toThrow(
      'ControlPlane x1: invalid spec.type "ocm": is not a type this installation serves',
    );
    expect(() => materialize({ metadata: { name: 'kube', uid: 'u' }, spec: { type: 'k8s' } }, config, hooks)).toThrow(
      KubeflexConfigError,
    );
    expect(bad({ type: 'external', tokenExpirationSeconds: 5 })).toThrow(/tokenExpirationSeconds/);
  });
});
