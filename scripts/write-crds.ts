// Our CRDs (source of truth: lib/crds.ts) as crds/tenancy.kflex.kubestellar.org.yaml: written by `npm run import`
// (scripts/import.ts), checked by test/freshness.test.ts.
import * as path from 'path';
import { stringify } from 'yaml';
import { CONTROL_PLANE_CRD, POST_CREATE_HOOK_CRD } from '../lib/crds';

/** The file's path and its exact text. */
export const CRDS_FILE = path.join(__dirname, '..', 'crds', 'tenancy.kflex.kubestellar.org.yaml');
export function crdsYaml(): string {
  const header = '# Generated from lib/crds.ts by `npm run import`; do not edit.\n';
  // One file for both kinds: `cdk8s import` names its output after the API group, so two files would collide.
  return header + [CONTROL_PLANE_CRD, POST_CREATE_HOOK_CRD].map((d) => stringify(d)).join('---\n');
}
