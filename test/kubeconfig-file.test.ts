// kflex's kubeconfig writes (security review L5): exclusive, unpredictable temp file; symlinks kept; mode 0600.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { KubeconfigFile } from '../lib/cli/kubeconfig-file';

const EMPTY = 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\npreferences: {}\n';

describe('KubeconfigFile.save', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kflex-kc-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a symlinked kubeconfig stays a symlink; its target is replaced with mode 0600 and no temp file is left', () => {
    const real = path.join(dir, 'real.yaml');
    const link = path.join(dir, 'config');
    fs.writeFileSync(real, EMPTY, { mode: 0o644 });
    fs.symlinkSync(real, link);
    const kc = KubeconfigFile.load(link);
    kc.currentContext = 'cp1';
    kc.save();
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toMatch(/current-context: cp1/);
    expect(fs.statSync(real).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir).sort()).toEqual(['config', 'real.yaml']);
  });

  test('a file planted at the old predictable temp name is not followed', () => {
    const file = path.join(dir, 'config');
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(file, EMPTY);
    fs.writeFileSync(victim, 'precious');
    fs.symlinkSync(victim, `${file}.kflex-${process.pid}.tmp`);
    const kc = KubeconfigFile.load(file);
    kc.currentContext = 'cp2';
    kc.save();
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    expect(fs.readFileSync(file, 'utf8')).toMatch(/current-context: cp2/);
  });
});
