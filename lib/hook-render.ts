// Rendering of PostCreateHook templates, shared by the PostCreateHook construct (synth time) and the runtime
// controller (which renders the same way to know which objects a hook consists of). No I/O, no cdk8s.

/** What a control plane tells a hook when rendering it. */
export interface HookRenderContext {
  /** Path of the control-plane construct (or the object name at runtime), for error messages. */
  readonly controlPlanePath: string;
  /** Control plane name. */
  readonly controlPlaneName: string;
  /** `<name>-system`. */
  readonly namespace: string;
  /** Variables from the control plane's globalVars. */
  readonly globalVars: Record<string, string>;
  /** Variables given for this use of the hook. */
  readonly vars: Record<string, string>;
}

/** Why a hook could not be rendered: the offending prop, its value and the reason. */
export interface HookRenderError {
  readonly prop: string;
  readonly value: unknown;
  readonly reason: string;
}

/** Built-in variables, which override every user-defined one (KubeFlex precedence). */
export const BUILT_IN_HOOK_VARS = ['Namespace', 'ControlPlaneName', 'HookName'] as const;

/**
 * Kinds that are cluster-scoped in Kubernetes; KubeFlex asks discovery, we know them at synth time.
 * Anything else is treated as namespaced and placed in the control plane's namespace.
 */
export const CLUSTER_SCOPED_KINDS = new Set([
  'APIService',
  'CertificateSigningRequest',
  'ClusterRole',
  'ClusterRoleBinding',
  'CSIDriver',
  'CSINode',
  'CustomResourceDefinition',
  'FlowSchema',
  'IngressClass',
  'MutatingWebhookConfiguration',
  'Namespace',
  'Node',
  'PersistentVolume',
  'PriorityClass',
  'PriorityLevelConfiguration',
  'RuntimeClass',
  'StorageClass',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'ValidatingWebhookConfiguration',
  'VolumeAttachment',
]);

// Go text/template actions. We support exactly `{{.Name}}` (with optional spaces), which is what KubeFlex hooks use.
export const ACTION = /\{\{-?\s*(.*?)\s*-?\}\}/g;
export const VARIABLE = /^\.([A-Za-z_][A-Za-z0-9_]*)$/;

/**
 * Renders a hook's templates for one control plane with KubeFlex's variable precedence:
 * defaultVars < control plane globalVars < per-use vars < built-ins (Namespace, ControlPlaneName, HookName).
 */
export function renderHookTemplates(
  hookName: string,
  templates: readonly Record<string, unknown>[],
  defaultVars: readonly { name: string; value: string }[],
  ctx: HookRenderContext,
): { objects: Record<string, any>[] } | { error: HookRenderError } {
  const vars: Record<string, string> = {
    ...Object.fromEntries(defaultVars.map((v) => [v.name, v.value])),
    ...ctx.globalVars,
    ...ctx.vars,
    Namespace: ctx.namespace,
    ControlPlaneName: ctx.controlPlaneName,
    HookName: hookName,
  };
  const used = new Set<string>();
  for (const t of templates) {
    for (const a of actionsIn(t)) {
      const m = VARIABLE.exec(a);
      if (!m)
        return { error: { prop: 'templates', value: `{{${a}}}`, reason: 'only {{.Variable}} actions are supported' } };
      used.add(m[1]);
    }
  }
  const missing = [...used].sort().filter((v) => !(v in vars));
  if (missing.length > 0) {
    return {
      error: {
        prop: 'vars',
        value: missing,
        reason: `hook "${hookName}" uses ${missing.map((m) => `{{.${m}}}`).join(', ')} but no defaultVars, globalVars or vars define it`,
      },
    };
  }
  const objects: Record<string, any>[] = [];
  for (const [i, t] of templates.entries()) {
    const obj = substitute(t, vars) as Record<string, any>;
    obj.metadata = { ...(obj.metadata ?? {}) };
    if (CLUSTER_SCOPED_KINDS.has(obj.kind)) {
      // KubeFlex marks cluster-scoped hook objects this way so that deleting the control plane collects them.
      obj.metadata.labels = { ...obj.metadata.labels, 'app.kubernetes.io/managed-by': 'Helm' };
      obj.metadata.annotations = { ...obj.metadata.annotations, 'meta.helm.sh/release-namespace': ctx.namespace };
    } else {
      if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== ctx.namespace) {
        return {
          error: {
            prop: `templates[${i}].metadata.namespace`,
            value: obj.metadata.namespace,
            reason: `namespaced hook objects must live in the control plane's namespace "${ctx.namespace}"`,
          },
        };
      }
      obj.metadata.namespace = ctx.namespace;
    }
    objects.push(obj);
  }
  return { objects };
}

/** Every template action (the text between `{{` and `}}`) in a value, keys included. */
export function actionsIn(value: unknown): string[] {
  const out: string[] = [];
  const visit = (v: unknown) => {
    if (typeof v === 'string') {
      for (const m of v.matchAll(ACTION)) out.push(m[1]);
    } else if (Array.isArray(v)) {
      v.forEach(visit);
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        visit(k);
        visit(x);
      }
    }
  };
  visit(value);
  return out;
}

function substitute(value: unknown, vars: Record<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(ACTION, (_m, action: string) => vars[VARIABLE.exec(action)![1]]);
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [substitute(k, vars) as string, substitute(v, vars)]),
    );
  }
  return value;
}
