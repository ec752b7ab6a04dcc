// Sleep on idle and wake on request on the real test node (test/node/node-cluster.ts): N k8s tenants registered on one
// PostgreSQL and asleep (synthesized with `sleeping: true`, served by the activator Pod), then
// - what they cost while asleep: the memory and CPU of the parts that grow with them (activator, controller and
//   materializer Pods, the hosting kube-apiserver process), before and after, per sleeping tenant;
// - AWAKE tenants woken and kept awake (in use), the background of what follows;
// - the first request to a sleeping tenant (TLS through its Service's ClusterIP, kube-proxy, the activator, the
//   tenant's own API server; the certificate verified against its CA), one at a time, WAKES times, each put back to
//   sleep before the next. Created asleep, each of these wakes is the tenant's first boot; with REWAKE=1 (default)
//   each tenant, once Ready (so marked booted), is put to sleep and woken again: the wake of a tenant that idled into
//   sleep, which the activator splices before the bootstrap hooks re-check;
// - STORM sleeping tenants woken by simultaneous first requests: until the last answers;
// - the woken tenants' Pods' memory and CPU while awake and idle: the cost of the same tenants awake, side by side.
// Usage: N=200 AWAKE=10 WAKES=20 STORM=20 npm run bench:sleep (root, scripts/prepare-binaries.sh and prepare-node.sh done).
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as path from 'path';
import { sliceName } from '../lib/activator/core';
import { synthTenant } from '../test/cluster/tenant';
import {
  cpuBetween,
  installHosting,
  podCgroup,
  podCpuNs,
  podGroup,
  printAudit,
  printCpu,
  printRequests,
  readCpu,
  requestCounts,
  setHostingConfig,
  startBenchNode,
} from './on-node';

const N = Number(process.env.N ?? 200);
const WAKES = Number(process.env.WAKES ?? 20);
const STORM = Number(process.env.STORM ?? 20);
const AWAKE = Number(process.env.AWAKE ?? 10);
const WINDOW_S = Number(process.env.WINDOW_S ?? 60);
const REWAKE = process.env.REWAKE !== '0';
// SLOTS: kubeflex-config's bootSlots for the run (default: as the hosting construct installs it).
const SLOTS = process.env.SLOTS;
// STORM_BOOTED=1 (default): the storm's tenants boot once first (a few at a time), are marked booted and put back to
// sleep, so the storm wakes tenants that idled into sleep, as tenants in use do; STORM_BOOTED=0 storms first boots.
const STORM_BOOTED = process.env.STORM_BOOTED !== '0';
if (AWAKE + WAKES + STORM > N) throw new Error(`N=${N} is fewer than AWAKE + WAKES + STORM (${AWAKE + WAKES + STORM})`);
// UNBOOT=1: the second wake without the booted mark (removed as the tenant goes to sleep), so the activator waits for
// the full /readyz as on a first boot: the same run's measure of what the mark saves.
const UNBOOT = process.env.UNBOOT === '1';
// GOGC: the tenants' `goGc` (default: the construct's): what a start's garbage collection costs a storm, against the
// memory an awake tenant holds.
const GOGC = process.env.GOGC ? Number(process.env.GOGC) : undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (bytes: number) => bytes / 1024 / 1024;
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};

const podMemory = (pod: any) =>
  Number(fs.readFileSync(path.join(podCgroup(pod, 'memory'), 'memory.usage_in_bytes'), 'utf8'));
const procRss = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const procCpuS = (pid: number) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

