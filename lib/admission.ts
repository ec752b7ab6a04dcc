// Who may do what, enforced by the API server itself (no webhook server): ValidatingAdmissionPolicies of the hosting
// install. One asks the authorizer whether the author of a ControlPlane holds the custom verbs a host plane needs
// (security review round 2, N1/N4); one confines the materializer's writes to what it made for a ControlPlane (N2/N3),
// so that neither a ControlPlane author nor a compromised materializer gains anything on the hosting cluster.
import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { API_GROUP, CONTROL_PLANE_LABEL, HOSTING_NAMESPACE } from './names';
import {
  BOOT_GATE,
  CONTROL_PLANE_VERBS,
  HOST_PLANES_CLUSTER_ROLE,
  MATERIALIZED_FOR,
  MATERIALIZED_TYPE,
  POD_KINDS,
} from './wire';

/** Name of the policy (and its binding) on ControlPlanes. */
export const CONTROL_PLANE_POLICY = 'kubeflex-controlplane-rights';
/** Name of the policy (and its binding) on the materializer's own requests. */
export const MATERIALIZER_POLICY = 'kubeflex-materializer-scope';

const VAP_VERSION = 'admissionregistration.k8s.io/v1';

/** The spec fields that choose and parameterize a plane's hooks: changing any of them is opting into hooks anew. */
const HOOK_FIELDS = ['postCreateHook', 'postCreateHookVars', 'postCreateHooks', 'globalVars'];

/** CEL: `field` of `a.spec` and `b.spec` are both absent or equal. */
/** The authorizer's view of the Secret a ControlPlane names as its bootstrap kubeconfig. */
const bootstrapSecret = `authorizer.group('').resource('secrets').namespace(object.spec.bootstrapSecretRef.namespace).name(object.spec.bootstrapSecretRef.name)`;
const sameField = (f: string) =>
  `(has(object.spec.${f}) == has(oldObject.spec.${f}) && (!has(object.spec.${f}) || object.spec.${f} == oldObject.spec.${f}))`;

/** CEL: the request's user holds `verb` on this ControlPlane. */
const holds = (verb: string) =>
  `authorizer.group('${API_GROUP}').resource('controlplanes').name(object.metadata.name).check('${verb}').allowed()`;

function policy(scope: Construct, id: string, name: string, spec: Record<string, unknown>): void {
  new ApiObject(scope, id, { apiVersion: VAP_VERSION, kind: 'ValidatingAdmissionPolicy', metadata: { name }, spec });
  new ApiObject(scope, `${id}Binding`, {
    apiVersion: VAP_VERSION,
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name },
    spec: { policyName: name, validationActions: ['Deny'] },
  });
}

/**
 * ControlPlanes: `spec.type: host`, and hooks on a host plane, only for principals that hold the verbs
 * CONTROL_PLANE_VERBS (asked of the authorizer, so RBAC decides; cluster-admins hold every verb). With host planes
 * disabled, nobody may create one. Checked when the type is set (create; the CRD keeps it immutable) and whenever a
 * hook field of a host plane changes, so the controller's and the materializer's other updates pass.
 */
