// The example's hooks and tenants, shared by the example platform (main.ts) and the tenants-only repository
// (examples/tenants-only): both synthesize the same tenant YAML.
import { App } from 'cdk8s';
import {
  ExternalControlPlane,
  HostControlPlane,
  IKubeflexHosting,
  K3sControlPlane,
  K8sControlPlane,
  PostCreateHook,
  VClusterControlPlane,
} from '../lib';

/** The hook `hello`: a Job that creates ConfigMap `greeting` in the tenant. */
export function addExampleHooks(hosting: IKubeflexHosting): void {
  new PostCreateHook(hosting, 'hello', {
    hosting,
    defaultVars: { Message: 'hello from kubeflex' },
    templates: [
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: '{{.HookName}}-{{.ControlPlaneName}}' },
        spec: {
          backoffLimit: 3,
          template: {
            spec: {
              restartPolicy: 'Never',
              securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
              volumes: [{ name: 'kubeconfig', secret: { secretName: 'admin-kubeconfig' } }],
              containers: [
                {
                  name: 'hello',
                  image: 'registry.k8s.io/kubectl:v1.32.2',
                  args: [
                    '--kubeconfig=/etc/kube/kubeconfig-incluster',
                    'create',
                    'configmap',
                    'greeting',
                    '--from-literal=message={{.Message}}',
                  ],
                  volumeMounts: [{ name: 'kubeconfig', mountPath: '/etc/kube', readOnly: true }],
                  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                },
              ],
            },
          },
        },
      },
    ],
  });
}

/** One control plane of each type; cp1 and cp4 use the hook. */
export function addExampleTenants(app: App, hosting: IKubeflexHosting): void {
  new K8sControlPlane(app, 'cp1', { hosting, postCreateHooks: [{ hook: 'hello' }], waitForPostCreateHooks: true });
  new K3sControlPlane(app, 'cp2', { hosting });
  new VClusterControlPlane(app, 'cp3', { hosting });
  new HostControlPlane(app, 'cp4', {
    hosting,
    // Hooks of a host plane can use its hosting-cluster-admin kubeconfig: an explicit choice.
    allowPostCreateHooks: true,
    postCreateHooks: [{ hook: 'hello', vars: { Message: 'hi host' } }],
  });
  new ExternalControlPlane(app, 'ext1', { hosting, bootstrapSecret: { name: 'ext1-bootstrap' } });
}
