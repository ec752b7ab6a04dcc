// The vcluster type: vCluster writes its own kubeconfig; the controller derives KubeFlex's Secret from it.
import { planVClusterSecrets } from '../core';
import { TypeDriver } from './driver';

export const vcluster: TypeDriver = {
  probesApi: true,
  openShiftRoute: true,
  reconcile: async (c) => {
    const plan = planVClusterSecrets(c.names, c.lookup);
    return { writes: plan.writes, notReady: plan.waitingFor && `waiting for ${plan.waitingFor}` };
  },
};
