// Writes our CRDs (source of truth: lib/crds.ts) to crds/tenancy.kflex.kubestellar.org.yaml; `npm run import` then generates imports/ from them.
import * as fs from 'fs';
import * as path from 'path';
import { stringify } from 'yaml';
import { CONTROL_PLANE_CRD, POST_CREATE_HOOK_CRD } from '../lib/crds';

const dir = path.join(__dirname, '..', 'crds');
fs.mkdirSync(dir, { recursive: true });
const header = '# Generated from lib/crds.ts by `npm run import`; do not edit.\n';
// One file for both kinds: `cdk8s import` names its output after the API group, so two files would collide.
const docs = [CONTROL_PLANE_CRD, POST_CREATE_HOOK_CRD].map((d) => stringify(d));
fs.writeFileSync(path.join(dir, 'tenancy.kflex.kubestellar.org.yaml'), header + docs.join('---\n'));
