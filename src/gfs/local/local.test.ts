import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gfsConformance } from '../conformance.js';
import { createLocalGfs } from './index.js';

gfsConformance('local', async () => {
  const root = await mkdtemp(join(tmpdir(), 'drover-gfs-local-'));
  return {
    gfs: createLocalGfs(),
    sites: ['local'],
    holdsSync: false,
    async createDirectory(_site, relPath) {
      const dir = join(root, ...relPath.split('/'));
      await mkdir(dir, { recursive: true });
      return dir;
    },
    async createFile(_site, relPath, content) {
      const file = join(root, ...relPath.split('/'));
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, content);
      return file;
    },
    waitForSync: () => Promise.resolve(),
    close: () => rm(root, { recursive: true, force: true }),
  };
});
