#!/usr/bin/env node
// kubeflex-wait-for-apiserver: the init container of hook Jobs. Polls core/v1 discovery with a kubeconfig until the
// tenant API answers, so hook Jobs do not burn their backoffLimit while the control plane starts.
import * as fs from 'fs';
import { parseDuration, parseFlags, UsageError } from '../kube/args';
import { KubeClient, sleep } from '../kube/client';

export async function waitForApiserver(argv: string[], out = (s: string) => process.stderr.write(s)): Promise<number> {
  try {
    const { flags } = parseFlags(argv, { strings: ['kubeconfig', 'timeout', 'interval'], booleans: ['help'] });
    if (flags.help) {
      out('Usage: kubeflex-wait-for-apiserver --kubeconfig PATH [--timeout 600s] [--interval 2s]\n');
      return 0;
    }
    const path = flags.kubeconfig as string | undefined;
    if (!path) throw new UsageError('--kubeconfig is required');
    const timeout = parseDuration('timeout', (flags.timeout as string | undefined) ?? '600s');
    const interval = parseDuration('interval', (flags.interval as string | undefined) ?? '2s');
    const deadline = Date.now() + timeout;
    let last = '';
    while (Date.now() < deadline) {
      try {
        // The Secret volume may still be empty right after the control plane was created.
        const client = KubeClient.fromUntrusted(fs.readFileSync(path, 'utf8'), {}, 5000);
        try {
          await client.request('GET', '/api/v1');
          out(`API server ${client.server} is answering\n`);
          return 0;
        } finally {
          client.close();
        }
      } catch (e) {
        const msg = (e as Error).message;
        if (msg !== last) out(`waiting: ${msg}\n`);
        last = msg;
      }
      await sleep(interval);
    }
    out(`gave up after ${timeout / 1000}s: ${last}\n`);
    return 1;
  } catch (e) {
    if (e instanceof UsageError) {
      out(`kubeflex-wait-for-apiserver: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

if (require.main === module) {
  void waitForApiserver(process.argv.slice(2)).then((code) => process.exit(code));
}
