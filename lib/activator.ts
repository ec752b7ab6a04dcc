// The activator's part of the hosting install: what holds a sleeping plane's clients while it wakes (runtime:
// lib/activator/). Its rights are the least that job needs, and an admission policy confines them further: RBAC
// cannot say "only EndpointSlices of ControlPlane namespaces" or "only remove the sleeping annotation".
import { ApiObject } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { ACTIVATOR_HEALTH_PORT, ACTIVATOR_MANAGED_BY, ACTIVATOR_NAME, ENDPOINTSLICE_MANAGED_BY } from './idle';
import { API_GROUP, CONTROL_PLANE_LABEL, HOSTING_NAMESPACE } from './names';
import { activatorNetworkPolicy, HostingApiEgress, POD_LABELS } from './network-policy';
import { daemonProbes, resources, restrictedContainer, restrictedPod } from './security';
import { SLEEP_ANNOTATION } from './wire';

/** Name of the admission policy (and its binding) on the activator's requests. */
export const ACTIVATOR_POLICY = 'kubeflex-activator-scope';
/** The activator's user name, as the API server authorizes and admits its requests. */
export const ACTIVATOR_USER = `system:serviceaccount:${HOSTING_NAMESPACE}:${ACTIVATOR_NAME}`;

/** Props of KubeflexActivator. */
export interface KubeflexActivatorProps {
  /** Image with `kubeflex-activator` on PATH (the controller's). */
  readonly image: string;
  /** Where the hosting API server is, as NetworkPolicies see it. */
  readonly hostingApi: HostingApiEgress;
}

/**
 * The activator (one Deployment in `kubeflex-system`): for each sleeping ControlPlane it listens on a port of its own
 * and adds an EndpointSlice with that port to the plane's Service, so every client of the Service (kube-proxy, the
 * ingress controller's passthrough) reaches it; the first connection removes the sleeping annotation, is held until
 * the plane's own endpoint is ready, then passed through byte for byte (TLS stays end to end).
 */
export class KubeflexActivator extends Construct {
  /** The activator Deployment. */
  public readonly deployment: kplus.Deployment;

  public constructor(scope: Construct, id: string, props: KubeflexActivatorProps) {
    super(scope, id);
    const sa = new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: ACTIVATOR_NAME, namespace: HOSTING_NAMESPACE },
      automountToken: true,
    });
    const role = new kplus.ClusterRole(this, 'Role', { metadata: { name: ACTIVATOR_NAME } });
    const custom = (apiGroup: string, resourceType: string) => kplus.ApiResource.custom({ apiGroup, resourceType });
    // patch: only to remove the sleeping annotation (the policy below).
    role.allow(['get', 'list', 'watch', 'patch'], custom(API_GROUP, 'controlplanes'));
    // Its own slices in ControlPlane namespaces (the policy below), and the planes' own slices to see them ready.
    role.allow(
      ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
      custom('discovery.k8s.io', 'endpointslices'),
    );
    role.allow(['create', 'patch'], kplus.ApiResource.EVENTS);
    new kplus.ClusterRoleBinding(this, 'RoleBinding', { metadata: { name: ACTIVATOR_NAME }, role }).addSubjects(sa);
    addActivatorPolicy(this);

    this.deployment = new kplus.Deployment(this, 'Resource', {
      metadata: { name: ACTIVATOR_NAME, namespace: HOSTING_NAMESPACE, labels: { 'control-plane': 'activator' } },
      replicas: 1,
      select: false,
      podMetadata: { labels: POD_LABELS.activator },
      serviceAccount: sa,
      automountServiceAccountToken: true,
      securityContext: restrictedPod(),
      containers: [
        {
          name: 'activator',
          image: props.image,
          imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
          command: ['kubeflex-activator'],
          args: [`--health-port=${ACTIVATOR_HEALTH_PORT}`],
          // Its own address goes into the EndpointSlices; a restarted activator moves them to its new address.
          envVariables: { POD_IP: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_IP) },
          ports: [{ number: ACTIVATOR_HEALTH_PORT, name: 'health' }],
          securityContext: restrictedContainer(),
          // CPU shares follow requests: it holds every waking client, so it must not starve during a wake storm.
          resources: resources(50, 64, 500, 256),
          ...daemonProbes(ACTIVATOR_HEALTH_PORT, 2),
        },
      ],
    });
    this.deployment.select(kplus.LabelSelector.of({ labels: POD_LABELS.activator }));
    activatorNetworkPolicy(this, props.hostingApi);
  }
}

