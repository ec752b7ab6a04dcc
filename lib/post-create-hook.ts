import { Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import { PostCreateHook as PostCreateHookApi } from '../imports/tenancy.kflex.kubestellar.org';
import { embeddedTemplateProblems, valueAtPath } from './api-validation';
import { checkDnsSubdomain, KubeflexConfigError } from './errors';
import { actionsIn, CLUSTER_SCOPED_KINDS, HookRenderContext, renderHookTemplates, VARIABLE } from './hook-render';
import { IKubeflexHosting, registerPostCreateHook } from './hosting-face';

export { BUILT_IN_HOOK_VARS, CLUSTER_SCOPED_KINDS, HookRenderContext } from './hook-render';

/** Props of PostCreateHook. */
export interface PostCreateHookProps {
  /** The hosting install the hook belongs to; control planes of that install can use it by name. */
  readonly hosting: IKubeflexHosting;
  /** Name of the PostCreateHook object. @default - the construct id */
  readonly name?: string;
  /** Templated Kubernetes objects; more can be added with addTemplate(). @default - none */
  readonly templates?: Record<string, unknown>[];
  /** Default values of template variables (lowest precedence). @default - none */
  readonly defaultVars?: Record<string, string>;
  /** Labels of the hook object; KubeFlex merges them into the labels of control planes that use it. @default - none */
  readonly labels?: Record<string, string>;
  /**
   * Allow cluster-scoped templates (ClusterRoleBinding, CRDs, webhooks...). They are applied to the hosting cluster
   * with the installer's rights, outside any tenant namespace, so a hook that has them is admin-level (review M8).
   * @default false
   */
  readonly allowClusterScoped?: boolean;
  /**
   * The Pod Security level this hook's workloads need, when they do not meet `restricted` (KubeStellar's controllers
   * meet `baseline`). A control plane that uses the hook enforces this level in `<cp>-system` instead of its own
   * stricter one. Emitted as annotation `kflex.kubestellar.org/pod-security` on the PostCreateHook object, which is
   * how an admin opts a hook in on a cluster (writing PostCreateHooks is an admin right); never `privileged`.
   * @default - the control plane's own level
   */
  readonly podSecurity?: 'restricted' | 'baseline';
  /**
   * What this hook's workloads must reach beyond their own namespace and DNS, which is all a k8s or k3s plane's
   * default-deny lets out: `hosting-api` (the hosting cluster's API server; KubeStellar's controllers read
   * ControlPlanes there) and `control-planes` (the API servers of other planes; KubeStellar's WDS controllers talk to
   * the ITS). Each plane that uses the hook gets a NetworkPolicy for the hook's pods only (label
   * `kflex.kubestellar.org/hook`), and planes it reaches admit them. Emitted as annotation
   * `kflex.kubestellar.org/egress` (comma-separated), which is how an admin declares it on a cluster.
   * @default - none
   */
  readonly egress?: HookEgress[];
}

/** A destination a hook's workloads may reach (PostCreateHookProps.egress). */
export type HookEgress = 'hosting-api' | 'control-planes';
/** Every HookEgress value. */
export const HOOK_EGRESS_VALUES: readonly HookEgress[] = ['hosting-api', 'control-planes'];

/** Annotation on a PostCreateHook object: the Pod Security level its workloads need (`restricted` or `baseline`). */
export const HOOK_POD_SECURITY_ANNOTATION = 'kflex.kubestellar.org/pod-security';
/** Annotation on a PostCreateHook object: what its workloads may reach (HookEgress values, comma-separated). */
export const HOOK_EGRESS_ANNOTATION = 'kflex.kubestellar.org/egress';

/**
 * A KubeFlex PostCreateHook: emits the PostCreateHook object and renders its templates, at synth time, for each
 * control plane that uses it, with KubeFlex's variable precedence:
 * defaultVars < control plane globalVars < per-use vars < built-ins (Namespace, ControlPlaneName, HookName).
 */
export class PostCreateHook extends Construct {
  /** Name of the PostCreateHook object. */
  public readonly hookName: string;
  private readonly templates: Record<string, unknown>[] = [];
  private readonly defaultVars: { name: string; value: string }[] = [];
  private used = false;
  private readonly hookLabels: Record<string, string>;
  private readonly allowClusterScoped: boolean;
  /** The Pod Security level its workloads need, if less strict than a plane's own. */
  public readonly podSecurity?: 'restricted' | 'baseline';
  /** What its workloads may reach beyond their namespace (sorted, no duplicates). */
  public readonly egress: readonly HookEgress[];

  public constructor(scope: Construct, id: string, props: PostCreateHookProps) {
    super(scope, id);
    this.hookName = props.name ?? id;
    this.hookLabels = { ...(props.labels ?? {}) };
    this.allowClusterScoped = props.allowClusterScoped ?? false;
    const where = `PostCreateHook "${this.node.path}"`;
    checkDnsSubdomain(where, 'name', this.hookName);
    if (props.podSecurity !== undefined && props.podSecurity !== 'restricted' && props.podSecurity !== 'baseline') {
      throw new KubeflexConfigError(
        where,
        'podSecurity',
        props.podSecurity,
        'must be "restricted" or "baseline" (hook workloads never run privileged)',
      );
    }
    this.podSecurity = props.podSecurity;
    const egress = props.egress ?? [];
    for (const [i, e] of egress.entries()) {
      if (!HOOK_EGRESS_VALUES.includes(e)) {
        throw new KubeflexConfigError(where, `egress[${i}]`, e, `must be one of ${HOOK_EGRESS_VALUES.join(', ')}`);
      }
    }
    this.egress = [...new Set(egress)].sort();
    const annotations: Record<string, string> = {
      ...(props.podSecurity ? { [HOOK_POD_SECURITY_ANNOTATION]: props.podSecurity } : {}),
      ...(this.egress.length ? { [HOOK_EGRESS_ANNOTATION]: this.egress.join(',') } : {}),
    };
    for (const [name, value] of Object.entries(props.defaultVars ?? {})) this.addDefaultVar(name, value);
    for (const t of props.templates ?? []) this.addTemplate(t);

    new PostCreateHookApi(this, 'Resource', {
      metadata: {
        name: this.hookName,
        labels: props.labels,
        ...(Object.keys(annotations).length ? { annotations } : {}),
      },
      // Rendered at synth, so templates and variables added later are included (no shared mutable array).
      spec: {
        templates: Lazy.any({ produce: () => this.templates.map((t) => t) }),
        defaultVars: Lazy.any({ produce: () => this.defaultVars.map((v) => ({ ...v })) }),
      },
    });
    registerPostCreateHook(props.hosting, this);
    this.node.addValidation({
      validate: () => (this.templates.length === 0 ? [`${where}: no templates were added (use addTemplate())`] : []),
    });
  }

  /** Labels of the hook object. */
  public get labels(): Record<string, string> {
    return { ...this.hookLabels };
  }

  /** Adds a templated Kubernetes object (must have apiVersion, kind and metadata.name). */
  public addTemplate(template: Record<string, unknown>): void {
    const where = `PostCreateHook "${this.node.path}"`;
    this.checkNotUsed('addTemplate');
    const meta = template.metadata as Record<string, unknown> | undefined;
    if (
      typeof template.apiVersion !== 'string' ||
      typeof template.kind !== 'string' ||
      typeof meta?.name !== 'string'
    ) {
      throw new KubeflexConfigError(
        where,
        `templates[${this.templates.length}]`,
        template,
        'needs apiVersion, kind and metadata.name',
      );
    }
    if (CLUSTER_SCOPED_KINDS.has(template.kind) && !this.allowClusterScoped) {
      throw new KubeflexConfigError(
        where,
        `templates[${this.templates.length}].kind`,
        template.kind,
        'is cluster-scoped: it would be applied to the hosting cluster outside the tenant namespace with the ' +
          "installer's rights; set allowClusterScoped: true if this hook is meant to do that",
      );
    }
    // The API server validates each template's apiVersion, kind and metadata as written, `{{.Var}}` included.
    const problems = embeddedTemplateProblems(template, `templates[${this.templates.length}]`);
    if (problems.length) {
      const p = problems[0];
      throw new KubeflexConfigError(
        where,
        p.path,
        valueAtPath(template, p.path.replace(/^templates\[\d+\]\.?/, '')),
        `${p.message}; the API server checks PostCreateHook templates before any variable is rendered (templates land in the control plane's namespace: leave metadata.namespace out, and keep {{.Var}} out of label values)`,
      );
    }
    for (const action of actionsIn(template)) {
      if (!VARIABLE.test(action)) {
        throw new KubeflexConfigError(
          where,
          `templates[${this.templates.length}]`,
          `{{${action}}}`,
          'only {{.Variable}} actions are supported',
        );
      }
    }
    this.templates.push(structuredClone(template));
  }

  /** Adds a default value for a variable. */
  public addDefaultVar(name: string, value: string): void {
    const where = `PostCreateHook "${this.node.path}"`;
    this.checkNotUsed('addDefaultVar');
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
      throw new KubeflexConfigError(
        where,
        'defaultVars',
        name,
        'variable names must be identifiers ([A-Za-z_][A-Za-z0-9_]*)',
      );
    }
    if (this.defaultVars.some((v) => v.name === name)) {
      throw new KubeflexConfigError(where, 'defaultVars', name, 'is defined twice');
    }
    this.defaultVars.push({ name, value });
  }

  /** Names of the variables the templates use, sorted. */
  public get variables(): string[] {
    const names = new Set<string>();
    for (const t of this.templates) for (const a of actionsIn(t)) names.add(VARIABLE.exec(a)![1]);
    return [...names].sort();
  }

  /**
   * Renders the templates for one control plane. Throws when a variable is used but defined nowhere, or a
   * namespaced template names a namespace other than the control plane's.
   */
  public render(ctx: HookRenderContext): Record<string, unknown>[] {
    this.used = true;
    const result = renderHookTemplates(this.hookName, this.templates, this.defaultVars, ctx);
    if ('objects' in result) return result.objects;
    if (result.error.prop === 'vars') {
      throw new KubeflexConfigError(
        ctx.controlPlanePath,
        `postCreateHooks[${this.hookName}].vars`,
        result.error.value,
        result.error.reason,
      );
    }
    throw new KubeflexConfigError(
      `PostCreateHook "${this.node.path}"`,
      result.error.prop,
      result.error.value,
      result.error.reason,
    );
  }

  private checkNotUsed(method: string): void {
    if (this.used) {
      throw new KubeflexConfigError(
        `PostCreateHook "${this.node.path}"`,
        method,
        this.hookName,
        'the hook was already rendered for a control plane; add templates and vars before using it',
      );
    }
  }
}
