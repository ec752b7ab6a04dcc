#!/usr/bin/env node
// kubeflex-controller: the runtime controller. In the cluster it uses its ServiceAccount; locally any kubeconfig.
import { parseConnectTo, parseDuration, parseFlags, UsageError } from '../kube/args';
import { KubeClient } from '../kube/client';
import { jsonLogger, Level } from '../kube/log';
import { Manager } from './manager';

const USAGE = `Usage: kubeflex-controller [flags]

Reconciles KubeFlex ControlPlanes: mints certificates, kubeconfigs and database credentials into Secrets and
writes ControlPlane status. Logs are JSON lines on stdout.

Flags:
  --kubeconfig PATH         kubeconfig of the hosting cluster (default: in-cluster, then $KUBECONFIG, ~/.kube/config)
  --health-port N           serve /healthz and /readyz on this port (default 8081; 0 = off)
  --workers N               parallel reconciles (default 4)
  --resync DURATION         full resync period (default 15m)
  --cert-validity DURATION  validity of issued leaf certificates (default 8760h = one year)
  --ca-validity DURATION    validity of the CAs (default 5 x --cert-validity)
  --requeue-not-ready DUR   look again at a control plane that is not ready (default 15s)
  --requeue-hooks DUR       look again while waiting for PostCreateHooks (default 30s)
  --token-renew-fraction F renew adopted clusters' and host planes' tokens after this fraction of their lifetime (default 0.8)
  --host-token-ttl DUR      lifetime of host planes' TokenRequest tokens (default 24h; at least 10m)
  --connect-to H:P=A:P      connect to A:P for H:P, verifying TLS for H (repeatable; for running outside the cluster)
  --log-level LEVEL         debug, info, warn or error (default info)
  --help                    this text
`;

function hostTokenSeconds(ms: number): number {
  if (ms < 600_000) throw new UsageError(`--host-token-ttl must be at least 10m (the TokenRequest minimum)`);
  return Math.floor(ms / 1000);
}

export async function main(argv: string[]): Promise<number> {
  let manager: Manager;
  try {
    const { flags, positional } = parseFlags(argv, {
      strings: [
        'kubeconfig',
        'health-port',
        'workers',
        'resync',
        'cert-validity',
        'ca-validity',
        'requeue-not-ready',
        'requeue-hooks',
        'log-level',
        'token-renew-fraction',
        'host-token-ttl',
      ],
      booleans: ['help'],
      repeatable: ['connect-to'],
    });
    if (flags.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
    const int = (name: string, def: number) => {
      const v = flags[name] as string | undefined;
      if (v === undefined) return def;
      if (!/^\d+$/.test(v)) throw new UsageError(`--${name}=${v} is not a non-negative integer`);
      return Number(v);
    };
    const dur = (name: string, def: string) => parseDuration(name, (flags[name] as string | undefined) ?? def);
    const level = ((flags['log-level'] as string | undefined) ?? 'info') as Level;
    if (!['debug', 'info', 'warn', 'error'].includes(level))
      throw new UsageError(`--log-level=${level} is not one of debug, info, warn, error`);
    const connectTo = parseConnectTo((flags['connect-to'] as string[] | undefined) ?? []);
    const kubeconfig = (flags.kubeconfig as string | undefined) ?? process.env.KUBECONFIG;
    let hosting: KubeClient;
    try {
      hosting = KubeClient.fromFile(kubeconfig, connectTo);
      if (!hosting.server) throw new Error('no current cluster');
    } catch (e) {
      throw new UsageError(`cannot load kubeconfig${kubeconfig ? ` ${kubeconfig}` : ''}: ${(e as Error).message}`);
    }
    const validity = dur('cert-validity', '8760h');
    if (validity < 3_600_000) throw new UsageError('--cert-validity must be at least 1h');
    if (dur('ca-validity', `${(5 * validity) / 1000}s`) < 2 * validity)
      throw new UsageError('--ca-validity must be at least twice --cert-validity');
    const fraction = Number((flags['token-renew-fraction'] as string | undefined) ?? '0.8');
    if (!(fraction > 0 && fraction < 1)) {
      throw new UsageError(`--token-renew-fraction=${String(flags['token-renew-fraction'])} must be between 0 and 1`);
    }
    manager = new Manager({
      tokenRenewFraction: fraction,
      hostTokenSeconds: hostTokenSeconds(dur('host-token-ttl', '24h')),
      hosting,
      log: jsonLogger(level),
      connectTo,
      workers: Math.max(1, int('workers', 4)),
      resyncMs: dur('resync', '15m'),
      certValiditySeconds: validity / 1000,
      caValiditySeconds: dur('ca-validity', `${(5 * validity) / 1000}s`) / 1000,
      notReadyRequeueMs: dur('requeue-not-ready', '15s'),
      hooksRequeueMs: dur('requeue-hooks', '30s'),
      healthPort: int('health-port', 8081),
    });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`kubeflex-controller: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  await manager.start();
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await manager.stop();
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
      process.stderr.write(`kubeflex-controller: ${e.message}\n`);
      process.exit(1);
    },
  );
}
