// What a control-plane type does in a pass of the controller: one driver per type (types/<type>.ts), held in the
// exhaustive table of types/index.ts, so a new type is one file and one line, and the compiler names what is missing.
import type { HostingConfig } from '../../hosting-config';
import type { Logger } from '../../kube/log';
import type { TenantNames } from '../../names';
import type { ControlPlaneObject, SecretData, SecretWrite } from '../core';
import type { Observed, ReconcileDeps, SecretKey } from '../pass';

/** What a driver's step of a pass sees: the plane, its namespace, the install's settings and the Secrets read. */
export interface PassContext {
  readonly deps: ReconcileDeps;
  readonly cp: ControlPlaneObject;
  readonly names: TenantNames;
  /** The plane's namespace object (its labels and the materializer's annotations). */
  readonly ns: { metadata?: { annotations?: Record<string, string> } };
  readonly config: HostingConfig;
  readonly observed: Observed;
  readonly lookup: (ns: string, n: string) => SecretData | undefined;
  readonly opts: { now: Date; certValiditySeconds: number; caValiditySeconds: number };
  /** The OpenShift Route's host, for types exposed by a Route on OpenShift. */
  readonly routeHost?: string;
  readonly log: Logger;
}

/** What a driver's step decided. */
export interface StepResult {
  /** Secrets to write (the pass writes them, one writer). */
  readonly writes?: SecretWrite[];
  /** Why the plane is not Ready yet. */
  readonly notReady?: string;
  /** When to look again (token renewal), in ms. */
  readonly requeueAfterMs?: number;
  /**
   * What to do once the writes are stored (k8s: make the database with the password just written), and what it
   * decided in turn. @default - nothing
   */
  readonly after?: () => Promise<AfterResult>;
}

/** What a step's `after` decided. */
export interface AfterResult {
  /** More Secrets to write. */
  readonly writes?: SecretWrite[];
  /** Why the plane is not Ready yet, besides what its workload and API say (both are still looked at). */
  readonly notReady?: string;
  /** The plane may get its finalizer now (k8s: its database exists). */
  readonly mayFinalize?: boolean;
}

/** One control-plane type, as the controller serves it. */
export interface TypeDriver {
  /** Secrets a pass reads besides the type's contract (TYPE_CONTRACTS). @default - none */
  readonly extraSecrets?: (names: TenantNames, config: HostingConfig) => SecretKey[];
  /** Whether the plane may get the finalizer now (k8s: once its database exists). @default - always */
  readonly mayFinalize?: (deps: ReconcileDeps, names: TenantNames) => Promise<boolean>;
  /** Exposed by an OpenShift Route on OpenShift (its host goes into the kubeconfig). @default false */
  readonly openShiftRoute?: boolean;
  /** Whether Ready needs the API server to answer discovery with the kubeconfig (host: the Secret suffices). */
  readonly probesApi: boolean;
  /** The Ready condition's message. @default - none */
  readonly readyMessage?: string;
  /** The type's step: Secrets to mint or renew, what it waits for. */
  readonly reconcile: (c: PassContext) => Promise<StepResult>;
  /** Runs when the plane is deleted, before its namespace goes (k8s: drops its database). @default - nothing */
  readonly finalize?: (deps: ReconcileDeps, cp: ControlPlaneObject, log: Logger) => Promise<void>;
}
