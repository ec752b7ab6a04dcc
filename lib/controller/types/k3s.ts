// The k3s type: a k3s server StatefulSet whose CA and kubeconfig the controller mints.
import { planK3sSecrets } from '../core';
import { TypeDriver } from './driver';

export const k3s: TypeDriver = {
  probesApi: true,
  reconcile: async (c) => {
    const plan = planK3sSecrets(c.names, c.config, c.lookup, c.opts);
    return { writes: plan.writes, notReady: plan.waitingFor && `waiting for ${plan.waitingFor}` };
  },
};
