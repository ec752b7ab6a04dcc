// Every control-plane type the controller serves, one driver each. The Record is exhaustive over the type names of
// the wire contract: a type added there without a driver here does not compile.
import { ControlPlaneTypeName } from '../../wire';
import { TypeDriver } from './driver';
import { external } from './external';
import { host } from './host';
import { k3s } from './k3s';
import { k8s } from './k8s';
import { vcluster } from './vcluster';

export const DRIVERS: Readonly<Record<ControlPlaneTypeName, TypeDriver>> = { k8s, k3s, vcluster, host, external };

/** The driver of `type`, or undefined for a type this controller does not serve (input from tenants is any string). */
export function driverFor(type: string | undefined): TypeDriver | undefined {
  return type !== undefined && Object.prototype.hasOwnProperty.call(DRIVERS, type)
    ? DRIVERS[type as ControlPlaneTypeName]
    : undefined;
}

export type { PassContext, StepResult, TypeDriver } from './driver';
