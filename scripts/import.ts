// `npm run import`: writes crds/ from lib/crds.ts, then the bindings in imports/ from the CRDs cdk8s.yaml lists
// (one `cdk8s import` per source, run from a scratch directory because it edits the cdk8s.yaml where it runs),
// formatted with the repository's prettier settings. test/freshness.test.ts runs the same into a temp dir.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parse } from 'yaml';
import { CRDS_FILE, crdsYaml } from './write-crds';

const REPO = path.resolve(__dirname, '..');

/** The CRD files cdk8s.yaml imports, relative to the repository. */
export function importSources(): string[] {
  return parse(fs.readFileSync(path.join(REPO, 'cdk8s.yaml'), 'utf8')).imports as string[];
}

/** Generates the bindings of every source into `outDir` and formats them as the committed files are. */
export function generateImports(outDir: string): void {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-import-'));
  try {
    for (const src of importSources()) {
      execFileSync(
        path.join(REPO, 'node_modules/.bin/cdk8s'),
        ['import', path.join(REPO, src), '--language', 'typescript', '--output', outDir],
        { cwd: scratch, stdio: 'pipe' },
      );
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  for (const f of fs.readdirSync(outDir)) {
    const file = path.join(outDir, f);
    const formatted = execFileSync(
      path.join(REPO, 'node_modules/.bin/prettier'),
      ['--stdin-filepath', path.join(REPO, 'imports', f)],
      { cwd: REPO, input: fs.readFileSync(file, 'utf8'), encoding: 'utf8' },
    );
    fs.writeFileSync(file, formatted);
  }
}

if (require.main === module) {
  fs.writeFileSync(CRDS_FILE, crdsYaml());
  generateImports(path.join(REPO, 'imports'));
}