/**
 * The activator's requests (matched by its user name), whatever RBAC grants:
 * - EndpointSlices only with its managed-by label, in a namespace that carries the control-plane label;
 * - ControlPlanes: an update that changes nothing but removing the sleeping annotation (waking the plane).
 * Everything else it might write is refused.
 */
function addActivatorPolicy(scope: Construct): void {
  const who = `'activator: ' + request.kind.kind + ' ' + request.name + ' is refused: '`;
  const ann = (o: string) => `(has(${o}.metadata.annotations) ? ${o}.metadata.annotations : {})`;
  const labels = (o: string) => `(has(${o}.metadata.labels) ? ${o}.metadata.labels : {})`;
  const slice = `request.kind.kind == 'EndpointSlice'`;
  const cp = `request.kind.kind == 'ControlPlane'`;
  new ApiObject(scope, 'Policy', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: ACTIVATOR_POLICY },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          { apiGroups: ['*'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE', 'DELETE'], resources: ['*'] },
        ],
        excludeResourceRules: [
          {
            apiGroups: ['', 'events.k8s.io'],
            apiVersions: ['*'],
            operations: ['CREATE', 'UPDATE'],
            resources: ['events'],
          },
        ],
      },
      matchConditions: [{ name: 'activator', expression: `request.userInfo.username == '${ACTIVATOR_USER}'` }],
      variables: [{ name: 'o', expression: `request.operation == 'DELETE' ? oldObject : object` }],
      validations: [
        {
          expression: `${slice} || (${cp} && request.operation == 'UPDATE')`,
          messageExpression: `${who} + 'it writes only EndpointSlices and wakes ControlPlanes'`,
          reason: 'Forbidden',
        },
        {
          expression:
            `!(${slice}) || (${labels('variables.o')}.exists(k, k == '${ENDPOINTSLICE_MANAGED_BY}') && ` +
            `${labels('variables.o')}['${ENDPOINTSLICE_MANAGED_BY}'] == '${ACTIVATOR_MANAGED_BY}' && ` +
            `(request.operation != 'UPDATE' || (${labels('oldObject')}.exists(k, k == '${ENDPOINTSLICE_MANAGED_BY}') && ${labels('oldObject')}['${ENDPOINTSLICE_MANAGED_BY}'] == '${ACTIVATOR_MANAGED_BY}')) && ` +
            `namespaceObject != null && ${labels('namespaceObject')}.exists(k, k == '${CONTROL_PLANE_LABEL}'))`,
          messageExpression: `${who} + 'an EndpointSlice of the activator carries its managed-by label and lives in a ControlPlane namespace'`,
          reason: 'Forbidden',
        },
        {
          expression:
            `!(${cp}) || (has(object.spec) == has(oldObject.spec) && (!has(object.spec) || object.spec == oldObject.spec) && ` +
            `${labels('object')} == ${labels('oldObject')} && ` +
            `(has(object.metadata.finalizers) ? object.metadata.finalizers : []) == (has(oldObject.metadata.finalizers) ? oldObject.metadata.finalizers : []) && ` +
            `!${ann('object')}.exists(k, k == '${SLEEP_ANNOTATION}') && ` +
            `${ann('object')}.all(k, ${ann('oldObject')}.exists(j, j == k) && ${ann('oldObject')}[k] == ${ann('object')}[k]) && ` +
            `${ann('oldObject')}.all(k, k == '${SLEEP_ANNOTATION}' || (${ann('object')}.exists(j, j == k) && ${ann('object')}[k] == ${ann('oldObject')}[k])))`,
          messageExpression: `${who} + 'on a ControlPlane it only removes the annotation ${SLEEP_ANNOTATION}'`,
          reason: 'Forbidden',
        },
      ],
    },
  });
  new ApiObject(scope, 'PolicyBinding', {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: ACTIVATOR_POLICY },
    spec: { policyName: ACTIVATOR_POLICY, validationActions: ['Deny'] },
  });
}
