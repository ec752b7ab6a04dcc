/**
 * The CustomResourceDefinitions of `tenancy.kflex.kubestellar.org/v1alpha1`, as plain objects. They accept every
 * field of KubeFlex's v1alpha1 types (wire compatibility) and are the source of `crds/*.yaml` and `imports/`.
 */
import { API_GROUP, API_VERSION, HOSTING_NAMESPACE } from './names';
import { TYPE_CONTRACTS } from './wire';

export { API_GROUP, API_VERSION };

/** Control-plane types KubeFlex knows; `ocm` is accepted on the wire but has no construct (deprecated upstream). */
export const KUBEFLEX_CONTROL_PLANE_TYPES = ['k8s', 'ocm', 'vcluster', 'host', 'external', 'k3s'] as const;
/**
 * The CRD's `spec.type` enum: KubeFlex's types, then any type of our wire contract KubeFlex lacks, so a new type is
 * admitted by the CRD without an edit here (then `npm run import` regenerates the bindings).
 */
export const CONTROL_PLANE_TYPES: readonly string[] = [
  ...new Set<string>([...KUBEFLEX_CONTROL_PLANE_TYPES, ...Object.keys(TYPE_CONTRACTS)]),
];
export type ControlPlaneType = (typeof KUBEFLEX_CONTROL_PLANE_TYPES)[number];

const stringMap = { type: 'object', additionalProperties: { type: 'string' } };

const condition = {
  type: 'object',
  required: ['type', 'status', 'lastUpdateTime', 'lastTransitionTime', 'reason', 'message'],
  properties: {
    type: { type: 'string' },
    status: { type: 'string' },
    lastUpdateTime: { type: 'string', format: 'date-time' },
    lastTransitionTime: { type: 'string', format: 'date-time' },
    reason: { type: 'string' },
    message: { type: 'string' },
  },
};

const secretRef = {
  type: 'object',
  properties: {
    namespace: { type: 'string' },
    name: { type: 'string' },
    key: { type: 'string' },
    inClusterKey: { type: 'string' },
  },
};

/** The longest token lifetime an adopted cluster's credential may have: KubeFlex's default, one year. */
export const MAX_TOKEN_EXPIRATION_SECONDS = 31536000;

function printerColumns(typePath = '.spec.type') {
  return [
    { name: 'SYNCED', type: 'string', jsonPath: ".status.conditions[?(@.type=='Synced')].status" },
    { name: 'READY', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
    { name: 'TYPE', type: 'string', jsonPath: typePath },
    { name: 'AGE', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ];
}

function crd(kind: string, plural: string, shortNames: string[], schema: object, columns: object[]) {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${API_GROUP}` },
    spec: {
      group: API_GROUP,
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), shortNames },
      scope: 'Cluster',
      versions: [
        {
          name: 'v1alpha1',
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: columns,
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}

/**
 * The ControlPlane CRD for a hosting install whose bootstrap Secrets may live in `bootstrapNamespaces` (the admin's
 * list; KubeStellar's chart puts an external ITS's in its release namespace).
 */
export const controlPlaneCrd = (bootstrapNamespaces: readonly string[] = [HOSTING_NAMESPACE]) =>
  crd(
    'ControlPlane',
    'controlplanes',
    ['cp', 'cps'],
    {
      description: 'ControlPlane is a tenant control plane hosted on this cluster.',
      type: 'object',
      // The controller reads a bootstrap kubeconfig with its own identity, so the reference cannot point anywhere
      // else than this plane's own bootstrap Secret (security review C1).
      'x-kubernetes-validations': [
        {
          rule: `!has(self.spec) || !has(self.spec.bootstrapSecretRef) || (${namespaceRule(bootstrapNamespaces)} && self.spec.bootstrapSecretRef.name == self.metadata.name + '-bootstrap')`,
          message: `spec.bootstrapSecretRef must name the Secret <name>-bootstrap in namespace ${bootstrapNamespaces.join(' or ')}`,
        },
      ],
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object' },
        spec: {
          type: 'object',
          required: ['type'],
          'x-kubernetes-validations': [{ rule: 'self.type == oldSelf.type', message: 'spec.type is immutable' }],
          properties: {
            type: { type: 'string', enum: [...CONTROL_PLANE_TYPES] },
            backend: { type: 'string', enum: ['shared', 'dedicated'] },
            bootstrapSecretRef: {
              type: 'object',
              required: ['namespace', 'name', 'inClusterKey'],
              properties: {
                namespace: { type: 'string' },
                name: { type: 'string' },
                inClusterKey: { type: 'string' },
              },
            },
            tokenExpirationSeconds: {
              type: 'integer',
              format: 'int64',
              default: 31536000,
              minimum: 600,
              maximum: MAX_TOKEN_EXPIRATION_SECONDS,
            },
            postCreateHook: { type: 'string' },
            postCreateHookVars: stringMap,
            postCreateHooks: {
              type: 'array',
              items: {
                type: 'object',
                required: ['hookName'],
                properties: { hookName: { type: 'string' }, vars: stringMap },
              },
            },
            globalVars: stringMap,
            waitForPostCreateHooks: { type: 'boolean', default: false },
          },
        },
        status: {
          type: 'object',
          properties: {
            conditions: { type: 'array', items: condition },
            observedGeneration: { type: 'integer', format: 'int64' },
            secretRef,
            postCreateHooks: { type: 'object', additionalProperties: { type: 'boolean' } },
            postCreateHookCompleted: { type: 'boolean' },
          },
        },
      },
    },
    printerColumns(),
  );

/** The ControlPlane CRD of an install with the default bootstrap namespace (the source of `crds/` and `imports/`). */
export const CONTROL_PLANE_CRD = controlPlaneCrd();

/** CEL: the reference's namespace is one of `namespaces` (one comparison for the usual single one: same output as before). */
function namespaceRule(namespaces: readonly string[]): string {
  const ref = 'self.spec.bootstrapSecretRef.namespace';
  return namespaces.length === 1
    ? `${ref} == '${namespaces[0]}'`
    : `${ref} in [${namespaces.map((n) => `'${n}'`).join(', ')}]`;
}

export const POST_CREATE_HOOK_CRD = crd(
  'PostCreateHook',
  'postcreatehooks',
  ['pch', 'pchs'],
  {
    description: 'PostCreateHook is a set of templated objects rendered for each control plane that uses it.',
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: {
        type: 'object',
        properties: {
          templates: {
            type: 'array',
            items: {
              type: 'object',
              'x-kubernetes-embedded-resource': true,
              'x-kubernetes-preserve-unknown-fields': true,
            },
          },
          defaultVars: {
            type: 'array',
            items: {
              type: 'object',
              required: ['name', 'value'],
              properties: { name: { type: 'string' }, value: { type: 'string' } },
            },
          },
        },
      },
      status: {
        type: 'object',
        properties: {
          conditions: { type: 'array', items: condition },
          observedGeneration: { type: 'integer', format: 'int64' },
          secretRef,
        },
      },
    },
  },
  // KubeFlex copies the ControlPlane columns here, TYPE pointing at a non-existent .spec.type; we leave that column out.
  printerColumns().filter((c) => c.name !== 'TYPE'),
);
