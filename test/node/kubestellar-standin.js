// A stand-in for KubeStellar's WDS controllers at the API level (their images cannot be pulled here), run with
// `node -e` in the controller image, which has Node.js and our client. What it does is what they do with KubeFlex:
// find the ITS by name or, when ITS_NAME is empty, by the label kflex.kubestellar.io/cptype=its on ControlPlanes
// (hosting API, in-cluster ServiceAccount token); wait for Ready=True; read status.secretRef and the Secret's
// inClusterKey; reach the ITS API with it; and write what it saw into the WDS API (its mounted kubeconfig).
// No double braces anywhere: this text is a PostCreateHook template value, rendered as a Go template.
const fs = require('fs');
const { KubeClient } = require('/app/build/lib/kube/client.js');
const CP = '/apis/tenancy.kflex.kubestellar.org/v1alpha1/controlplanes';
const ready = (cp) => ((cp.status || {}).conditions || []).some((c) => c.type === 'Ready' && c.status === 'True');
async function once() {
  const hosting = KubeClient.fromFile(undefined);
  const name = process.env.ITS_NAME || '';
  const found = name
    ? [await hosting.get(CP + '/' + name)]
    : (await hosting.get(CP + '?labelSelector=' + encodeURIComponent('kflex.kubestellar.io/cptype=its'))).items;
  const its = found.filter((cp) => cp && ready(cp))[0];
  if (!its) throw new Error('no Ready ITS yet');
  const ref = its.status.secretRef;
  const secret = await hosting.get('/api/v1/namespaces/' + ref.namespace + '/secrets/' + ref.name);
  const itsApi = KubeClient.fromUntrusted(Buffer.from(secret.data[ref.inClusterKey], 'base64').toString('utf8'));
  const kubeSystem = await itsApi.get('/api/v1/namespaces/kube-system');
  const hub = await itsApi.get('/api/v1/namespaces/default/configmaps/its-hub');
  const wds = KubeClient.fromUntrusted(fs.readFileSync(process.env.WDS_KUBECONFIG, 'utf8'));
  const seen = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'kubestellar-' + process.env.WDS_NAME, namespace: 'default' },
    data: { its: its.metadata.name, itsKubeSystemUid: kubeSystem.metadata.uid, hubInit: hub ? 'done' : 'missing' },
  };
  await wds.createIfAbsent('/api/v1/namespaces/default/configmaps', seen);
  console.log('ITS ' + its.metadata.name + ' reached; wrote ConfigMap ' + seen.metadata.name);
}
(async () => {
  for (;;) {
    try {
      await once();
      break;
    } catch (e) {
      console.log('retrying: ' + e.message);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
  // A controller keeps running.
  setInterval(() => undefined, 1 << 30);
})();