export function addControlPlanePolicy(scope: Construct, opts: { readonly hostPlanes: boolean }): void {
  const host = `has(object.spec) && has(object.spec.type) && object.spec.type == 'host'`;
  const hasHooks = `has(object.spec.postCreateHook) || (has(object.spec.postCreateHooks) && size(object.spec.postCreateHooks) > 0)`;
  const who = `(request.userInfo.username == '' ? 'this user' : request.userInfo.username)`;
  const subject = `'ControlPlane ' + object.metadata.name + ': '`;
  policy(scope, 'ControlPlanePolicy', CONTROL_PLANE_POLICY, {
    failurePolicy: 'Fail',
    matchConstraints: {
      resourceRules: [
        { apiGroups: [API_GROUP], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['controlplanes'] },
      ],
    },
    variables: [
      { name: 'host', expression: host },
      {
        name: 'hooksChanged',
        expression: `request.operation == 'CREATE' || !has(oldObject.spec) || !(${HOOK_FIELDS.map(sameField).join(' && ')})`,
      },
    ],
    validations: [
      opts.hostPlanes
        ? {
            expression: `!variables.host || request.operation != 'CREATE' || ${holds(CONTROL_PLANE_VERBS.host)}`,
            messageExpression: `${subject} + 'spec.type "host" is refused: its kubeconfig is cluster-admin of the hosting cluster, and ' + ${who} + ' lacks the verb "${CONTROL_PLANE_VERBS.host}" on controlplanes.${API_GROUP} (ClusterRole ${HOST_PLANES_CLUSTER_ROLE})'`,
            reason: 'Forbidden',
          }
        : {
            expression: `!variables.host || request.operation != 'CREATE'`,
            messageExpression: `${subject} + 'spec.type "host" is refused: host control planes are disabled in this hosting install'`,
            reason: 'Forbidden',
          },
      {
        // The controller reads the bootstrap kubeconfig with its own rights and deletes it once used: naming it is
        // allowed only to whoever may get and delete that Secret themselves (security review C1; KubeFlex's adopt
        // writes it without any label).
        expression:
          `!has(object.spec) || !has(object.spec.bootstrapSecretRef) || ` +
          `(request.operation == 'UPDATE' && has(oldObject.spec) && has(oldObject.spec.bootstrapSecretRef) && oldObject.spec.bootstrapSecretRef == object.spec.bootstrapSecretRef) || ` +
          `(${bootstrapSecret}.check('get').allowed() && ${bootstrapSecret}.check('delete').allowed())`,
        messageExpression:
          `${subject} + 'spec.bootstrapSecretRef ' + object.spec.bootstrapSecretRef.namespace + '/' + object.spec.bootstrapSecretRef.name + ` +
          `' is refused: the controller reads it with its own rights and deletes it once used, so only an author who may get and delete that Secret may name it, and ' + ${who} + ' may not'`,
        reason: 'Forbidden',
      },
      {
        expression: `!variables.host || !(${hasHooks}) || !variables.hooksChanged || ${holds(CONTROL_PLANE_VERBS.hostHooks)}`,
        messageExpression: `${subject} + 'postCreateHooks on a host plane are refused: hook workloads can mount its hosting cluster-admin kubeconfig, and ' + ${who} + ' lacks the verb "${CONTROL_PLANE_VERBS.hostHooks}" on controlplanes.${API_GROUP} (ClusterRole ${HOST_PLANES_CLUSTER_ROLE})'`,
        reason: 'Forbidden',
      },
    ],
  });
}

// CEL building blocks of the scope policies.
const mark = (o: string) => `(has(${o}.metadata.annotations) && '${MATERIALIZED_FOR}' in ${o}.metadata.annotations)`;
const markOf = (o: string) => `${o}.metadata.annotations['${MATERIALIZED_FOR}']`;
const annotationOr = (o: string, key: string) =>
  `(has(${o}.metadata.annotations) && '${key}' in ${o}.metadata.annotations ? ${o}.metadata.annotations['${key}'] : '')`;
const labelsOf = (o: string) => `(has(${o}.metadata.labels) ? ${o}.metadata.labels : {})`;
const labelOr = (o: string, key: string) =>
  `(has(${o}.metadata.labels) && '${key}' in ${o}.metadata.labels ? ${o}.metadata.labels['${key}'] : '')`;
const enforce = `'pod-security.kubernetes.io/enforce'`;
// A cluster-scoped request has no `namespace` key at all (reading it fails), hence has().
const NO_NAMESPACE = `(!has(request.namespace) || request.namespace == '')`;
const what = `request.kind.kind + ' ' + (${NO_NAMESPACE} || request.kind.kind == 'Namespace' ? '' : request.namespace + '/') + request.name`;
/** A refusal message; `why` goes into a single-quoted CEL string: no apostrophes. */
const refusal = (who: string) => (why: string) => `'${who}: ' + ${what} + ' is refused: ${why}'`;
/** Updates only of an object that already carries the same mark (no takeover; a PATCH answers with the object). */
const sameMarkOnUpdate = (refused: (why: string) => string) => ({
  expression: `request.operation != 'UPDATE' || (${mark('oldObject')} && ${mark('object')} && ${markOf('oldObject')} == ${markOf('object')})`,
  messageExpression: refused('it exists and was not made by the materializer for this ControlPlane'),
  reason: 'Forbidden',
});

/** A rule matching creates and updates of `resource` in `apiGroups`. */
const writes = (apiGroups: string[], resource: string) => ({
  apiGroups,
  apiVersions: ['*'],
  operations: ['CREATE', 'UPDATE'],
  resources: [resource],
});