async function main(): Promise<void> {
  const bench = await startBenchNode('kflex-bench-sleep-', 'sleep');
  const { k, node } = bench;
  const apiserverPid = Number(
    execFileSync('pgrep', ['-f', `kube-apiserver.*${node.pki}`], { encoding: 'utf8' }).split('\n')[0],
  );
  // The bundled PostgreSQL too: it holds a database per tenant, and what a database costs at rest (autovacuum's
  // visits) is a cost of a sleeping tenant.
  const partOf = (p: any): string | undefined =>
    p.metadata.labels?.app?.startsWith('kubeflex-')
      ? p.metadata.labels.app
      : p.metadata.labels?.['app.kubernetes.io/name'] === 'postgresql'
        ? 'bundled PostgreSQL'
        : undefined;
  const systemPods = () =>
    JSON.parse(k(['get', 'pods', '-n', 'kubeflex-system', '-o', 'json'])).items.filter(
      (p: any) => p.status.phase === 'Running' && partOf(p),
    );
  /** Memory now and CPU over WINDOW_S of the parts that grow with the number of tenants. */
  const hostingCost = async () => {
    const pods = systemPods();
    const cpu0 = pods.map(podCpuNs);
    const api0 = procCpuS(apiserverPid);
    await sleep(WINDOW_S * 1000);
    const parts: Record<string, { mib: number; mcpu: number }> = {};
    pods.forEach((p: any, i: number) => {
      parts[partOf(p)!] = {
        mib: MiB(podMemory(p)),
        mcpu: (podCpuNs(p) - cpu0[i]) / 1e6 / WINDOW_S,
      };
    });
    parts['hosting kube-apiserver'] = {
      mib: MiB(procRss(apiserverPid)),
      mcpu: ((procCpuS(apiserverPid) - api0) * 1000) / WINDOW_S,
    };
    return parts;
  };
  /** The hosting API server's request counter (`apiserver_request_total`) by verb, resource and subresource. */
  const hostingRequests = () => requestCounts(k(['get', '--raw', '/metrics']));
  const names = Array.from({ length: N }, (_, i) => `nap${i + 1}`);
  try {
    console.log(
      `node ready in ${node.readyMs} ms; ${N} tenants, ${WAKES} single wakes, a storm of ${STORM}, boot slots ${SLOTS ?? 'as installed'}, GOGC ${GOGC ?? 'default'}`,
    );
    installHosting(bench, ['kubeflex-controller-manager', 'kubeflex-materializer', 'kubeflex-activator']);
    if (SLOTS) setHostingConfig(k, { bootSlots: SLOTS });
    await sleep(20_000);
    const before = await hostingCost();

    // N tenants, asleep from the start: the controller makes their databases, no API server Pod runs.
    const t0 = Date.now();
    for (let i = 0; i < names.length; i += 20) {
      const items = names.slice(i, i + 20).flatMap((n) => synthTenant(n, { sleeping: true, goGc: GOGC }));
      // Under load the API server's namespace cache can lag a Namespace made a moment before: apply again.
      for (let attempt = 1; ; attempt++) {
        try {
          k(
            ['apply', '--server-side', '--field-manager=cdk8s-kubeflex', '-f', '-'],
            JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
          );
          break;
        } catch (e) {
          if (attempt >= 5) throw e;
          await sleep(2_000);
        }
      }
    }
    const reasonOf = (cp: any) => cp.status?.conditions?.find((c: any) => c.type === 'Ready')?.reason;
    for (;;) {
      const cps = JSON.parse(k(['get', 'cp', '-o', 'json'])).items.filter((c: any) =>
        c.metadata.name.startsWith('nap'),
      );
      const slices = k([
        'get',
        'endpointslices',
        '-A',
        '-l',
        'endpointslice.kubernetes.io/managed-by=activator.kflex.kubestellar.org',
        '-o',
        'name',
      ])
        .split('\n')
        .filter(Boolean).length;
      const asleep = cps.filter((c: any) => reasonOf(c) === 'Sleeping' && c.metadata.finalizers?.length).length;
      if (asleep === N && slices === N) break;
      if (Date.now() - t0 > 3_600_000) throw new Error(`after 1 h: ${asleep} of ${N} asleep, ${slices} slices`);
      await sleep(5_000);
    }
    console.log(
      `${N} tenants registered, databases made, asleep and served by the activator in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    );
    await sleep(20_000);
    const after = await hostingCost();

    /** Where `cp`'s clients go: its Service's ClusterIP, and its CA (from the in-cluster kubeconfig). */
    const targetOf = (cp: string) => {
      const svc = JSON.parse(k(['get', 'svc', '-n', `${cp}-system`, cp, '-o', 'json']));
      const kc = Buffer.from(
        JSON.parse(k(['get', 'secret', '-n', `${cp}-system`, 'admin-kubeconfig', '-o', 'json'])).data[
          'kubeconfig-incluster'
        ],
        'base64',
      ).toString('utf8');
      return {
        cp,
        ip: svc.spec.clusterIP as string,
        ca: Buffer.from(/certificate-authority-data: (\S+)/.exec(kc)![1], 'base64'),
      };
    };
    /** GET /version through the target's Service ClusterIP, verified against its CA: ms until the answer. */
    const ask = async ({ cp, ip, ca }: ReturnType<typeof targetOf>) => {
      const started = Date.now();
      await new Promise<void>((resolve, reject) => {
        const req = https.request(
          {
            host: ip,
            port: 443,
            path: '/version',
            ca,
            servername: `${cp}.${cp}-system.svc`,
            timeout: 120_000,
          },
          (res) => {
            res.resume();
            res.on('end', () =>
              res.statusCode === 200 ? resolve() : reject(new Error(`${cp}: HTTP ${res.statusCode}`)),
            );
          },
        );
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error(`${cp}: no answer in 120 s`)));
        req.end();
      });
      return Date.now() - started;
    };
    /** The same for `cp`, its target read now. */
    const firstAnswer = (cp: string) => ask(targetOf(cp));
    // What the sleeping tenants cost, printed now (the wakes below change the picture).
    console.log('\n| part | before (no tenant) | with all asleep | per sleeping tenant |');
    console.log('|---|---:|---:|---:|');
    let perMiB = 0;
    let perMcpu = 0;
    for (const part of Object.keys(after)) {
      const b = before[part] ?? { mib: 0, mcpu: 0 };
      const a = after[part];
      // Its memory is mostly the page cache of the databases' files (their rows, which the goal leaves out): its CPU
      // counts, its memory is shown apart.
      if (part !== 'bundled PostgreSQL') perMiB += (a.mib - b.mib) / N;
      perMcpu += (a.mcpu - b.mcpu) / N;
      console.log(
        `| ${part} | ${b.mib.toFixed(0)} MiB, ${b.mcpu.toFixed(1)} mCPU | ${a.mib.toFixed(0)} MiB, ${a.mcpu.toFixed(1)} mCPU | ${((a.mib - b.mib) / N).toFixed(2)} MiB, ${((a.mcpu - b.mcpu) / N).toFixed(3)} mCPU |`,
      );
    }
    console.log(
      `| **sum** (PostgreSQL's memory, its page cache, left out) | | | **${perMiB.toFixed(2)} MiB, ${perMcpu.toFixed(3)} mCPU** |`,
    );

    const podsOf = (cp: string) =>
      JSON.parse(k(['get', 'pods', '-n', `${cp}-system`, '-o', 'json'])).items.filter(
        (p: any) => p.status.phase === 'Running',
      );
    // AWAKE tenants woken first and kept awake ("in use"): the background of every measure below.
    const inUse = names.slice(0, AWAKE);
    for (const cp of inUse) await firstAnswer(cp);
    // Long enough for their controller managers to start too: the background is tenants in use, not still booting.
    await sleep(Number(process.env.AWAKE_SETTLE_S ?? 60) * 1000);
    // One sleeping tenant at a time: its first request, then back to sleep (and its Pods gone) before the next.
    const single: number[] = [];
    const again: number[] = [];
    const toSleep = async (cp: string, unboot = false) => {
      // Put to sleep right after a wake, the plane may still be served by the activator for a moment (its Service
      // switches back once the Pod is Ready), and a request there then (the controller's own probe) wakes it again:
      // the activator removes the annotation, as for any request during a sleep. Set it again until the Pods go;
      // measuring a wake of a plane that never slept gave the 7 ms samples of earlier runs.
      let t = Date.now();
      for (let set = 0; ;) {
        const annotations = JSON.parse(k(['get', 'cp', cp, '-o', 'json'])).metadata.annotations ?? {};
        if (annotations['kflex.kubestellar.org/sleeping'] !== 'true') {
          if (set++) {
            // A client held at the activator (the controller's probe, say) wins over a sleep: let that wake finish
            // (Ready, and the activator's slice gone), then put it to sleep again, instead of fighting it.
            const since = Date.now();
            const activatorSlice = () =>
              k(['get', 'endpointslice', '-n', `${cp}-system`, '-o', 'name']).includes(sliceName(cp));
            while ((readyOf(cp) !== 'True' || activatorSlice()) && Date.now() - since < 120_000) await sleep(1_000);
            // How long this wake took matters too: its new Pod starts while the old one still terminates.
            console.log(
              `${cp}: woken again while going to sleep; Ready again after ${Date.now() - since} ms, then asleep again`,
            );
            t = Date.now();
          }
          // One request, so the controller never sees the plane awake without its mark and marks it again.
          k([
            'annotate',
            'cp',
            cp,
            '--overwrite',
            'kflex.kubestellar.org/sleeping=true',
            ...(unboot ? ['kflex.kubestellar.org/booted-'] : []),
          ]);
        }
        if (!podsOf(cp).length) return;
        if (Date.now() - t > 120_000) throw new Error(`${cp}: Pods still there 120 s after it was put to sleep`);
        await sleep(1_000);
      }
    };
    const readyOf = (cp: string) =>
      JSON.parse(k(['get', 'cp', cp, '-o', 'json'])).status?.conditions?.find((c: any) => c.type === 'Ready')?.status;
    for (const cp of names.slice(AWAKE, AWAKE + WAKES)) {
      single.push(await firstAnswer(cp));
      console.log(`${cp}: first request answered after ${single[single.length - 1]} ms`);
      if (REWAKE) {
        // Ready (its API answered ready, so the controller marked it booted), as a tenant that idled into sleep is.
        const t = Date.now();
        while (readyOf(cp) !== 'True' && Date.now() - t < 120_000) await sleep(500);
        const booted = JSON.parse(k(['get', 'cp', cp, '-o', 'json'])).metadata.annotations?.[
          'kflex.kubestellar.org/booted'
        ];
        await toSleep(cp, UNBOOT);
        again.push(await firstAnswer(cp));
        console.log(
          `${cp}: woken again (booted=${UNBOOT ? 'removed' : booted}), answered after ${again[again.length - 1]} ms`,
        );
      }
      await toSleep(cp);
    }
    // STORM sleeping tenants at once.
    const stormNames = names.slice(AWAKE + WAKES, AWAKE + WAKES + STORM);
    if (STORM_BOOTED) {
      const t = Date.now();
      for (let i = 0; i < stormNames.length; i += 4) {
        await Promise.all(
          stormNames.slice(i, i + 4).map(async (cp) => {
            await firstAnswer(cp);
            const t1 = Date.now();
            while (readyOf(cp) !== 'True' && Date.now() - t1 < 120_000) await sleep(500);
          }),
        );
      }
      await Promise.all(stormNames.map((cp) => toSleep(cp)));
      console.log(`storm tenants booted once and asleep again in ${((Date.now() - t) / 1000).toFixed(0)} s`);
      await sleep(20_000);
    }
    const allPods = () => JSON.parse(k(['get', 'pods', '-A', '-o', 'json'])).items;
    // Where each client goes is read before: the requests leave together (reading it in the storm ran two kubectl
    // each, one after another, so the last request left ~2 s late and the storm's CPU held 40 kubectl runs).
    const targets = stormNames.map(targetOf);
    const requests0 = hostingRequests();
    const stormReading = readCpu(allPods());
    const stormStart = Date.now();
    const storm = await Promise.all(targets.map((t) => ask(t).catch((e) => `failed: ${e.message}`)));
    const stormAll = Date.now() - stormStart;
    const stormCpu = cpuBetween(stormReading, readCpu(allPods()), podGroup);
    const stormCpuS = stormCpu.machineS;
    printCpu("Where the wake storm's CPU went", stormCpu, STORM);
    printRequests('What the hosting API server was asked during the wake storm', requests0, hostingRequests(), STORM);
    printAudit('Who asked the hosting API server what during the wake storm', stormStart, stormStart + stormAll);
    const answered = storm.filter((x) => typeof x === 'number').length;
    console.log(
      `storm of ${STORM} (${STORM_BOOTED ? 'booted before' : 'first boots'}): ${answered} answered, the last result after ${stormAll} ms (${storm.join(', ')}); ` +
        `machine CPU ${stormCpuS.toFixed(0)} CPU-s, ${(stormCpuS / STORM).toFixed(1)} per wake: a floor of ${(stormCpuS / 2).toFixed(0)} s on 2 cores`,
    );

    // The woken tenants, awake and idle, side by side with the sleeping ones.
    await sleep(30_000);
    const awake = [...inUse, ...stormNames];
    const pods = awake.flatMap(podsOf);
    const cpu0 = pods.map(podCpuNs);
    await sleep(WINDOW_S * 1000);
    const awakeMiB = pods.reduce((s: number, p: any) => s + MiB(podMemory(p)), 0) / awake.length;
    const awakeMcpu =
      pods.reduce((s: number, p: any, i: number) => s + (podCpuNs(p) - cpu0[i]) / 1e6 / WINDOW_S, 0) / awake.length;
    const sleepingNow = N - awake.length;

    console.log('\n| measure | value |');
    console.log('|---|---:|');
    console.log(
      `| first request to a sleeping tenant, one at a time (${WAKES}, ${AWAKE} others awake) | p50 ${(quantile(single, 0.5) / 1000).toFixed(2)} s, p99 ${(quantile(single, 0.99) / 1000).toFixed(2)} s (max of ${WAKES}) |`,
    );
    if (again.length)
      console.log(
        `| the same tenants woken again, once Ready (${UNBOOT ? 'the booted mark removed' : 'marked booted'}) | p50 ${(quantile(again, 0.5) / 1000).toFixed(2)} s, p99 ${(quantile(again, 0.99) / 1000).toFixed(2)} s (max of ${again.length}) |`,
      );
    console.log(
      `| ${STORM} woken at once: answered, and the last result | ${answered} of ${STORM}, ${(stormAll / 1000).toFixed(1)} s |`,
    );
    console.log(
      `| an awake idle tenant (its Pods, ${awake.length} measured while ${sleepingNow} sleep) | ${awakeMiB.toFixed(0)} MiB, ${awakeMcpu.toFixed(1)} mCPU |`,
    );
    console.log(`| ratio awake / asleep, memory | ${(awakeMiB / Math.max(perMiB, 0.01)).toFixed(0)}x |`);
  } finally {
    await bench.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