/**
 * What a scope policy matches: every create and update `user` makes (failing closed), except its Events and the
 * `excluded` rules.
 */
const writesBy = (condition: string, user: string, excluded: ReturnType<typeof writes>[]) => ({
  failurePolicy: 'Fail',
  matchConstraints: {
    resourceRules: [writes(['*'], '*')],
    excludeResourceRules: [...excluded, writes(['', 'events.k8s.io'], 'events')],
  },
  matchConditions: [{ name: condition, expression: `request.userInfo.username == '${user}'` }],
});

/** Name of the policy (and its binding) on the controller's changes to Pods. */
export const CONTROLLER_POD_POLICY = 'kubeflex-controller-pods';

/**
 * The controller may patch Pods in tenant namespaces (its tenant role) for boot admission only: the one change it
 * may make is removing the boot gate from a Pod that carries the boot label. Images, containers, tolerations,
 * labels, annotations, finalizers and owners stay as they are, so the right cannot be turned into running other code
 * or scheduling elsewhere.
 */
export function addControllerPodPolicy(scope: Construct, opts: { readonly user: string }): void {
  const opt = (o: string, f: string, none: string) => `(has(${o}.${f}) ? ${o}.${f} : ${none})`;
  const same = (f: string, none: string) => `${opt('object', f, none)} == ${opt('oldObject', f, none)}`;
  policy(scope, 'ControllerPodPolicy', CONTROLLER_POD_POLICY, {
    failurePolicy: 'Fail',
    matchConstraints: {
      resourceRules: [
        { apiGroups: [''], apiVersions: ['*'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['pods'] },
      ],
    },
    matchConditions: [{ name: 'controller', expression: `request.userInfo.username == '${opts.user}'` }],
    validations: [
      {
        expression:
          `request.operation == 'UPDATE' && ${opt('oldObject', 'metadata.labels', '{}')}.exists(k, k == '${BOOT_GATE}') && ` +
          [
            same('metadata.labels', '{}'),
            same('metadata.annotations', '{}'),
            same('metadata.finalizers', '[]'),
            same('metadata.ownerReferences', '[]'),
            'object.spec.containers == oldObject.spec.containers',
            same('spec.initContainers', '[]'),
            same('spec.tolerations', '[]'),
            same('spec.activeDeadlineSeconds', '0'),
            `${opt('object', 'spec.schedulingGates', '[]')} == ${opt('oldObject', 'spec.schedulingGates', '[]')}.filter(g, g.name != '${BOOT_GATE}')`,
          ].join(' && '),
        messageExpression: `'controller: pod ' + request.name + ' is refused: it only removes the scheduling gate ${BOOT_GATE} from a Pod with that label'`,
        reason: 'Forbidden',
      },
    ],
  });
}

/** Name of the policy (and its binding) on the hook applier's requests. */
export const HOOK_APPLIER_POLICY = 'kubeflex-hook-applier-scope';

/**
 * The requests the materializer makes as the hook applier (the identity it impersonates to apply PostCreateHook
 * objects; its rights are what the hosting admin grants it). Whatever RBAC lets it do, it writes only
 * - namespaced objects inside a namespace the materializer made, with the same mark (never `kubeflex-system`);
 * - cluster-scoped objects carrying a mark (owned by their ControlPlane, so garbage collection removes them);
 * - updates only of objects that already carry the same mark: a hook never takes over an existing ClusterRole.
 */
export function addHookApplierPolicy(scope: Construct, opts: { readonly user: string }): void {
  const refused = refusal('hook applier');
  policy(scope, 'HookApplierPolicy', HOOK_APPLIER_POLICY, {
    ...writesBy('hook-applier', opts.user, []),
    validations: [
      {
        expression:
          `(${NO_NAMESPACE} || request.kind.kind == 'Namespace') ? ${mark('object')} : ` +
          `(namespaceObject != null && ${mark('namespaceObject')} && ${mark('object')} && ${markOf('namespaceObject')} == ${markOf('object')})`,
        messageExpression: refused(
          'a hook object is marked for its ControlPlane and, if namespaced, lives in a namespace made for that ControlPlane',
        ),
        reason: 'Forbidden',
      },
      sameMarkOnUpdate(refused),
    ],
  });
}

/**
 * The materializer's requests (matched by its ServiceAccount's user name): RBAC cannot say "only in namespaces you
 * made", this policy does. It writes only
 * - Namespaces `<cp>-system` carrying its mark (a ControlPlane UID) and a Pod Security level below privileged, whose
 *   mark, type and labels never change afterwards;
 * - namespaced objects inside such a namespace, carrying the same mark;
 * - updates only of objects that already carry the same mark: nothing it did not make is taken over, and no Secret or
 *   workload of anyone else is patched (a PATCH answers with the whole object, so patching is reading);
 * - no pod-running workload in the namespace of a host plane;
 * - RoleBindings only to a Role of the namespace, the controller's tenant role (for the controller) or the vCluster
 *   role (for ServiceAccounts of the namespace).
 * Cluster-scoped objects other than Namespaces are refused outright.
 */
export function addMaterializerPolicy(
  scope: Construct,
  opts: {
    readonly user: string;
    readonly controllerTenantRole: string;
    readonly controllerServiceAccount: string;
    readonly vclusterRole: string;
  },
): void {
  const refused = refusal('materializer');
  policy(scope, 'MaterializerPolicy', MATERIALIZER_POLICY, {
    // Its own refusal notes on ControlPlanes are checked by the ControlPlane policy.
    ...writesBy('materializer', opts.user, [writes([API_GROUP], 'controlplanes')]),
    validations: [
      {
        expression: `!${NO_NAMESPACE} || request.kind.kind == 'Namespace'`,
        messageExpression: refused('it creates no cluster-scoped object but Namespaces'),
        reason: 'Forbidden',
      },
      {
        expression:
          `request.kind.kind != 'Namespace' || (object.metadata.name.endsWith('-system') && ${mark('object')} && ` +
          `${enforce} in ${labelsOf('object')} && ${labelsOf('object')}[${enforce}] in ['restricted', 'baseline'])`,
        messageExpression: refused(
          'a Namespace it makes is <name>-system, carries its mark and enforces Pod Security restricted or baseline',
        ),
        reason: 'Forbidden',
      },
      {
        expression:
          `request.kind.kind != 'Namespace' || request.operation != 'UPDATE' || ` +
          `(${annotationOr('object', MATERIALIZED_TYPE)} == ${annotationOr('oldObject', MATERIALIZED_TYPE)} && ` +
          `${labelOr('object', CONTROL_PLANE_LABEL)} == ${labelOr('oldObject', CONTROL_PLANE_LABEL)})`,
        messageExpression: refused('the type and control-plane label of a Namespace it made never change'),
        reason: 'Forbidden',
      },
      {
        expression:
          `${NO_NAMESPACE} || request.kind.kind == 'Namespace' || (${mark('object')} && ` +
          `namespaceObject != null && ${mark('namespaceObject')} && ${markOf('namespaceObject')} == ${markOf('object')})`,
        messageExpression: refused('it writes only inside a namespace it made, with the mark of that namespace'),
        reason: 'Forbidden',
      },
      sameMarkOnUpdate(refused),
      {
        expression:
          `!(request.kind.kind in ${JSON.stringify(POD_KINDS).replace(/"/g, "'")}) || namespaceObject == null || ` +
          `${annotationOr('namespaceObject', MATERIALIZED_TYPE)} != 'host'`,
        messageExpression: refused('no workload of the materializer runs beside the kubeconfig of a host plane'),
        reason: 'Forbidden',
      },
      {
        expression:
          `request.kind.kind != 'RoleBinding' || object.roleRef.kind == 'Role' || ` +
          `(object.roleRef.kind == 'ClusterRole' && has(object.subjects) && (` +
          `(object.roleRef.name == '${opts.controllerTenantRole}' && object.subjects.all(s, s.kind == 'ServiceAccount' && s.namespace == '${HOSTING_NAMESPACE}' && s.name == '${opts.controllerServiceAccount}')) || ` +
          `(object.roleRef.name == '${opts.vclusterRole}' && object.subjects.all(s, s.kind == 'ServiceAccount' && s.namespace == request.namespace))))`,
        messageExpression: refused(
          'a RoleBinding binds a Role of its namespace, the controller tenant role to the controller, or the vCluster role to a ServiceAccount of its namespace',
        ),
        reason: 'Forbidden',
      },
    ],
  });
}
